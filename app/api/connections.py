"""The relay's HTTP connections (SPEC §12): the listening socket, a read deadline and a
connection limit, in an httptools protocol that ``relay serve`` hands to uvicorn.

uvicorn 0.54 has neither limit as the relay needs it, so :class:`RelayHttpProtocol`
(passed as ``uvicorn.Config(http=...)``, which takes a protocol class) adds both:

- **Read deadline.** uvicorn's ``timeout_keep_alive`` only covers the idle time between
  requests: a client trickling one header byte at a time (slowloris), or a body it never
  finishes, keeps its connection forever. Here each request must arrive whole (headers and
  body) within ``RELAY_READ_TIMEOUT`` of the connection opening (the first request) or of its
  first byte (later ones): one timer a request, cancelled when the parser completes the
  message. Past it, a request nothing has been answered to gets a JSON ``408`` (then the
  connection is half-closed and closed shortly after, so the answer is not lost to a reset);
  otherwise the connection is just closed. Time in which the relay itself stopped reading
  (a pipelined request waiting its turn) does not count against the client.
- **Connection limit.** uvicorn's ``limit_concurrency`` answers ``text/plain`` from a
  module-level app (``flow_control.service_unavailable``) that could only be swapped by
  patching uvicorn for the whole process, and it counts the connection asking, so it serves
  one fewer than its number. Instead uvicorn's check stays off and this protocol decides when
  a request's headers are complete: past ``RELAY_MAX_CONNECTIONS`` open connections (or as
  many requests still running), the request goes to a small ASGI app answering ``503``
  ``{"error": "unavailable", ...}`` with ``Retry-After`` and ``Connection: close``.

The same subclass answers bytes that are not HTTP with a JSON ``400`` instead of uvicorn's
text, so every error the relay sends has the ``{"error", "detail"}`` shape.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any, ClassVar, cast

import structlog
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

log = structlog.get_logger("relay.http")

LINGER_SECONDS = 2.0
"""After a 408, how long what the client still sends is read and dropped before closing."""
RETRY_AFTER_SECONDS = 1


class ListenError(Exception):
    """The listening socket could not be bound; the message names the address."""


def listen_address(host: str, port: int) -> str:
    """``127.0.0.1:8080``, or ``[::1]:8080`` for an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (``host``, ``port``), as uvicorn binds it, not yet listening.

    Binding before anything starts makes a taken port (or a bad host) one clear error instead
    of a traceback after the database and the worker were opened.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    address = listen_address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except (OSError, OverflowError, ValueError) as error:
        sock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ListenError(f"cannot listen on {address}: {reason[:1].lower()}{reason[1:]}") from None
    return sock


def _error_json(code: str, detail: str) -> bytes:
    return json.dumps({"error": code, "detail": detail}).encode()


_UNAVAILABLE = _error_json(
    "unavailable", "the relay has too many open connections; nothing was stored, retry later"
)
_UNAVAILABLE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_UNAVAILABLE)).encode()),
    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
    (b"connection", b"close"),
]
_NOT_HTTP = _error_json("bad_request", "the request is not valid HTTP/1.1")


async def _unavailable(_scope: Scope, _receive: Receive, send: Send) -> None:
    """What a request past ``RELAY_MAX_CONNECTIONS`` gets instead of the relay."""
    await send({"type": "http.response.start", "status": 503, "headers": _UNAVAILABLE_HEADERS})
    await send({"type": "http.response.body", "body": _UNAVAILABLE})


class _Tally:
    """At most one warning a second for an event that an attack repeats, with its count."""

    def __init__(self, event: str) -> None:
        self.event = event
        self.count = 0
        self.logged_at = float("-inf")

    def add(self, **fields: Any) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.logged_at >= 1.0:
            log.warning(self.event, count=self.count, **fields)
            self.count = 0
            self.logged_at = now


class RelayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the read deadline and the connection limit.

    Use :meth:`configured` for a subclass carrying the settings: uvicorn builds one
    instance a connection from the class alone.
    """

    read_timeout: ClassVar[float] = 30.0
    max_connections: ClassVar[int] = 1000
    _timeouts: ClassVar[_Tally] = _Tally("http.read_timeout")
    _rejections: ClassVar[_Tally] = _Tally("http.too_many_connections")

    @classmethod
    def configured(cls, read_timeout: float, max_connections: int) -> type[RelayHttpProtocol]:
        settings = {"read_timeout": read_timeout, "max_connections": max_connections}
        return cast(type[RelayHttpProtocol], type(cls.__name__, (cls,), settings))

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._relay_app = self.app
        self._timer: asyncio.TimerHandle | None = None
        self._headers_done = False  # of the request being read
        self._closing_after_408 = False

    # The deadline: armed at the connection's opening, then at each request's first byte.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.read_timeout, self._read_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closing_after_408:
            return  # read and dropped, so that closing does not reset the answer away
        super().data_received(data)

    def on_message_begin(self) -> None:
        if self._timer is None:
            self._arm(self.read_timeout, self._read_timed_out)
        self._headers_done = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.app = _unavailable if self._over_capacity() else self._relay_app
        super().on_headers_complete()
        self._headers_done = True

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, delay: float, callback: Callable[[], object]) -> None:
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _read_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The relay stopped reading (a pipelined request waits for the one before, or
            # the app has not taken the body so far): not the client's delay.
            self._arm(self.read_timeout, self._read_timed_out)
            return
        self._timeouts.add(client=self.client[0] if self.client else None)
        if not self._can_answer():
            self.transport.close()
            return
        cycle = self.cycle
        if self._headers_done and cycle is not None:
            # The app is waiting for the body: it sees a disconnect, and whatever it
            # answers is dropped (the 408 below is the answer).
            cycle.disconnected = True
            cycle.message_event.set()
        self._closing_after_408 = True
        self._write_error(
            408,
            _error_json(
                "request_timeout",
                f"the request did not arrive whole within {self.read_timeout:g}s; "
                "nothing was stored",
            ),
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)

    def _can_answer(self) -> bool:
        """Whether no answer to the request being read has begun, nor is any being sent."""
        cycle = self.cycle
        if not self._headers_done:
            return cycle is None or cycle.response_complete
        return not self.pipeline and not cycle.response_started

    # The connection limit and bytes that are not HTTP.

    def _over_capacity(self) -> bool:
        # ``connections`` includes this one; ``tasks`` does not yet include its request.
        over = (
            len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections
        )
        if over:
            self._rejections.add(connections=len(self.connections), requests=len(self.tasks))
        return over

    def send_400_response(self, msg: str) -> None:
        self._write_error(400, _NOT_HTTP)
        self.transport.close()

    def _write_error(self, status: int, body: bytes) -> None:
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))

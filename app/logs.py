"""Logging: one JSON object per line (or console text) on stdout, stdlib and uvicorn included.

The relay's own events go straight from structlog to stdout (no stdlib record on the webhook
hot path); stdlib loggers (uvicorn's access and error logs, httpx) reach the same renderer
through a ``ProcessorFormatter``, so every line has the same shape.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
from typing import Any, ClassVar, TextIO
from urllib.parse import unquote_plus

import structlog


class _NamedWriteLogger:
    """A structlog logger that knows its name, for the ``logger`` field, and writes through
    the stream's :class:`_LineBuffer`."""

    def __init__(self, name: str, file: TextIO) -> None:
        self.name = name
        self._lines = _LineBuffer.of(file)

    def msg(self, message: str) -> None:
        self._lines.write(message + "\n")

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _LineBuffer:
    """Lines logged in one turn of the event loop leave in one write at its end.

    A write and a flush per line were a tenth of the webhook path's time (two lines a
    webhook); under load one turn of the loop answers dozens of webhooks. Lines logged off
    the loop's thread (or with no loop running) are written at once, as before.
    """

    _by_stream: ClassVar[dict[int, _LineBuffer]] = {}

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending: list[str] = []
        self.lock = threading.Lock()

    @classmethod
    def of(cls, stream: TextIO) -> _LineBuffer:
        found = cls._by_stream.get(id(stream))
        if found is None or found.stream is not stream:
            found = cls._by_stream[id(stream)] = cls(stream)
            atexit.register(found.flush)
        return found

    def write(self, line: str) -> None:
        with self.lock:
            self.pending.append(line)
            first = len(self.pending) == 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if first:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:
            if self.pending:
                text = "".join(self.pending)
                self.pending.clear()
                self.stream.write(text)
                self.stream.flush()


_QUERY_PARAMETER = re.compile(r"([?&])([^=&#\s]*)=([^&#\s]*)")
_SECRET_PARAMETERS = frozenset({"token", "access_token", "client_secret"})


def redact_query_secrets(text: str) -> str:
    """``/webhooks/shippo?token=abc`` → ``/webhooks/shippo?token=[redacted]``; the name is
    compared decoded, so ``?%74oken=abc`` is redacted too."""

    def redact(match: re.Match[str]) -> str:
        if unquote_plus(match.group(2)).strip().lower() in _SECRET_PARAMETERS:
            return f"{match.group(1)}{match.group(2)}=[redacted]"
        return match.group(0)

    return _QUERY_PARAMETER.sub(redact, text)


class _RedactAccessLogSecrets(logging.Filter):
    """Shippo's only self-serve authentication is a ``?token=`` in the webhook URL: uvicorn's
    access log must not print it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def configure_logging(
    log_format: str = "json", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Every log line to ``stream`` (stdout; a one-shot command whose stdout is its answer
    passes stderr)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        # sys.stdout is looked up when a logger is made, not now (tests swap it).
        logger_factory=lambda *args: _NamedWriteLogger(
            str(args[0]) if args else "relay", stream or sys.stdout
        ),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.filters[:] = [f for f in access.filters if not isinstance(f, _RedactAccessLogSecrets)]
    access.addFilter(_RedactAccessLogSecrets())
    # httpx logs every request URL at INFO; keep it for debugging only.
    logging.getLogger("httpx").setLevel(logging.WARNING)

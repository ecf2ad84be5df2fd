"""A real HTTP server on loopback playing VTEX's OMS: records requests, answers on command."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    started: float
    finished: float = 0.0


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def receipt_for(path: str) -> Answer:
    """What VTEX answers a successful tracking PUT: ``{date, orderId, receipt}``."""
    order_id = path.split("/")[5] if path.count("/") >= 5 else ""
    return Answer(
        200,
        {
            "date": datetime.now(UTC).isoformat(),
            "orderId": order_id,
            "receipt": uuid.uuid4().hex,
        },
    )


class VtexStandIn:
    """Start with ``with VtexStandIn() as vtex:``; ``vtex.url`` is its base URL.

    ``responder(recorded) -> Answer`` decides each tracking PUT's answer (default: 200 with a
    receipt), ``orders_responder`` every other call's (Get order, PATCH, hook config);
    ``delay`` holds every answer that many seconds (to observe overlapping PUTs).
    """

    def __init__(self, delay: float = 0.0, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self.answers: list[tuple[Recorded, Answer]] = []
        self.responder: Callable[[Recorded], Answer] = lambda r: receipt_for(r.path)
        # Everything but tracking PUTs (Get order, PATCH, hook config). By default a 200 that
        # is not an order, so the relay's check before a first PUT has nothing to check.
        self.orders_responder: Callable[[Recorded], Answer] = lambda r: receipt_for(r.path)
        self.delay = delay
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as separate writes: without this, Nagle's algorithm
            # and the client's delayed ACK hold the body back about 40 ms.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                recorded = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
                with standin._lock:
                    standin.requests.append(recorded)
                if standin.delay:
                    time.sleep(standin.delay)
                tracking = self.command == "PUT" and self.path.endswith("/tracking")
                answer = (standin.responder if tracking else standin.orders_responder)(recorded)
                with standin._lock:
                    standin.answers.append((recorded, answer))
                payload = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    # Answered: sent, or its client gone (a relay killed mid-PUT).
                    recorded.finished = time.monotonic()

            do_PUT = do_GET = do_POST = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> VtexStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def tracking_answers(self) -> list[tuple[Recorded, Answer]]:
        """The answers to tracking PUTs (Get order and PATCH calls left out)."""
        with self._lock:
            return [
                (r, a)
                for r, a in self.answers
                if r.method == "PUT" and r.path.endswith("/tracking")
            ]

    def puts(self, path_part: str = "/tracking") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "PUT" and path_part in r.path]

    def wait_for(self, predicate: Callable[[VtexStandIn], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"VTEX stand-in: condition not met in {timeout}s; saw {self.requests}")


def main() -> None:
    """``python -m tests.support.vtex_standin [port]``: a fake VTEX for trying the relay."""
    import sys

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    with VtexStandIn(port=port) as standin:
        print(f"VTEX stand-in on {standin.url}: every request is answered 200 with a receipt")
        shown = 0
        try:
            while True:
                time.sleep(0.2)
                for recorded, answer in standin.answers[shown:]:
                    print(f"{recorded.method} {recorded.path}\n  body: {json.dumps(recorded.body)}")
                    print(f"  -> {answer.status} {json.dumps(answer.body)}", flush=True)
                shown = len(standin.answers)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

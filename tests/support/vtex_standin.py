"""A real HTTP server on loopback playing VTEX's OMS: records requests, answers on command."""

from __future__ import annotations

import argparse
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.vtex_orders import VtexOms


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
    ``serve_orders(standin, orders)`` makes it keep orders like VTEX instead (what the
    command line does).
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

    def clear(self) -> None:
        """Forget every request and answer recorded so far."""
        with self._lock:
            self.requests.clear()
            self.answers.clear()

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


OrderOption = tuple[str, str, str]
"""``(orderId, invoiceNumber, trackingNumber)`` of an order the command-line stand-in serves."""


def order_option(text: str) -> OrderOption:
    """Reads ``--order ORDER_ID:INVOICE_NUMBER[:TRACKING_NUMBER]``."""
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected ORDER_ID:INVOICE_NUMBER or ORDER_ID:INVOICE_NUMBER:TRACKING_NUMBER"
        )
    order_id, invoice_number, *tracking = parts
    return order_id, invoice_number, tracking[0] if tracking else ""


def serve_orders(
    standin: VtexStandIn, orders: list[OrderOption], account: str = "mystore"
) -> VtexOms:
    """Make ``standin`` keep these orders like VTEX's OMS (tests/support/vtex_orders.py).

    Get order answers each one (one package per invoice, shaped like VTEX's); the
    partial-invoice PATCH sets a package's tracking number; a tracking PUT becomes the
    package's ``courierStatus`` (so ``relay reconcile`` finds what was sent); an order it
    was not given answers 404, like VTEX. Any app key and token are accepted, but both
    headers are required (401 without them). Returns the ``VtexOms`` holding the orders.
    """
    from tests.support.vtex_orders import VtexOms, order, package  # it imports this module

    oms = VtexOms(credentials={})
    by_order: dict[str, list[dict[str, Any]]] = {}
    for order_id, invoice_number, tracking_number in orders:
        by_order.setdefault(order_id, []).append(package(invoice_number, tracking_number))
    for order_id, packages in by_order.items():
        oms.add(order(order_id, account, *packages))

    one_at_a_time = threading.Lock()

    def respond(recorded: Recorded) -> Answer:
        key = recorded.headers.get("x-vtex-api-appkey", "")
        token = recorded.headers.get("x-vtex-api-apptoken", "")
        if not key or not token:
            return Answer(401, {"error": {"code": "1", "message": "Unauthorized"}})
        with one_at_a_time:
            oms.credentials[key] = token  # whatever pair the caller has is this account's
            answer = oms.respond(recorded)
            # Get order answers the live order: keep it as it was when answered (what is
            # sent, and printed later), not as a later PATCH or PUT changes it.
            return Answer(answer.status, copy.deepcopy(answer.body), dict(answer.headers))

    standin.responder = standin.orders_responder = respond
    return oms


def _describe(order_id: str, invoice_number: str, tracking_number: str) -> str:
    tracking = f"tracking number {tracking_number}" if tracking_number else "no tracking number yet"
    return f"order {order_id}, invoice {invoice_number} ({tracking})"


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.vtex_standin [port] [--order ORDER_ID:INVOICE[:TRACKING]]...``:
    a fake VTEX for trying the relay; prints every call it gets and its answer."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.vtex_standin",
        description="A stand-in for VTEX's OMS on 127.0.0.1, for trying the relay without a "
        "store: it keeps the orders given with --order (Get order, the partial-invoice "
        "PATCH, tracking PUTs kept as each package's courierStatus) and answers 404 for any "
        "other order, like VTEX. Any app key and token are accepted.",
    )
    parser.add_argument(
        "port", nargs="?", type=int, default=9000, help="port to listen on (9000; 0: any free)"
    )
    parser.add_argument(
        "--order",
        action="append",
        type=order_option,
        default=[],
        metavar="ORDER_ID:INVOICE_NUMBER[:TRACKING_NUMBER]",
        help="an order with an invoice (a package); without TRACKING_NUMBER the package has "
        "none yet, and the relay sets it with the partial-invoice PATCH before its first PUT. "
        "Repeat for more invoices or orders.",
    )
    parser.add_argument(
        "--account", default="mystore", help="the orders' account (hostname), 'mystore'"
    )
    args = parser.parse_args(argv)
    with VtexStandIn(port=args.port) as standin:
        serve_orders(standin, args.order, args.account)
        print(f"VTEX stand-in on {standin.url}", flush=True)
        for option in args.order:
            print(f"  serves {_describe(*option)}", flush=True)
        print("  any other order: 404 Order not found, like VTEX", flush=True)
        shown = 0
        try:
            while True:
                time.sleep(0.2)
                with standin._lock:
                    new = standin.answers[shown:]
                for recorded, answer in new:
                    print(f"{recorded.method} {recorded.path}\n  body: {json.dumps(recorded.body)}")
                    print(f"  -> {answer.status} {json.dumps(answer.body)}", flush=True)
                    if answer.status == 404 and recorded.path.startswith("/api/oms/pvt/orders/"):
                        print(
                            "  (not among the stand-in's orders and invoices: start it "
                            "with --order ORDER_ID:INVOICE_NUMBER to serve one)",
                            flush=True,
                        )
                shown += len(new)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

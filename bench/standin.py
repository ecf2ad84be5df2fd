"""The VTEX stand-in of the drain and the burst: tests/support's :class:`VtexStandIn` in a
process of its own (``python -m bench.standin PORT``), so that it never competes with the
driver for the GIL (the drain's baseline loop runs in the driver).

What the benchmark adds to it, through its ``responder`` hooks:

- a tracking PUT whose body is not JSON with an ``events`` list answers 400 (counted as
  ``bad``); any other gets the stand-in's 200 with ``{date, orderId, receipt}``, as VTEX;
- ``GET /api/oms/pvt/orders/{orderId}`` (the relay's check before an invoice's first PUT)
  answers an order whose package for the benchmark's invoice of that order already carries
  its tracking number, so no PATCH follows;
- ``GET /_bench/stats``: PUTs in all, and per invoice ``[PUTs, events in its last PUT,
  repeats]`` (a repeat is a PUT that carried no more events than that invoice's previous
  one: nothing new for VTEX), the first PUT's ``time.monotonic()`` (one clock for every
  process on Linux, so the driver can compare); ``GET /_bench/bodies``: every accepted PUT
  as ``[orderId, invoiceNumber, body]``; ``POST /_bench/reset`` forgets everything.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from tests.support.vtex_standin import Answer, Recorded, VtexStandIn, receipt_for


def invoice_of(order_id: str) -> str:
    """The invoice number bench/payloads.py gives an order (drain, burst and ingest)."""
    head = order_id.split("-")[0]
    if not head.isdigit():  # ingest orders: {prefix}{shipment:07d}-01
        return f"NF{int(head[-7:]) if head[-7:].isdigit() else 0:09d}"
    number = int(head)
    if 1172452900000 <= number < 1272452900000:
        return f"{30000 + number - 1172452900000:09d}"
    if number >= 1272452900000:
        return f"{40000 + number - 1272452900000:09d}"
    return f"NF{number % 10**7:09d}"  # not an order of the benchmark


def tracking(recorded: Recorded) -> Answer:
    body = recorded.body
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return Answer(400, {"error": "bad body"})
    return receipt_for(recorded.path)


def invoice_key(path: str) -> tuple[str, str]:
    """(orderId, invoiceNumber) of ``/api/oms/pvt/orders/{orderId}/invoice/{invoice}/tracking``."""
    parts = path.split("/")
    return parts[5], parts[7]


def accepted_puts(standin: VtexStandIn) -> list[Recorded]:
    """Tracking PUTs answered 200, in the order they arrived."""
    answered = [r for r, a in standin.tracking_answers() if a.status == 200]
    return sorted(answered, key=lambda r: r.started)


def stats(standin: VtexStandIn) -> dict[str, Any]:
    puts = accepted_puts(standin)
    invoices: dict[str, list[int]] = {}
    for put in puts:
        seen = invoices.setdefault("/".join(invoice_key(put.path)), [0, 0, 0])
        seen[0] += 1
        events = len(put.body["events"])
        if seen[0] > 1 and events <= seen[1]:
            seen[2] += 1  # nothing new for VTEX: a wasted PUT
        seen[1] = events
    bad = sum(1 for _, a in standin.tracking_answers() if a.status == 400)
    with standin._lock:
        calls = [r for r in standin.requests if r.path.startswith("/api/oms/pvt/orders/")]
    return {
        "orders": sum(1 for r in calls if r.method == "GET"),
        "patches": sum(1 for r in calls if r.method == "PATCH"),
        "puts": len(puts),
        "bad": bad,
        "first": puts[0].started if puts else None,
        "invoices": invoices,
    }


def serve(standin: VtexStandIn) -> None:
    def others(recorded: Recorded) -> Answer:
        path = recorded.path
        if path == "/_bench/stats":
            return Answer(200, stats(standin))
        if path == "/_bench/bodies":
            return Answer(200, [[*invoice_key(p.path), p.body] for p in accepted_puts(standin)])
        if path == "/_bench/reset" and recorded.method == "POST":
            standin.clear()
            return Answer(200, {"reset": True})
        if recorded.method == "GET" and path.startswith("/api/oms/pvt/orders/"):
            order_id = path.removeprefix("/api/oms/pvt/orders/").split("/")[0]
            package = {"invoiceNumber": invoice_of(order_id), "trackingNumber": f"BENCH-{order_id}"}
            return Answer(200, {"orderId": order_id, "packageAttachment": {"packages": [package]}})
        return Answer(404, {"error": f"the bench's stand-in does not answer {path}"})

    standin.responder = tracking
    standin.orders_responder = others


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with VtexStandIn(port=port) as standin:
        serve(standin)
        print(f"VTEX stand-in on {standin.url}", flush=True)
        threading.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    main()

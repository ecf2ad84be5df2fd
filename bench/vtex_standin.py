"""A fast VTEX OMS stand-in for the benchmark: Starlette under uvicorn, in its own process.

``PUT /api/oms/pvt/orders/{orderId}/invoice/{invoiceNumber}/tracking`` answers 200 with a receipt
``{date, orderId, receipt}``, as VTEX does, after checking the body is JSON with an ``events`` list.
It counts PUTs per invoice, remembers how many events each invoice's last PUT carried, and
counts "repeats": PUTs whose body had no more events than that invoice's previous PUT;
``GET /_bench/stats`` reports that, ``POST /_bench/reset`` forgets it.
``GET /api/oms/pvt/orders/{orderId}`` (the relay's check before an invoice's first PUT)
answers an order whose package for the benchmark's invoice of that order already carries
its tracking number, so no PATCH follows; ``gets`` counts them. Times are
``time.monotonic()``, which on Linux is one clock for every process, so the driver can compare.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_stats: dict[str, Any] = {}


def _reset() -> None:
    _stats.clear()
    _stats.update(puts=0, gets=0, bad=0, first=None, last=None, invoices={})


def invoice_of(order_id: str) -> str:
    """The invoice number bench/run.py gives an order (drain, burst and ingest shipments)."""
    head = order_id.split("-")[0]
    if not head.isdigit():  # ingest orders: {prefix}{shipment:07d}-01
        return f"NF{int(head[-7:]) if head[-7:].isdigit() else 0:09d}"
    number = int(head)
    if 1172452900000 <= number < 1272452900000:
        return f"{30000 + number - 1172452900000:09d}"
    if number >= 1272452900000:
        return f"{40000 + number - 1272452900000:09d}"
    return f"NF{number % 10**7:09d}"  # not an order of the benchmark


async def order(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    _stats["gets"] += 1
    package = {"invoiceNumber": invoice_of(order_id), "trackingNumber": f"BENCH-{order_id}"}
    return JSONResponse({"orderId": order_id, "packageAttachment": {"packages": [package]}})


_reset()


async def tracking(request: Request) -> Response:
    order_id = request.path_params["order_id"]
    invoice = request.path_params["invoice_number"]
    raw = await request.body()
    try:
        events = json.loads(raw)["events"]
        assert isinstance(events, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        _stats["bad"] += 1
        return JSONResponse({"error": "bad body"}, status_code=400)
    now = time.monotonic()
    _stats["puts"] += 1
    if _stats["first"] is None:
        _stats["first"] = now
    _stats["last"] = now
    seen = _stats["invoices"].setdefault(f"{order_id}/{invoice}", [0, 0, 0])
    seen[0] += 1
    if seen[0] > 1 and len(events) <= seen[1]:
        seen[2] += 1  # nothing new for VTEX: a wasted PUT
    seen[1] = len(events)
    receipt = {
        "date": datetime.now(UTC).isoformat(),
        "orderId": order_id,
        "receipt": uuid.uuid4().hex,
    }
    return Response(json.dumps(receipt).encode(), media_type="application/json")


async def stats(_request: Request) -> Response:
    return JSONResponse(_stats)


async def reset(_request: Request) -> Response:
    _reset()
    return JSONResponse({"reset": True})


app = Starlette(
    routes=[
        Route(
            "/api/oms/pvt/orders/{order_id}/invoice/{invoice_number}/tracking",
            tracking,
            methods=["PUT"],
        ),
        Route("/api/oms/pvt/orders/{order_id}", order, methods=["GET"]),
        Route("/_bench/stats", stats),
        Route("/_bench/reset", reset, methods=["POST"]),
    ]
)

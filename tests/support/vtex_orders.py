"""VTEX's orders as the stand-in serves them: Get order, the partial-invoice PATCH, the orders
hook configuration, and tracking PUTs that VTEX keeps as each package's ``courierStatus``.

Use ``oms = VtexOms(); vtex.responder = oms.respond``. Orders are dicts shaped like VTEX's Get
order response (../shared/reference/vtex/get-order-response-example.json); ``order()`` builds
one. ``oms.credentials`` maps an account's app key to its token: a request with another pair
gets 401, like VTEX.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote

from tests.support.vtex_standin import Answer, Recorded, receipt_for


def package(
    invoice_number: str, tracking_number: str = "", courier: str = "Transportadora Teste"
) -> dict[str, Any]:
    """A package of ``packageAttachment.packages`` as VTEX returns it."""
    return {
        "items": [{"itemIndex": 0, "quantity": 1, "price": 1990, "description": "Camiseta"}],
        "courier": courier,
        "invoiceNumber": invoice_number,
        "invoiceValue": 1990,
        "invoiceUrl": None,
        "issuanceDate": "2026-11-20T10:10:20.0000000+00:00",
        "trackingNumber": tracking_number,
        "invoiceKey": None,
        "trackingUrl": "",
        "embeddedInvoice": "",
        "type": "Output",
        "courierStatus": None,
        "cfop": None,
        "restitutions": {},
        "volumes": 1,
    }


def order(order_id: str, account: str, *packages: dict[str, Any]) -> dict[str, Any]:
    """A Get order response: the fields the relay reads, among some it does not."""
    return {
        "orderId": order_id,
        "sequence": order_id.split("-")[0][-6:],
        "origin": "Marketplace",
        "hostname": account,
        "status": "invoiced",
        "statusDescription": "Faturado",
        "value": 1990,
        "creationDate": "2026-11-19T14:22:00.0000000+00:00",
        "items": [{"id": "1", "name": "Camiseta", "quantity": 1, "price": 1990}],
        "shippingData": {"address": {"city": "Recife", "state": "PE", "country": "BRA"}},
        "packageAttachment": {"packages": list(packages)},
    }


class VtexOms:
    """A responder for ``VtexStandIn`` with orders, per-account keys and the hook config."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.orders: dict[str, dict[str, Any]] = {}
        self.hook_config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.orders[body["orderId"]] = body

    def respond(self, recorded: Recorded) -> Answer:
        key = recorded.headers.get("x-vtex-api-appkey", "")
        if self.credentials.get(key) != recorded.headers.get("x-vtex-api-apptoken"):
            return Answer(401, {"error": {"code": "1", "message": "Unauthorized"}})
        parts = [unquote(part) for part in recorded.path.split("?")[0].strip("/").split("/")]
        with self._lock:
            if parts == ["api", "orders", "hook", "config"]:
                return self._hook(recorded)
            if parts[:4] != ["api", "oms", "pvt", "orders"] or len(parts) < 5:
                return Answer(404, {"error": {"message": "not found"}})
            found = self.orders.get(parts[4])
            if found is None:
                return Answer(404, {"error": {"code": "OMS004", "message": "Order not found"}})
            if recorded.method == "GET" and len(parts) == 5:
                return Answer(200, found)
            invoice = parts[6] if len(parts) > 6 else ""
            target = next(
                (
                    p
                    for p in found["packageAttachment"]["packages"]
                    if p["invoiceNumber"] == invoice
                ),
                None,
            )
            if target is None:
                return Answer(404, {"error": {"message": f"Invoice {invoice} not found"}})
            if recorded.method == "PATCH" and len(parts) == 7:
                target.update(
                    {
                        k: v
                        for k, v in recorded.body.items()
                        if k in ("trackingNumber", "trackingUrl", "courier")
                    }
                )
                return Answer(
                    200, {"date": "2026-11-28T10:00:00Z", "orderId": parts[4], "receipt": "patch"}
                )
            if recorded.method == "PUT" and parts[-1] == "tracking":
                body = recorded.body
                target["courierStatus"] = {
                    "status": "ok",
                    "finished": bool(body["isDelivered"]),
                    "deliveredDate": body["deliveredDate"],
                    "data": [
                        {
                            "lastChange": event["date"],
                            "city": event["city"],
                            "state": event["state"],
                            "description": event["description"],
                            "createDate": event["date"],
                        }
                        for event in body["events"]
                    ],
                }
                return receipt_for(recorded.path)
        return Answer(405, {"error": {"message": "method not allowed"}})

    def _hook(self, recorded: Recorded) -> Answer:
        if recorded.method == "GET":
            if self.hook_config is None:
                return Answer(404, {"error": {"message": "no hook configured"}})
            return Answer(200, self.hook_config)
        if recorded.method == "POST":
            self.hook_config = recorded.body
            return Answer(200, recorded.body)
        return Answer(405, {"error": {"message": "method not allowed"}})

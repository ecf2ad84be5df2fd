"""Reading VTEX orders (Get order): pure decisions about packages, invoices and tracking.

Used before an invoice's first tracking PUT (SPEC §2: the package must carry its tracking
number), by the orders hook (which packages to register) and by reconciliation (does
VTEX's ``courierStatus`` hold what the relay sent?).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import BadRequest, InvalidRequest
from app.normalize.model import identifier_problem, invoice_number_problem


class NotAnOrder(ValueError):
    """The Get-order answer has no ``packageAttachment``: it is not an order to check."""


@dataclass(frozen=True)
class Package:
    """One package of ``packageAttachment.packages``, as far as the relay needs it."""

    invoice_number: str
    tracking_number: str
    tracking_url: str
    courier: str
    courier_status: Mapping[str, Any]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def packages(order: Any) -> list[Package]:
    """The order's packages; raises :class:`NotAnOrder` when the body is not an order."""
    attachment = order.get("packageAttachment") if isinstance(order, Mapping) else None
    if not isinstance(attachment, Mapping):
        raise NotAnOrder("the Get order answer has no packageAttachment")
    found = attachment.get("packages")
    return [
        Package(
            invoice_number=_text(item.get("invoiceNumber")),
            tracking_number=_text(item.get("trackingNumber")),
            tracking_url=_text(item.get("trackingUrl")),
            courier=_text(item.get("courier")),
            courier_status=status
            if isinstance(status := item.get("courierStatus"), Mapping)
            else {},
        )
        for item in (found if isinstance(found, list) else [])
        if isinstance(item, Mapping)
    ]


def package_of_invoice(order: Any, invoice_number: str) -> Package | None:
    """The package of ``invoice_number``, or None while the order has no such invoice."""
    wanted = invoice_number.strip()
    return next((p for p in packages(order) if p.invoice_number == wanted), None)


def registrable_packages(order: Any) -> list[Package]:
    """Packages the relay can register: a tracking number and an addressable invoice."""
    return [
        package
        for package in packages(order)
        if package.tracking_number
        and package.invoice_number
        and invoice_number_problem(package.invoice_number) is None
        and identifier_problem("trackingNumber", package.tracking_number) is None
    ]


def tracking_number_patch(
    tracking_number: str, tracking_url: str | None, courier: str | None
) -> dict[str, str]:
    """The partial-invoice PATCH body that gives a package its tracking number."""
    body = {"trackingNumber": tracking_number}
    if tracking_url:
        body["trackingUrl"] = tracking_url
    if courier:
        body["courier"] = courier
    return body


def _event_key(city: Any, state: Any, description: Any) -> tuple[str, str, str]:
    def folded(value: Any) -> str:
        return " ".join(_text(value).split()).casefold()

    return folded(description), folded(city), folded(state)


def what_vtex_lacks(package: Package, body: Mapping[str, Any]) -> str | None:
    """Why VTEX's ``courierStatus`` of the package falls short of the tracking ``body`` the
    relay holds (missing events, or not delivered), or None when it holds it all."""
    held = package.courier_status.get("data")
    vtex_events = [
        _event_key(item.get("city"), item.get("state"), item.get("description"))
        for item in (held if isinstance(held, list) else [])
        if isinstance(item, Mapping)
    ]
    remaining = list(vtex_events)
    missing = 0
    for event in body.get("events", []):
        key = _event_key(event.get("city"), event.get("state"), event.get("description"))
        if key in remaining:
            remaining.remove(key)
        else:
            missing += 1
    if missing:
        return f"VTEX lacks {missing} of the invoice's {len(body.get('events', []))} events"
    delivered_at_vtex = bool(package.courier_status.get("deliveredDate")) or (
        package.courier_status.get("finished") is True
    )
    if body.get("isDelivered") and not delivered_at_vtex:
        return "VTEX does not have the invoice as delivered"
    return None


@dataclass(frozen=True)
class Notification:
    """An orders-hook notification (SPEC §4): the order, its new state, its account."""

    order_id: str
    state: str
    account: str | None


def read_notification(payload: Any) -> Notification:
    """The notification a hook payload carries; raises :class:`BadRequest` when it is not
    one, :class:`InvalidRequest` when a value is not an id (SPEC §12)."""
    if not isinstance(payload, dict):
        raise BadRequest("the notification must be a JSON object")
    if payload.get("OrderId") is None:
        raise BadRequest("the notification has no OrderId")
    order_id = _identifier("OrderId", payload["OrderId"])
    origin = payload.get("Origin")
    account = origin.get("Account") if isinstance(origin, dict) else None
    if isinstance(account, str) and not account.strip():
        account = None  # no account named: the default credentials apply
    state = payload.get("State")
    return Notification(
        order_id=order_id,
        state=state if isinstance(state, str) else "",
        account=None if account is None else _identifier("Account", account),
    )


def _identifier(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"{name}: must be text")
    problem = identifier_problem(name, value)
    if problem:
        raise InvalidRequest(problem)
    return value.strip()

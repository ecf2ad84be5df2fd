"""Intelipost tracking webhooks (volume state change; the documented example, no version named).

Intelipost posts **one event per webhook**: ``history`` is the volume's new state, next to
``tracking_code``, ``order_number``, ``volume_number`` and ``invoice``. Each volume of an
order has its own tracking code, so volumes are separate shipments and the relay
accumulates each one's history. Quirks:

- The time is ``history.event_date_iso`` (ISO 8601 with a Brazilian offset, ``-02:00`` in
  old DST dates); without it, ``history.event_date`` (epoch milliseconds, UTC; a numeric
  string is accepted too). An ISO value that is present but unreadable is rejected rather
  than silently replaced by the epoch twin. ``created``/``created_iso`` (when Intelipost
  recorded the event) are not the event time. An ISO value without an offset (not seen)
  would be read in the default zone: Intelipost documents none.
- Status is the macro state ``history.shipment_order_volume_state``: ``NEW`` →
  info_received, ``IN_TRANSIT`` → in_transit, ``TO_BE_DELIVERED`` → out_for_delivery,
  ``DELIVERED`` → delivered, ``DELIVERY_FAILED`` → exception (SOURCE.md). States the
  Intelipost Magento module also handles: ``READY_FOR_SHIPPING`` → info_received,
  ``SHIPPED`` → in_transit, ``CLARIFY_DELIVERY_FAIL`` → exception. Guesses, seen in no
  Intelipost material: ``CANCELLED``/``CANCELED`` → exception, ``RETURNED``/``RETURNING``
  → returned. Returns otherwise come only as micro states (SOURCE.md, unconfirmed), so a
  micro state whose ``name`` (or ``default_name``) mentions ``DEVOLU``/``DEVOLV``
  (devolução, devolvido) is returned, whatever the macro state: marking a return as
  delivered would be the worse mistake. Anything else → unknown.
- ``carrier_status`` is the macro state, refined with the micro state's ``code`` when
  there is one: ``IN_TRANSIT/27`` (the code may be a JSON number).
- Description: ``history.provider_message`` (the carrier's text), else the micro state's
  ``name``, ``default_name`` or ``description``, else ``esprinter_message``, else the
  localized macro state (``shipment_order_volume_state_localized``, e.g. "Em trânsito").
- No location is sent: city and state are always ``""``.

``references`` (non-blank values only, numbers as text): ``order_number``,
``sales_order_number`` (the store's own order number, which the Intelipost Magento
module reads), ``invoice_number``, ``invoice_series``, ``invoice_key`` (44-digit NF-e
access key; all three from ``invoice``), ``volume_number``. ``tracking_url`` is the
top-level ``tracking_url`` when sent (read by the Intelipost Magento module; absent
from the published sample). No aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.normalize.fields import optional_text, require_object, require_text
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status, TrackingEvent
from app.normalize.times import EARLIEST, LATEST, parse_timestamp

_STATES = {
    "NEW": Status.INFO_RECEIVED,
    "READY_FOR_SHIPPING": Status.INFO_RECEIVED,
    "SHIPPED": Status.IN_TRANSIT,
    "IN_TRANSIT": Status.IN_TRANSIT,
    "TO_BE_DELIVERED": Status.OUT_FOR_DELIVERY,
    "DELIVERED": Status.DELIVERED,
    "DELIVERY_FAILED": Status.EXCEPTION,
    "CLARIFY_DELIVERY_FAIL": Status.EXCEPTION,
    "CANCELLED": Status.EXCEPTION,
    "CANCELED": Status.EXCEPTION,
    "RETURNED": Status.RETURNED,
    "RETURNING": Status.RETURNED,
}
_RETURN_WORDS = ("DEVOLU", "DEVOLV")


def _text(value: Any) -> str:
    """A non-blank string trimmed, or an integer as its digits; else ``""``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return optional_text(value)


def _epoch_ms(value: Any, where: str) -> datetime:
    digits = value.strip() if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 15:  # past 15: not a time
        value = int(digits)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise PayloadRejected(f"{where} is missing or not epoch milliseconds")
    if not EARLIEST.timestamp() * 1000 <= value < LATEST.timestamp() * 1000:
        raise PayloadRejected(f"{where} is not a plausible tracking time: {value!r:.40}")
    return datetime.fromtimestamp(value / 1000, UTC)


def _occurred_at(history: Mapping[str, Any], context: ParseContext) -> datetime:
    iso = history.get("event_date_iso")
    if iso is not None and iso != "":
        return parse_timestamp(iso, context.default_zone, field="history.event_date_iso")
    if history.get("event_date") is None:
        raise PayloadRejected("history.event_date_iso (or history.event_date) is missing")
    return _epoch_ms(history.get("event_date"), "history.event_date")


def _references(body: Mapping[str, Any]) -> dict[str, str]:
    invoice = body.get("invoice")
    nf = invoice if isinstance(invoice, Mapping) else {}
    found = {
        "order_number": _text(body.get("order_number")),
        "sales_order_number": _text(body.get("sales_order_number")),
        "invoice_number": _text(nf.get("invoice_number")),
        "invoice_series": _text(nf.get("invoice_series")),
        "invoice_key": _text(nf.get("invoice_key")),
        "volume_number": _text(body.get("volume_number")),
    }
    return {name: value for name, value in found.items() if value}


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read one volume state change; ``history`` becomes the event."""
    body = require_object(payload, "body")
    tracking_number = require_text(body.get("tracking_code"), "tracking_code")
    history = require_object(body.get("history"), "history")
    state = require_text(
        history.get("shipment_order_volume_state"), "history.shipment_order_volume_state"
    ).upper()
    micro_value = history.get("shipment_volume_micro_state")
    micro = micro_value if isinstance(micro_value, Mapping) else {}
    micro_name = optional_text(micro.get("name"), micro.get("default_name"))
    micro_code = _text(micro.get("code"))
    status = _STATES.get(state, Status.UNKNOWN)
    if any(word in micro_name.upper() for word in _RETURN_WORDS):
        status = Status.RETURNED
    event = TrackingEvent(
        occurred_at=_occurred_at(history, context),
        status=status,
        carrier_status=f"{state}/{micro_code}" if micro_code else state,
        description=optional_text(
            history.get("provider_message"),
            micro_name,
            micro.get("description"),
            history.get("esprinter_message"),
            history.get("shipment_order_volume_state_localized"),
        ),
    )
    link = optional_text(body.get("tracking_url")) or None
    return [
        ShipmentUpdate(tracking_number, (event,), tracking_url=link, references=_references(body))
    ]

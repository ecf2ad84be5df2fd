"""DHL Shipment Tracking Unified Push and DHL eCommerce Americas tracking webhooks.

DHL publishes no push body of its own: both services say the body is the Shipment
Tracking - Unified API response (v1), ``{shipments: [{id, service, status, details,
events: [...]}]}``. Each shipment of a POST becomes one update; the response's paging
fields (``url``, ``nextUrl``...) are ignored. Every push carries the shipment's whole
history, so resent events are deduplicated by the relay.

Quirks handled:

- ``events`` come newest first: they are sorted oldest first (ties keep their order),
  and an exact repeat inside one shipment is dropped.
- ``events[].timestamp`` has no offset in DHL's own example (while ``status.timestamp``
  has ``Z``) and DHL documents no zone, so a zone-less time is read in the default zone.
  The event's ``countryCode`` is deliberately not used to guess one.
- ``statusCode`` is one of ``pre-transit`` (info_received), ``transit`` (in_transit),
  ``delivered``, ``failure`` (exception) and ``unknown``; it is the ``carrier_status``.
  Without it, ``status`` (DHL's raw status text) is the code and is mapped the same way
  when it is one of those five, else unknown. ``statusCode`` wins over ``status`` when
  they disagree (DHL's example pairs ``pre-transit`` with ``DELIVERED``). Returns have no
  code of their own: an event whose description names a return to the sender in
  unambiguous words ("returned to shipper", "devolvido ao remetente", "Rücksendung an
  den Absender"...) is *returned*, so a parcel delivered back to its shipper is not
  taken for delivered. Other mentions of "return" are not read.
- ``description`` is the text; a ``remark`` that says something else is appended
  (``"<description> - <remark>"``); either alone stands in for the other, then
  ``status``. ``nextSteps`` is advice, not an event, and is left out.
- ``location.address.addressLocality`` is free text that may include the street
  (``"Oderweg 2, AMSTERDAM"``) or end with a state and country (``"Salt Lake City, UT,
  US"``): a trailing country code is dropped, a trailing two-letter state is the state
  (unless ``addressRegion`` gives one), and the city is the last part left.
- The shipment-level ``status`` repeats the newest event (with a different time
  notation, so it would not be recognised as a repeat in every zone) and
  ``details.proofOfDelivery`` is not an event (in DHL's example it contradicts them):
  neither is read; delivery comes from a ``delivered`` event.

``tracking_url``: the shipment's ``serviceUrl`` (the DHL division's public tracking
page for it) when it is an http(s) URL. ``references``: each ``details.references``
entry (an object or an array of ``{number, type}``) under its ``type`` in snake_case
(``customer-reference`` → ``customer_reference``, put first; the first of each type
wins; an entry without a type is ``reference``). Malformed references are skipped, not
rejected. No aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import Any

from app.normalize.fields import (
    http_url,
    object_or_empty,
    optional_text,
    read_each,
    require_object,
    require_text,
    text_or_number,
)
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    Status,
    TrackingEvent,
    oldest_first,
)
from app.normalize.times import parse_timestamp

_STATUSES = {
    "pre-transit": Status.INFO_RECEIVED,
    "transit": Status.IN_TRANSIT,
    "delivered": Status.DELIVERED,
    "failure": Status.EXCEPTION,
    "unknown": Status.UNKNOWN,
}
CUSTOMER_REFERENCE = "customer_reference"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")

_STATE_CODE = re.compile(r"[A-Z]{2}")
_RETURN_PHRASES = re.compile(
    r"return(ed|ing)? to (the )?(sender|shipper|origin)"
    r"|devolvid[oa] ao remetente|devolu[çc][ãa]o ao remetente"
    r"|devuelt[oa] al remitente|r[üu]cksendung an den absender|retour (à l')?exp[ée]diteur",
    re.IGNORECASE,
)


def _description(event: Mapping[str, Any]) -> str:
    description = optional_text(event.get("description"))
    remark = optional_text(event.get("remark"))
    if description and remark and remark.casefold() not in description.casefold():
        return f"{description} - {remark}"
    return description or remark or optional_text(event.get("status"))


def _place(address: Mapping[str, Any]) -> tuple[str, str]:
    """(city, state) of a free-text locality, which may start with a street and end with a
    state and a country: ``"Oderweg 2, AMSTERDAM"`` → AMSTERDAM; ``"Salt Lake City, UT,
    US"`` → Salt Lake City, UT. ``addressRegion`` names the state when DHL gives it."""
    parts = [part.strip() for part in optional_text(address.get("addressLocality")).split(",")]
    parts = [part for part in parts if part]
    country = optional_text(address.get("countryCode")).upper()
    if len(parts) > 1 and len(parts[-1]) == 2 and parts[-1].upper() in (country, "US", "BR"):
        parts.pop()  # a trailing country code
    state = optional_text(address.get("addressRegion"))
    if len(parts) > 1 and _STATE_CODE.fullmatch(parts[-1]):
        state = state or parts.pop()
    return (parts[-1] if parts else ""), state


def _status(code: str, description: str) -> Status:
    status = _STATUSES.get(code.lower(), Status.UNKNOWN)
    # Returns have no code of their own; a few unambiguous phrases name them.
    if status is not Status.INFO_RECEIVED and _RETURN_PHRASES.search(description):
        return Status.RETURNED
    return status


def _event(event: Mapping[str, Any], where: str, context: ParseContext) -> TrackingEvent:
    address = object_or_empty(object_or_empty(event.get("location")).get("address"))
    code = optional_text(event.get("statusCode"), event.get("status"))
    description = _description(event)
    city, state = _place(address)
    return TrackingEvent(
        occurred_at=parse_timestamp(
            event.get("timestamp"), context.default_zone, field=f"{where}.timestamp"
        ),
        status=_status(code, description),
        carrier_status=code,
        description=description,
        city=city,
        state=state,
    )


def _reference_name(kind: str) -> str:
    name = _NOT_WORD.sub("_", _CAMEL.sub("_", kind).lower()).strip("_")
    return name or "reference"


def _references(value: Any) -> dict[str, str]:
    entries = value if isinstance(value, list) else [value]
    found: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        number = text_or_number(entry.get("number"))
        if number:
            found.setdefault(_reference_name(optional_text(entry.get("type"))), number)
    if CUSTOMER_REFERENCE in found:
        found = {CUSTOMER_REFERENCE: found[CUSTOMER_REFERENCE], **found}
    return found


def _update(shipment: Mapping[str, Any], where: str, context: ParseContext) -> ShipmentUpdate:
    tracking_number = require_text(shipment.get("id"), f"{where}.id")
    events = read_each(shipment.get("events"), f"{where}.events", partial(_event, context=context))
    return ShipmentUpdate(
        tracking_number,
        oldest_first(events),
        tracking_url=http_url(shipment.get("serviceUrl")),
        references=_references(object_or_empty(shipment.get("details")).get("references")),
    )


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a push body; each of ``shipments`` becomes one update."""
    body = require_object(payload, "body")
    if body.get("shipments") is None:
        raise PayloadRejected("shipments is missing: a DHL push body lists its shipments")
    return list(read_each(body["shipments"], "shipments", partial(_update, context=context)))

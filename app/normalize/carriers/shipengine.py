"""ShipEngine / ShipStation API ``track`` webhooks (``API_TRACK`` and v2 ``TRACK_EVENT_V2``).

The envelope is ``{resource_url, resource_type, data}`` where ``data`` is a
``tracking_information`` object carrying the shipment's whole history in
``data.events`` each time (resent events are the store's to deduplicate). Bodies
with any other ``resource_type`` (batches, rates, reports...) yield nothing.

Quirks, and what this adapter does about them:

- Event time: ``occurred_at`` is documented as UTC (one written without an offset is
  still read as UTC); legacy payloads (2019 captures) call it ``event_date``. When
  neither is given, ``carrier_occurred_at`` is used: it is carrier-local and written
  without a zone, so it is read in the default zone (``RELAY_CARRIER_DEFAULT_TIMEZONE``).
  A time field that is present but unreadable is rejected, never skipped.
- Order: ShipEngine may list events newest first; they are sorted by time (stable).
  Exact repeats inside one body are dropped.
- Status: the event's ``status_code`` (UN unknown, AC and NY info_received, IT
  in_transit, DE delivered, EX and AT exception, SP out_for_delivery: "delivered to
  collection location" means the parcel waits at a pickup point for the buyer, like
  AfterShip's AvailableForPickup; VTEX's ``isDelivered`` can never be taken back, so
  it waits for the collection) refined by its ``status_detail_code``
  (return-to-sender codes → returned, OUT_FOR_DELIVERY and the awaiting-pickup codes
  → out_for_delivery, delivered variants → delivered).
- Events without codes: the SDK mock has ``status_code: ""`` on its event and legacy
  bodies have no codes on events at all, while ``data.status_code`` says where the
  shipment stands now. That tracking-level status describes the newest scan, so it
  is lent to the newest event (by time; among events of the same time, the one the
  payload's own order puts last in time) when that event has no code of its own.
  Older code-less events stay ``unknown``: nothing says what they meant.
- ``carrier_status`` is the event's own ``status_detail_code``, else its
  ``status_code``, else the carrier's raw ``carrier_status_code`` / ``event_code``;
  never the lent tracking status, so that an event keeps the same identity when a
  later webhook resends it as an older event.
- Description: ``description``, else ``carrier_status_description``, else the legacy
  ``event_description``. Place: ``city_locality`` and ``state_province``.

``tracking_url`` is ``data.tracking_url``. References (names as in ``references``):
``label_id``, the ShipEngine label id (``se-…``) taken from a ``resource_url`` of the
form ``…/v2/labels/<label_id>/track``; the payload carries no order reference. No
aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from app.normalize.fields import optional_text, require_list, require_object, require_text
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status, TrackingEvent
from app.normalize.times import parse_timestamp

DOCUMENTED_ZONE = ZoneInfo("UTC")
"""Zone of ``occurred_at`` / ``event_date`` when written without an offset."""

_TRACK_RESOURCES = {"API_TRACK", "TRACK_EVENT_V2"}
_LABEL_IN_URL = re.compile(r"/labels/([^/?#\s]+)/track(?:[/?#]|$)")

_STATUS_CODES = {
    "UN": Status.UNKNOWN,
    "AC": Status.INFO_RECEIVED,
    "NY": Status.INFO_RECEIVED,
    "IT": Status.IN_TRANSIT,
    "DE": Status.DELIVERED,
    "SP": Status.OUT_FOR_DELIVERY,
    "EX": Status.EXCEPTION,
    "AT": Status.EXCEPTION,
}
# Detail codes whose meaning is sharper than their status_code's. Codes not listed
# (attempts, customs, delays, CARRIER_STATUS_NOT_MAPPED...) keep the status_code's meaning.
_DETAIL_CODES = {
    # "... is being returned" in ShipEngine's status_detail_code descriptions.
    **dict.fromkeys(
        (
            "RETURN_TO_SENDER",
            "UNDELIVERABLE_RETURNED_TO_SENDER",
            "NOT_DELIVERED",
            "NOT_COLLECTED_FROM_PICKUP_POINT",
            "REFUSED_BY_CUSTOMER",
            "CUSTOMER_MOVED",
            "HAZARDOUS_PROHIBITED",
            "PARCEL_OUTSIDE_OF_SERVICE_CAPABILITY",
            "PARCEL_DAMAGED",
        ),
        Status.RETURNED,
    ),
    **dict.fromkeys(
        (
            "OUT_FOR_DELIVERY",
            "AWAITING_COLLECTION_FROM_PICKUP_POINT",
            "CUSTOMER_TO_COLLECT_FROM_CARRIER",
            "COLLECT_AT_LOCAL_PO",
        ),
        Status.OUT_FOR_DELIVERY,
    ),
    **dict.fromkeys(
        (
            "DELIVERED",
            "DELIVERED_DAMAGED",
            "DELIVERED_SPECIFIED_SAFE_PLACE",
            "DELIVERED_TO_ALTERNATIVE_DELIVERY_LOCATION",
            "DELIVERED_TO_NEIGHBOUR",
            "DELIVERED_TO_PO_BOX",
            "DELIVERED_TO_LOCKER_COLLECTION_POINT",
            "PARCEL_COLLECTED_FROM_PICKUP_POINT",
            "PROOF_OF_DELIVERY",
        ),
        Status.DELIVERED,
    ),
}


def _status(detail_code: str, status_code: str) -> Status:
    return _DETAIL_CODES.get(detail_code) or _STATUS_CODES.get(status_code, Status.UNKNOWN)


def _event_time(item: Mapping[str, Any], where: str, context: ParseContext) -> datetime:
    for name, zone in (
        ("occurred_at", DOCUMENTED_ZONE),
        ("event_date", DOCUMENTED_ZONE),
        ("carrier_occurred_at", context.default_zone),
    ):
        value = item.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        return parse_timestamp(value, zone, field=f"{where}.{name}")
    raise PayloadRejected(
        f"{where}.occurred_at is missing (and so are event_date and carrier_occurred_at)"
    )


class _Read(NamedTuple):
    event: TrackingEvent
    has_code: bool
    """Whether the event carries a ShipEngine status of its own."""


def _read_event(item: Mapping[str, Any], where: str, context: ParseContext) -> _Read:
    detail_code = optional_text(item.get("status_detail_code"))
    status_code = optional_text(item.get("status_code"))
    event = TrackingEvent(
        occurred_at=_event_time(item, where, context),
        status=_status(detail_code, status_code),
        carrier_status=optional_text(
            detail_code, status_code, item.get("carrier_status_code"), item.get("event_code")
        ),
        description=optional_text(
            item.get("description"),
            item.get("carrier_status_description"),
            item.get("event_description"),
        ),
        city=optional_text(item.get("city_locality")),
        state=optional_text(item.get("state_province")),
    )
    return _Read(event, bool(detail_code or status_code))


def _lend_tracking_status(
    reads: list[_Read], newest_first: bool, tracking: Mapping[str, Any]
) -> list[TrackingEvent]:
    """The events of ``reads`` (sorted by time), the tracking's status lent to the newest.

    Among events of the newest instant, the payload's own order decides which is the
    newest: the first of them when the payload runs newest first, else the last.
    """
    events = [read.event for read in reads]
    if not reads:
        return events
    latest = reads[-1].event.occurred_at
    tied = [i for i, read in enumerate(reads) if read.event.occurred_at == latest]
    index = tied[0] if newest_first else tied[-1]
    detail_code = optional_text(tracking.get("status_detail_code"))
    status_code = optional_text(tracking.get("status_code"))
    if not reads[index].has_code and (detail_code or status_code):
        events[index] = replace(events[index], status=_status(detail_code, status_code))
    return events


def _label_id(resource_url: Any) -> dict[str, str]:
    if not isinstance(resource_url, str):
        return {}
    found = _LABEL_IN_URL.search(resource_url)
    label_id = found.group(1).strip() if found else ""
    return {"label_id": label_id} if label_id else {}


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a ``track`` webhook; ``data.events`` become the events."""
    envelope = require_object(payload, "body")
    resource_type = envelope.get("resource_type")
    if not isinstance(resource_type, str) or resource_type.strip() not in _TRACK_RESOURCES:
        return []
    tracking = require_object(envelope.get("data"), "data")
    tracking_number = require_text(tracking.get("tracking_number"), "data.tracking_number")

    # dict.fromkeys drops repeats of an event already in this body, keeping the order.
    reads = list(
        dict.fromkeys(
            _read_event(require_object(item, f"data.events.{i}"), f"data.events.{i}", context)
            for i, item in enumerate(require_list(tracking.get("events"), "data.events"))
        )
    )
    newest_first = len(reads) > 1 and reads[0].event.occurred_at > reads[-1].event.occurred_at
    reads.sort(key=lambda read: read.event.occurred_at)

    return [
        ShipmentUpdate(
            tracking_number,
            tuple(_lend_tracking_status(reads, newest_first, tracking)),
            tracking_url=optional_text(tracking.get("tracking_url")) or None,
            references=_label_id(envelope.get("resource_url")),
        )
    ]

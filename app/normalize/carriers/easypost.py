"""EasyPost tracker webhooks (API v2 ``Event`` objects, ``tracker.created``/``tracker.updated``).

Each Event carries the whole Tracker in ``result``: every ``tracking_details`` entry,
oldest first, with UTC ``datetime`` values; EasyPost documents its times as UTC, so
one that lacks an offset is read as UTC too, whatever the default zone. Events about
other objects (batches, shipments, refunds...) carry no tracking and yield nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from app.normalize.fields import optional_text, read_each, require_object, require_text
from app.normalize.model import ParseContext, ShipmentUpdate, Status, TrackingEvent
from app.normalize.times import parse_timestamp

_STATUSES = {
    "unknown": Status.UNKNOWN,
    "pre_transit": Status.INFO_RECEIVED,
    "in_transit": Status.IN_TRANSIT,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "available_for_pickup": Status.OUT_FOR_DELIVERY,
    "delivered": Status.DELIVERED,
    "return_to_sender": Status.RETURNED,
    "failure": Status.EXCEPTION,
    "error": Status.EXCEPTION,
    "cancelled": Status.EXCEPTION,
}
_TRACKER_EVENTS = {"tracker.created", "tracker.updated"}
DOCUMENTED_ZONE = ZoneInfo("UTC")


def _event(detail: Mapping[str, Any], where: str, context: ParseContext) -> TrackingEvent:
    location = detail.get("tracking_location")
    place = location if isinstance(location, Mapping) else {}
    status = optional_text(detail.get("status"))
    return TrackingEvent(
        occurred_at=parse_timestamp(
            detail.get("datetime"), DOCUMENTED_ZONE, field=f"{where}.datetime"
        ),
        status=_STATUSES.get(status, Status.UNKNOWN),
        carrier_status=status,
        description=optional_text(detail.get("message"), detail.get("description")),
        city=optional_text(place.get("city")),
        state=optional_text(place.get("state")),
    )


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read an Event; ``result.tracking_details`` become the events."""
    event = require_object(payload, "body")
    if optional_text(event.get("description")) not in _TRACKER_EVENTS:
        return []
    tracker = require_object(event.get("result"), "result")
    tracking_number = require_text(tracker.get("tracking_code"), "result.tracking_code")
    details = read_each(
        tracker.get("tracking_details"), "result.tracking_details", partial(_event, context=context)
    )
    return [
        ShipmentUpdate(
            tracking_number, details, tracking_url=optional_text(tracker.get("public_url")) or None
        )
    ]

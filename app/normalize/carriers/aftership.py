"""AfterShip Tracking webhooks (``tracking_update``; webhook version 2026-07 and earlier).

The envelope is ``{event, event_id, msg, ts}`` where ``msg`` is the whole Tracking
object, checkpoints oldest first. ``checkpoint_time`` may lack an offset (it is
carrier-local, and AfterShip documents no zone), so it is read in the default zone.
When a checkpoint has no ``city``, its free-text ``location`` stands in.

``references``: ``order_id``, ``order_number``, ``title`` (when it is not just the
tracking number, AfterShip's default) and each ``custom_fields.<key>`` with a text or
number value.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from app.normalize.fields import (
    optional_text,
    read_each,
    require_object,
    require_text,
    text_or_number,
)
from app.normalize.model import ParseContext, ShipmentUpdate, Status, TrackingEvent
from app.normalize.times import parse_timestamp

_TAGS = {
    "Pending": Status.INFO_RECEIVED,
    "InfoReceived": Status.INFO_RECEIVED,
    "InTransit": Status.IN_TRANSIT,
    "OutForDelivery": Status.OUT_FOR_DELIVERY,
    "AvailableForPickup": Status.OUT_FOR_DELIVERY,
    "AttemptFail": Status.EXCEPTION,
    "Delivered": Status.DELIVERED,
    "Exception": Status.EXCEPTION,
    "Expired": Status.EXCEPTION,
}
# "Returning to sender" and "Returned to sender", per AfterShip's delivery sub-statuses enum.
_RETURN_SUBTAGS = {"Exception_010", "Exception_011"}


def _status(checkpoint: Mapping[str, Any]) -> Status:
    tag = optional_text(checkpoint.get("tag"))
    if tag == "Exception" and optional_text(checkpoint.get("subtag")) in _RETURN_SUBTAGS:
        return Status.RETURNED
    return _TAGS.get(tag, Status.UNKNOWN)


def _event(checkpoint: Mapping[str, Any], where: str, context: ParseContext) -> TrackingEvent:
    return TrackingEvent(
        occurred_at=parse_timestamp(
            checkpoint.get("checkpoint_time"),
            context.default_zone,
            field=f"{where}.checkpoint_time",
        ),
        status=_status(checkpoint),
        carrier_status=optional_text(checkpoint.get("subtag"), checkpoint.get("tag")),
        description=optional_text(checkpoint.get("message"), checkpoint.get("subtag_message")),
        city=optional_text(checkpoint.get("city"), checkpoint.get("location")),
        state=optional_text(checkpoint.get("state")),
    )


def _references(msg: Mapping[str, Any], tracking_number: str) -> dict[str, str]:
    found = {name: text_or_number(msg.get(name)) for name in ("order_id", "order_number", "title")}
    if found["title"] == tracking_number:
        del found["title"]
    custom = msg.get("custom_fields")
    if isinstance(custom, Mapping):
        for key, value in custom.items():
            found[f"custom_fields.{key}"] = text_or_number(value)
    return {name: value for name, value in found.items() if value}


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a webhook envelope; ``msg.checkpoints`` become the events."""
    msg = require_object(require_object(payload, "body").get("msg"), "msg")
    tracking_number = require_text(msg.get("tracking_number"), "msg.tracking_number")
    checkpoints = read_each(
        msg.get("checkpoints"), "msg.checkpoints", partial(_event, context=context)
    )
    link = optional_text(msg.get("courier_tracking_link")) or None
    references = _references(msg, tracking_number)
    return [ShipmentUpdate(tracking_number, checkpoints, tracking_url=link, references=references)]

"""Shippo tracking webhooks (``track_updated``; the ``WebhookPayloadTrack`` of API 2018-02-08).

The envelope is ``{event, test, data}`` where ``data`` is the whole Track object.
Other Shippo events (``transaction_created``, ``batch_purchased``...) carry no
tracking and yield nothing. ``test`` is ignored: test-mode numbers such as
``SHIPPO_DELIVERED`` are tracking numbers like any other.

Quirks handled:

- ``tracking_history`` is oldest first and ``tracking_status`` repeats its newest entry
  (sometimes under another ``object_id``): both are read, and an event equal by meaning
  to one already read is dropped. When the history is empty, ``tracking_status`` alone
  gives the event. A ``tracking_status`` without ``status_date`` (a track the carrier
  has not scanned yet) adds nothing.
- ``status`` (UNKNOWN, PRE_TRANSIT, TRANSIT, DELIVERED, RETURNED, FAILURE) is refined by
  ``substatus.code`` (``out_for_delivery``, ``return_to_sender``, ``delivery_attempted``...)
  and, per Shippo's docs, a TRANSIT entry whose substatus says ``action_required`` is an
  exception. DELIVERED and RETURNED stay what they are whatever the substatus says
  (Shippo's own sample carries ``information_received`` on a DELIVERED entry), and a
  FAILURE stays an exception unless its substatus says it is going back to the sender.
  ``carrier_status`` is the substatus code, else the status.
- ``status_date`` is ISO 8601 in UTC (``Z``); one without an offset, which Shippo does not
  document, is read in the default zone. ``location`` may be ``null``.

``references``: ``metadata`` (``data.metadata``, the free text set when the track was
registered, e.g. ``"Order 000123"``). ``tracking_url``: ``data.tracking_url_provider``
when present. No aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.normalize.fields import (
    optional_text,
    read_each,
    require_object,
    require_text,
    text_or_number,
)
from app.normalize.model import ParseContext, ShipmentUpdate, Status, TrackingEvent, oldest_first
from app.normalize.times import parse_timestamp

_STATUSES = {
    "UNKNOWN": Status.UNKNOWN,
    "PRE_TRANSIT": Status.INFO_RECEIVED,
    "TRANSIT": Status.IN_TRANSIT,
    "DELIVERED": Status.DELIVERED,
    "RETURNED": Status.RETURNED,
    "FAILURE": Status.EXCEPTION,
}
# Substatus codes that say more than their status; the others (package_accepted,
# package_departed, delayed, other...) leave the status as it is.
_SUBSTATUSES = {
    "information_received": Status.INFO_RECEIVED,
    "out_for_delivery": Status.OUT_FOR_DELIVERY,
    "pickup_available": Status.OUT_FOR_DELIVERY,
    "address_issue": Status.EXCEPTION,
    "contact_carrier": Status.EXCEPTION,
    "delivery_attempted": Status.EXCEPTION,
    "location_inaccessible": Status.EXCEPTION,
    "notice_left": Status.EXCEPTION,
    "package_damaged": Status.EXCEPTION,
    "reschedule_delivery": Status.EXCEPTION,
    "package_undeliverable": Status.EXCEPTION,
    "package_disposed": Status.EXCEPTION,
    "package_lost": Status.EXCEPTION,
    "return_to_sender": Status.RETURNED,
    "package_unclaimed": Status.RETURNED,
}
TRACK_EVENT = "track_updated"


def _status(status: str, substatus: Mapping[str, Any]) -> Status:
    main = _STATUSES.get(status.upper(), Status.UNKNOWN)
    if main in (Status.DELIVERED, Status.RETURNED):
        return main
    refined = _SUBSTATUSES.get(optional_text(substatus.get("code")).lower())
    if main is Status.EXCEPTION:  # a FAILURE is never softened, only sharpened to a return
        return Status.RETURNED if refined is Status.RETURNED else main
    if refined is not None:
        return refined
    if main is Status.IN_TRANSIT and substatus.get("action_required") is True:
        return Status.EXCEPTION
    return main


def _event(entry: Mapping[str, Any], where: str, context: ParseContext) -> TrackingEvent:
    raw_substatus = entry.get("substatus")
    substatus = raw_substatus if isinstance(raw_substatus, Mapping) else {}
    raw_location = entry.get("location")
    location = raw_location if isinstance(raw_location, Mapping) else {}
    status = optional_text(entry.get("status"))
    return TrackingEvent(
        occurred_at=parse_timestamp(
            entry.get("status_date"), context.default_zone, field=f"{where}.status_date"
        ),
        status=_status(status, substatus),
        carrier_status=optional_text(substatus.get("code"), status),
        description=optional_text(entry.get("status_details"), substatus.get("text")),
        city=optional_text(location.get("city")),
        state=optional_text(location.get("state")),
    )


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a ``track_updated`` webhook; history and current status become the events."""
    body = require_object(payload, "body")
    if "event" in body and body["event"] != TRACK_EVENT:
        return []
    track = require_object(body.get("data"), "data")
    tracking_number = require_text(track.get("tracking_number"), "data.tracking_number")

    def read(entry: Mapping[str, Any], where: str) -> TrackingEvent:
        return _event(entry, where, context)

    events = list(read_each(track.get("tracking_history"), "data.tracking_history", read))
    current = track.get("tracking_status")
    if current is not None:
        current = require_object(current, "data.tracking_status")
        if current.get("status_date") is not None:
            events.append(read(current, "data.tracking_status"))

    metadata = text_or_number(track.get("metadata"))
    return [
        ShipmentUpdate(
            tracking_number,
            oldest_first(events),
            tracking_url=optional_text(track.get("tracking_url_provider")) or None,
            references={"metadata": metadata} if metadata else {},
        )
    ]

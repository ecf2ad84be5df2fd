"""17TRACK tracking webhooks (API v2.x: ``TRACKING_UPDATED`` and ``TRACKING_STOPPED``).

The body is ``{event, data: {number, carrier, param, tag, track_info}}``; each of
``track_info.tracking.providers[]`` (first mile, last mile...) has its own ``events[]``,
newest first. They are merged, exact repeats dropped (a hand-over can be reported by
both providers) and sorted oldest first; equal times keep the carriers' chronology.
A body without ``event`` is read as an update; other ``event`` values yield nothing.

Quirks handled:

- The published sample has ``tracking``, ``latest_status``... directly under ``data`` and
  a ``track_info`` holding only part of ``shipping_info``. So ``tracking`` is read from
  ``data.track_info`` when it has one, else from ``data`` itself.
- Time: ``time_iso`` (carrier-local, with an offset; one without an offset yields to
  ``time_utc`` when that is sent), else ``time_utc``, else ``time_raw``
  (``{date, time, timezone}``, timezone as ``-03:00``, ``UTC-3``...). 17TRACK documents no
  zone: a time without an offset is read in the default zone. The first of them present
  must be readable; an event with none is rejected.
- Place: ``address.city`` / ``address.state``; only when the address names neither,
  the free-text ``location`` is split: ``"GASQUET, CA, US"`` → GASQUET, CA (the last
  part is dropped when there are three, or when it is the address's country).
- Status from ``sub_status`` (``Exception_Returned``, ``Exception_Returning`` → returned,
  else its main key), else ``stage`` (a main key such as ``Delivered`` or a milestone such
  as ``PickedUp``, ``Returned``); neither → unknown. ``carrier_status`` is ``sub_status``,
  else ``stage``.
- ``TRACKING_STOPPED`` carries no events: an update without events (nothing when it names
  no number).

``references``: ``tag`` (``data.tag``, the free tag set when the number was registered).
No tracking URL (17TRACK sends no public link), no aliases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from app.normalize.fields import (
    optional_text,
    read_each,
    require_list,
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

_MAIN_STATUSES = {
    "NotFound": Status.UNKNOWN,
    "InfoReceived": Status.INFO_RECEIVED,
    "InTransit": Status.IN_TRANSIT,
    "Expired": Status.EXCEPTION,
    "AvailableForPickup": Status.OUT_FOR_DELIVERY,
    "OutForDelivery": Status.OUT_FOR_DELIVERY,
    "DeliveryFailure": Status.EXCEPTION,
    "Delivered": Status.DELIVERED,
    "Exception": Status.EXCEPTION,
    # Milestone key stages, which an event's ``stage`` may also name.
    "PickedUp": Status.IN_TRANSIT,
    "Departure": Status.IN_TRANSIT,
    "Arrival": Status.IN_TRANSIT,
    "Returning": Status.RETURNED,
    "Returned": Status.RETURNED,
}
_RETURN_SUB_STATUSES = {"Exception_Returned", "Exception_Returning"}
_EVENTS = {"TRACKING_UPDATED", "TRACKING_STOPPED"}
UTC_ZONE = ZoneInfo("UTC")
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?")


def _status(stage: str, sub_status: str) -> Status:
    if sub_status in _RETURN_SUB_STATUSES:
        return Status.RETURNED
    from_sub = _MAIN_STATUSES.get(sub_status.partition("_")[0])
    if from_sub is not None:
        return from_sub
    return _MAIN_STATUSES.get(stage, Status.UNKNOWN)


def _offset(zone: str, where: str) -> str:
    """A ``time_raw.timezone`` as an ISO offset (``""`` when there is none)."""
    if not zone:
        return ""
    if zone.upper() in {"Z", "UTC", "GMT"}:
        return "+00:00"
    match = _OFFSET.fullmatch(zone)
    if match is None or int(match[2]) > 23:
        raise PayloadRejected(f"{where} is not a UTC offset: {zone[:40]!r}")
    return f"{match[1]}{int(match[2]):02d}:{match[3] or '00'}"


def _raw_time(raw: Any, where: str, zone: ZoneInfo) -> datetime | None:
    """``time_raw`` (``{date, time, timezone}``) in UTC, or None when it holds no date."""
    raw = require_object(raw, where)
    day = optional_text(raw.get("date")).replace("/", "-")
    clock = optional_text(raw.get("time"))
    offset = _offset(optional_text(raw.get("timezone")), f"{where}.timezone")
    if not day:
        if clock:
            raise PayloadRejected(f"{where}.date is missing")
        return None
    try:
        date.fromisoformat(day)
    except ValueError:
        raise PayloadRejected(f"{where}.date is not a date: {day[:40]!r}") from None
    try:
        time.fromisoformat(clock or "00:00")
    except ValueError:
        raise PayloadRejected(f"{where}.time is not a time of day: {clock[:40]!r}") from None
    if not clock and not offset:
        return parse_timestamp(day, zone, field=where)
    return parse_timestamp(f"{day}T{clock or '00:00'}{offset}", zone, field=where)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _has_offset(value: Any) -> bool:
    try:
        return datetime.fromisoformat(str(value).strip()).utcoffset() is not None
    except ValueError:
        return False


def _occurred_at(event: Mapping[str, Any], where: str, context: ParseContext) -> datetime:
    iso, utc = event.get("time_iso"), event.get("time_utc")
    if not _absent(iso):
        local = parse_timestamp(iso, context.default_zone, field=f"{where}.time_iso")
        # A time_iso written without its offset is ambiguous; time_utc is not.
        if _absent(utc) or _has_offset(iso):
            return local
    if not _absent(utc):
        return parse_timestamp(utc, UTC_ZONE, field=f"{where}.time_utc")
    raw = event.get("time_raw")
    found = None if _absent(raw) else _raw_time(raw, f"{where}.time_raw", context.default_zone)
    if found is None:
        raise PayloadRejected(f"{where}.time_iso is missing, and so are time_utc and time_raw")
    return found


def _place(event: Mapping[str, Any]) -> tuple[str, str]:
    raw_address = event.get("address")
    address = raw_address if isinstance(raw_address, Mapping) else {}
    city, state = optional_text(address.get("city")), optional_text(address.get("state"))
    if city or state:
        return city, state
    parts = [part.strip() for part in optional_text(event.get("location")).split(",")]
    parts = [part for part in parts if part]
    country = optional_text(address.get("country")).casefold()
    if len(parts) >= 3 or (parts and country and parts[-1].casefold() == country):
        parts = parts[:-1]
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def _event(event: Mapping[str, Any], where: str, context: ParseContext) -> TrackingEvent:
    stage = optional_text(event.get("stage"))
    sub_status = optional_text(event.get("sub_status"))
    translation = event.get("description_translation")
    translated = translation.get("description") if isinstance(translation, Mapping) else None
    city, state = _place(event)
    return TrackingEvent(
        occurred_at=_occurred_at(event, where, context),
        status=_status(stage, sub_status),
        carrier_status=sub_status or stage,
        description=optional_text(event.get("description"), translated),
        city=city,
        state=state,
    )


def _tracking(data: Mapping[str, Any]) -> tuple[Any, str]:
    """``tracking`` and its path: under ``track_info`` when it is there, else under ``data``."""
    info = data.get("track_info")
    if info is not None:
        info = require_object(info, "data.track_info")
        if "tracking" in info:
            return info["tracking"], "data.track_info.tracking"
    return data.get("tracking"), "data.tracking"


def _events(data: Mapping[str, Any], context: ParseContext) -> tuple[TrackingEvent, ...]:
    tracking, where = _tracking(data)
    if tracking is None:
        return ()
    tracking = require_object(tracking, where)
    merged: list[TrackingEvent] = []
    for i, provider in enumerate(require_list(tracking.get("providers"), f"{where}.providers")):
        at = f"{where}.providers.{i}"
        events = read_each(
            require_object(provider, at).get("events"),
            f"{at}.events",
            lambda event, path: _event(event, path, context),
        )
        # Newest first in the payload: reversed, equal times keep their real order.
        merged.extend(reversed(events))
    return oldest_first(merged)


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a 17TRACK webhook: one tracking number, every provider's events."""
    body = require_object(payload, "body")
    event = body.get("event", "TRACKING_UPDATED")
    if not isinstance(event, str) or event not in _EVENTS:
        return []
    data = require_object(body.get("data"), "data")
    if event == "TRACKING_STOPPED" and not text_or_number(data.get("number")):
        return []
    number = require_text(data.get("number"), "data.number")
    tag = text_or_number(data.get("tag"))
    return [
        ShipmentUpdate(
            number,
            _events(data, context),
            references={"tag": tag} if tag else {},
        )
    ]

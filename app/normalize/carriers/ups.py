"""UPS Track Alert webhooks (``TrackingEvent`` of ``UPSTrackAlert.yaml``, standard and enhanced).

UPS posts **one event per webhook** as a flat object (no envelope, no history: the relay
accumulates the events), so each POST yields one update with one event. Quirks:

- Times are split strings: ``YYYYMMDD`` dates and ``HHMMSS`` times. The event time is
  ``gmtActivityDate`` + ``gmtActivityTime`` (UTC) when UTC fields are sent; else
  ``localActivityDate`` + ``localActivityTime`` with ``gmtOffset`` (``"-04.00"`` means
  -04:00, ``"+05.30"`` +05:30) when that is sent; else the local time is read in the
  default zone (UPS documents no zone: it is the local time of the scan's place). A UTC
  or offset field that is present but unreadable is rejected, not skipped. A date or time
  sent as a JSON number is read as its digits (a time's lost leading zeros restored).
- ``activityStatus.type`` is coarse: ``D`` covers loaded-on-vehicle and out-for-delivery as
  well as delivered, so ``D`` is *delivered* only when ``actualDeliveryDate`` is filled,
  else *out_for_delivery*. ``M`` manifest → info_received; ``I`` in progress and ``U``
  updated delivery date → in_transit, except code ``OT`` (UPS's "Out for Delivery", which
  Track Alert sends as type ``I``) → out_for_delivery; ``X`` → exception. ``MV`` (manifest
  void: the shipper voided the label, so the package will not travel as registered) →
  exception, like a cancelled label elsewhere (EasyPost ``cancelled``): someone must look.
  Returns have no type of their own: an ``X`` or ``I`` event whose description contains
  ``RETURN`` (returned/returning to shipper) or the pt-BR ``DEVOLU``/``DEVOLV``
  (devolução, devolvido), case-insensitively, is *returned*. Other types → unknown.
- ``carrier_status`` is ``<type>/<code>/<descriptionCode>`` (e.g. ``I/OT/021``), trailing
  blank parts left out. ``descriptionCode`` may be a JSON number (the published OpenAPI
  example writes ``021`` unquoted): a number is written with three digits, so ``21`` and
  ``"021"`` give the same code and the same event identity.
- City and state are ``activityLocation.city`` / ``stateProvince`` as sent (case varies).

The payload carries no order reference and no public tracking link, so ``references``
and ``tracking_url`` stay empty. The enhanced ``alternateTrackingNumber`` (e.g. the
Mail Innovations number of a package) is an alias: a shipment registered under it
matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from app.normalize.fields import optional_text, require_object, require_text
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate, Status, TrackingEvent
from app.normalize.times import EARLIEST, LATEST

_TYPES = {
    "M": Status.INFO_RECEIVED,
    "MV": Status.EXCEPTION,
    "I": Status.IN_TRANSIT,
    "U": Status.IN_TRANSIT,
    "X": Status.EXCEPTION,
}
_OUT_FOR_DELIVERY_CODES = {"OT"}
_RETURN_TYPES = {"X", "I"}
_RETURN_WORDS = ("RETURN", "DEVOLU", "DEVOLV")
_DATE = re.compile(r"[0-9]{8}")
_TIME = re.compile(r"[0-9]{6}")
_OFFSET = re.compile(r"([+-])([0-9]{1,2})[.:]([0-9]{2})")


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _digits(value: Any, width: int) -> str | None:
    """A JSON number's digits (zero-padded to ``width``) or a string trimmed; else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value).zfill(width)
    if isinstance(value, str):
        return value.strip()
    return None


def _moment(payload: Mapping[str, Any], date_key: str, time_key: str, zone: tzinfo) -> datetime:
    date = _digits(payload.get(date_key), 8)
    if date is None or not _DATE.fullmatch(date):
        raise PayloadRejected(f"{date_key} is not a YYYYMMDD date: {payload.get(date_key)!r:.40}")
    time = _digits(payload.get(time_key), 6)
    if time is None or not _TIME.fullmatch(time):
        raise PayloadRejected(f"{time_key} is not an HHMMSS time: {payload.get(time_key)!r:.40}")
    try:
        local = datetime.strptime(date + time, "%Y%m%d%H%M%S").replace(tzinfo=zone)
        utc = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadRejected(f"{date_key}/{time_key} is not a real time: {date} {time}") from None
    if not EARLIEST <= utc < LATEST:
        raise PayloadRejected(f"{date_key} is not a plausible tracking time: {date}")
    return utc


def _offset(value: Any) -> tzinfo:
    match = _OFFSET.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[2]) > 14 or int(match[3]) >= 60:
        raise PayloadRejected(f"gmtOffset is not a ±HH.MM offset: {value!r:.40}")
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


def _occurred_at(payload: Mapping[str, Any], context: ParseContext) -> datetime:
    if _present(payload.get("gmtActivityDate")) or _present(payload.get("gmtActivityTime")):
        return _moment(payload, "gmtActivityDate", "gmtActivityTime", UTC)
    offset = payload.get("gmtOffset")
    zone = _offset(offset) if _present(offset) else context.default_zone
    return _moment(payload, "localActivityDate", "localActivityTime", zone)


def _carrier_status(activity: Mapping[str, Any], kind: str) -> str:
    parts = [
        kind,
        optional_text(activity.get("code")).upper(),
        _digits(activity.get("descriptionCode"), 3) or "",
    ]
    while parts and not parts[-1]:
        parts.pop()
    return "/".join(parts)


def _real_date(value: str | None) -> bool:
    """``YYYYMMDD`` naming a real day (not ``00000000`` or ``N/A``)."""
    if value is None or not _DATE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")  # a calendar check; no instant is made
    except ValueError:
        return False
    return True


def _status(kind: str, code: str, description: str, payload: Mapping[str, Any]) -> Status:
    if kind == "D":
        delivered = _real_date(_digits(payload.get("actualDeliveryDate"), 8))
        return Status.DELIVERED if delivered else Status.OUT_FOR_DELIVERY
    if kind in _RETURN_TYPES and any(word in description.upper() for word in _RETURN_WORDS):
        return Status.RETURNED
    if kind == "I" and code in _OUT_FOR_DELIVERY_CODES:
        return Status.OUT_FOR_DELIVERY
    return _TYPES.get(kind, Status.UNKNOWN)


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read one Track Alert event."""
    body = require_object(payload, "body")
    tracking_number = require_text(body.get("trackingNumber"), "trackingNumber")
    activity = require_object(body.get("activityStatus"), "activityStatus")
    kind = require_text(activity.get("type"), "activityStatus.type").upper()
    code = optional_text(activity.get("code")).upper()
    description = optional_text(activity.get("description"))
    location = body.get("activityLocation")
    place = location if isinstance(location, Mapping) else {}
    event = TrackingEvent(
        occurred_at=_occurred_at(body, context),
        status=_status(kind, code, description, body),
        carrier_status=_carrier_status(activity, kind),
        description=description,
        city=optional_text(place.get("city")),
        state=optional_text(place.get("stateProvince")),
    )
    alternate = optional_text(payload.get("alternateTrackingNumber"))
    aliases = (alternate,) if alternate and alternate != tracking_number else ()
    return [ShipmentUpdate(tracking_number, (event,), aliases=aliases)]

"""FedEx Advanced Integrated Visibility (AIV) tracking webhooks (formerly Shipment Visibility).

FedEx publishes the top of the pushed body's schema (``TestWebhookOutputVO``:
``transactionId``, ``outputMetaData[]``, ``output.completeTrackResults[]``) and points its
items at the Track API's ``CompleteTrackResult``, but prints no pushed body. So the body
read here is ``{output: {completeTrackResults: [{trackingNumber, trackResults: [{
trackingNumberInfo, additionalTrackingInfo, latestStatusDetail, scanEvents, dateAndTimes,
...}]}]}}`` as in the Track API v1 response (``POST /track/v1/trackingnumbers``).
``transactionId``, ``outputMetaData`` and ``alerts`` are not read.

Quirks handled:

- Several tracking numbers: every ``completeTrackResults[]`` entry and every one of its
  ``trackResults[]`` is read (FedEx does not say whether a push batches numbers; the
  array allows it). The number is ``trackingNumberInfo.trackingNumber`` (the package the
  scans belong to), else the entry's ``trackingNumber`` (the number asked about), which is
  an alias when the two differ. Track results of one number (FedEx lists "duplicate"
  shipments sharing a number as several ``trackResults``) make one update.
- A track result with an ``error`` (e.g. ``TRACKING.TRACKINGNUMBER.NOTFOUND``) and no
  scans says nothing about a package: it is skipped, not rejected.
- Out of order: FedEx pushes new events while older ones are retried, and lists scans
  newest first; they are sorted by time (ties keep their order), exact repeats dropped.
- Whole history or only the newest event, depending on the webhook project's "tracking
  type": both are read the same way; a resent scan has the same identity and is a
  duplicate in the store.
- Status comes from the documented codes, never from the text: the scan's ``eventType``
  when it is a code of the table below, else its ``derivedStatusCode``, else unknown.
  ``OC DS PD LC RD RG RP`` info_received (label, pickup pending, e-mailed return label);
  ``DO PU US IP`` and the in-transit, delivery-date and delivery-option codes (``AR AF AC
  IT OX PM DP DR CP EA IN MD TR CC RC CH SF FD AE AO DY RR RM HA RA PR AS``) in_transit;
  ``OD`` and ``HP``/``HL`` (waiting at a FedEx location for the recipient, like
  AfterShip's AvailableForPickup: VTEX's ``isDelivered`` cannot be taken back)
  out_for_delivery; ``DL`` delivered; ``DE SE DD CD`` and ``CA`` (shipment cancelled)
  exception; ``RS`` (returning to shipper) and ``RT`` (return to shipper requested)
  returned. ``carrier_status`` is ``eventType`` (``derivedStatusCode`` when there is
  none): FedEx documents no event id, and (number, date, eventType) names a scan.
- Delivered only with a delivery scan: a scan whose ``eventType`` is ``DL`` (or that has
  no known ``eventType`` and ``derivedStatusCode`` ``DL``). ``latestStatusDetail`` (the
  newest status, without a time), ``deliveryDetails``, ``availableImages`` and the
  ``ACTUAL_DELIVERY`` date never make a shipment delivered by themselves.
- Proof of delivery: with signature or picture proof enabled FedEx pushes a delivery
  twice with the same delivery timestamp, the second carrying the proof. Only the scans
  are events, so the second push's ``DL`` scan is the first one again (same time, code,
  text and place): a duplicate, and no PUT.
- Times: ``scanEvents[].date`` is the scan's local time with its offset; one without an
  offset is read in the default zone (FedEx documents no zone). ``dateAndTimes[]`` values
  have no offset (and may be bare dates): only ``ACTUAL_DELIVERY`` is read, as the time
  of a ``DL`` scan that has no ``date`` of its own, in the default zone. The others
  (``ESTIMATED_DELIVERY``, ``SHIP``...) are not events and never reject a push.
- Descriptions may be localized (the project's "payload language") and lost their
  trailing full stops in September 2025: they are kept as sent. ``eventDescription``
  is the text, with ``exceptionDescription`` appended (``"<text> - <exception>"``) when
  it says something more; ``derivedStatus`` stands in for a missing text.
- Place: ``scanLocation.city`` and ``stateOrProvinceCode``. Subscriptions by tracking
  number mask street lines and postal codes, which are not read anyway.

``tracking_url``: none (the payload carries no link). ``references``: each
``additionalTrackingInfo.packageIdentifiers[]`` under its ``type`` in lower case
(``customer_reference``, ``invoice``, ``purchase_order``, ``shipper_reference``,
``department``, ``return_materials_authorization``...; an entry without a type is
``reference``); ``value`` may be a string, a number or an array (its first non-blank
item); the first of each type wins. Malformed identifiers are skipped, not rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from app.normalize.fields import (
    object_or_empty,
    optional_text,
    require_list,
    require_object,
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

# "Status Code and Statuses for Webhook Tracking Events" (FedEx API reference guide), plus
# SF, FD, HL of the Track API's wider list.
_STATUSES: Mapping[str, Status] = {
    **dict.fromkeys(("OC", "DS", "PD", "LC", "RD", "RG", "RP"), Status.INFO_RECEIVED),
    **dict.fromkeys(("DO", "PU", "US", "IP"), Status.IN_TRANSIT),
    **dict.fromkeys(
        ("AR", "AF", "AC", "IT", "OX", "PM", "DP", "DR", "CP", "EA", "IN", "MD", "TR", "CC"),
        Status.IN_TRANSIT,
    ),
    **dict.fromkeys(("RC", "CH", "SF", "FD", "AE", "AO", "DY"), Status.IN_TRANSIT),
    **dict.fromkeys(("RR", "RM", "HA", "RA", "PR", "AS"), Status.IN_TRANSIT),
    **dict.fromkeys(("OD", "HP", "HL"), Status.OUT_FOR_DELIVERY),
    "DL": Status.DELIVERED,
    **dict.fromkeys(("DE", "SE", "DD", "CD", "CA"), Status.EXCEPTION),
    **dict.fromkeys(("RS", "RT"), Status.RETURNED),
}
_ACTUAL_DELIVERY = "ACTUAL_DELIVERY"
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _status(scan: Mapping[str, Any]) -> tuple[Status, str]:
    """(status, carrier_status) of a scan, from its codes only."""
    kind = optional_text(scan.get("eventType")).upper()
    derived = optional_text(scan.get("derivedStatusCode")).upper()
    status = _STATUSES.get(kind, _STATUSES.get(derived, Status.UNKNOWN))
    return status, kind or derived


def _description(scan: Mapping[str, Any]) -> str:
    text = optional_text(scan.get("eventDescription"), scan.get("derivedStatus"))
    exception = optional_text(scan.get("exceptionDescription"))
    if exception and exception.casefold() not in text.casefold():
        return f"{text} - {exception}" if text else exception
    return text


def _actual_delivery(value: Any, where: str) -> tuple[str, str] | None:
    """(``dateTime``, its path) of the ``ACTUAL_DELIVERY`` entry of ``dateAndTimes``."""
    for index, item in enumerate(value if isinstance(value, list) else []):
        entry = object_or_empty(item)
        moment = optional_text(entry.get("dateTime"))
        if optional_text(entry.get("type")).upper() == _ACTUAL_DELIVERY and moment:
            return moment, f"{where}.dateAndTimes.{index}.dateTime"
    return None


def _event(
    scan: Mapping[str, Any],
    where: str,
    context: ParseContext,
    delivered_at: tuple[str, str] | None,
) -> TrackingEvent:
    status, code = _status(scan)
    moment, field = scan.get("date"), f"{where}.date"
    undated = moment is None or (isinstance(moment, str) and not moment.strip())
    if status is Status.DELIVERED and delivered_at is not None and undated:
        moment, field = delivered_at
    place = object_or_empty(scan.get("scanLocation"))
    return TrackingEvent(
        occurred_at=parse_timestamp(moment, context.default_zone, field=field),
        status=status,
        carrier_status=code,
        description=_description(scan),
        city=optional_text(place.get("city")),
        state=optional_text(place.get("stateOrProvinceCode")),
    )


def _reference_name(kind: str) -> str:
    return _NOT_WORD.sub("_", kind.lower()).strip("_") or "reference"


def _identifier_value(value: Any) -> str:
    if isinstance(value, list):
        return next((text for item in value if (text := text_or_number(item))), "")
    return text_or_number(value)


def _references(result: Mapping[str, Any]) -> dict[str, str]:
    identifiers = object_or_empty(result.get("additionalTrackingInfo")).get("packageIdentifiers")
    found: dict[str, str] = {}
    for item in identifiers if isinstance(identifiers, list) else []:
        entry = object_or_empty(item)
        value = _identifier_value(entry.get("value"))
        if value:
            found.setdefault(_reference_name(optional_text(entry.get("type"))), value)
    return found


def _update(
    result: Mapping[str, Any], where: str, asked: str, asked_where: str, context: ParseContext
) -> ShipmentUpdate | None:
    """One track result's update; None for a result FedEx could not track."""
    scans = require_list(result.get("scanEvents"), f"{where}.scanEvents")
    if not scans and object_or_empty(result.get("error")):
        return None
    number = text_or_number(object_or_empty(result.get("trackingNumberInfo")).get("trackingNumber"))
    number = number or asked
    if not number:
        raise PayloadRejected(
            f"{where}.trackingNumberInfo.trackingNumber is missing or empty, "
            f"and so is {asked_where}.trackingNumber"
        )
    delivered_at = _actual_delivery(result.get("dateAndTimes"), where)
    events = (
        _event(
            require_object(scan, f"{where}.scanEvents.{i}"),
            f"{where}.scanEvents.{i}",
            context,
            delivered_at,
        )
        for i, scan in enumerate(scans)
    )
    return ShipmentUpdate(
        number,
        oldest_first(events),
        aliases=(asked,) if asked and asked != number else (),
        references=_references(result),
    )


def _merged(first: ShipmentUpdate | None, other: ShipmentUpdate) -> ShipmentUpdate:
    """Two track results of one number as one update (the first one's references win)."""
    if first is None:
        return other
    return replace(
        first,
        events=oldest_first((*first.events, *other.events)),
        aliases=tuple(dict.fromkeys((*first.aliases, *other.aliases))),
        references={**other.references, **first.references},
    )


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read a push; each tracking number in it becomes one update."""
    body = require_object(payload, "body")
    if body.get("output") is None:
        raise PayloadRejected("output is missing: a FedEx push carries output.completeTrackResults")
    output = require_object(body["output"], "output")
    if output.get("completeTrackResults") is None:
        raise PayloadRejected("output.completeTrackResults is missing: a push lists track results")
    updates: dict[str, ShipmentUpdate] = {}
    entries = require_list(output["completeTrackResults"], "output.completeTrackResults")
    for i, item in enumerate(entries):
        where = f"output.completeTrackResults.{i}"
        entry = require_object(item, where)
        asked = text_or_number(entry.get("trackingNumber"))
        results = require_list(entry.get("trackResults"), f"{where}.trackResults")
        for j, result in enumerate(results):
            result_where = f"{where}.trackResults.{j}"
            update = _update(
                require_object(result, result_where), result_where, asked, where, context
            )
            if update is not None:
                updates[update.tracking_number] = _merged(
                    updates.get(update.tracking_number), update
                )
    return list(updates.values())

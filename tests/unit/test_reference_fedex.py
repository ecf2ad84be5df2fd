"""Contract tests: FedEx's published Track API example and webhook schema, against the adapter.

The files are read from ``$RELAY_REFERENCE_DIR/carriers/fedex/`` (see its SOURCE.md); they
are not copied into the project. FedEx prints no pushed body: its webhook schema
(``TestWebhookOutputVO``) wraps ``output.completeTrackResults[]`` of the Track API's
``CompleteTrackResult``, so the Track API response example is replayed as it is, as a
push body (it lacks the push's ``outputMetaData``, which the adapter does not read). The
two schema excerpts are checked to name the fields the adapter reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import fedex
from app.normalize.model import ParseContext, ShipmentUpdate, Status

FOLDER = "fedex"
RESPONSE = "track-api-response-docs-sample.json"
WEBHOOK_SCHEMA = "schema_excerpt.json"
TRACK_SCHEMA = "track-api-schema-excerpt.json"
UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def read(reference_dir: Path, name: str) -> Any:
    return json.loads((reference_dir / "carriers" / FOLDER / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = fedex.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_file_has_a_rule(reference_dir: Path) -> None:
    names = sorted(path.name for path in (reference_dir / "carriers" / FOLDER).glob("*.json"))

    assert names == sorted([RESPONSE, WEBHOOK_SCHEMA, TRACK_SCHEMA]), "replay it here"


def test_documented_track_api_response(reference_dir: Path) -> None:
    # Two entries: the first a package (every field filled), the second FedEx's
    # TRACKING.TRACKINGNUMBER.NOTFOUND error, which names no package and is skipped.
    update = parse_one(read(reference_dir, RESPONSE))

    # The package's own number; the number asked about (it differs in the example) an alias.
    assert (update.tracking_number, update.aliases) == ("128667043726", ("123456789012",))
    assert dict(update.references) == {"shipper_reference": "ASJFGVAS"}
    assert update.tracking_url is None
    (event,) = update.events
    assert event.occurred_at.isoformat() == "2018-02-02T19:01:00+00:00"  # 12:01:00-07:00
    assert (event.city, event.state) == ("SEATTLE", "WA")
    # The example fills exceptionDescription on its pick-up scan too: it is appended.
    assert event.description == "Picked Up - Package available for clearance"
    assert (event.status, event.carrier_status) == (Status.IN_TRANSIT, "PU")
    # ACTUAL_DELIVERY, deliveryDetails (signedByName...) and availableImages are in the
    # example, but no DL scan: not delivered.
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)
    assert body["events"] == [
        {"city": "SEATTLE", "state": "WA", "description": event.description, "date": "2018-02-02"}
    ]


def test_documented_scan_time_with_an_offset_ignores_the_default_zone(
    reference_dir: Path,
) -> None:
    payload = read(reference_dir, RESPONSE)

    assert parse_one(payload, SAO_PAULO) == parse_one(payload, UTC_ZONE)


def test_documented_zone_less_actual_delivery_dates_a_delivery_scan_without_a_date(
    reference_dir: Path,
) -> None:
    # dateAndTimes ACTUAL_DELIVERY "2007-09-27T00:00:00" has no offset: the default zone.
    payload = read(reference_dir, RESPONSE)
    result = payload["output"]["completeTrackResults"][0]["trackResults"][0]
    scan = result["scanEvents"][0]
    scan.update(eventType="DL", derivedStatusCode="DL", eventDescription="Delivered")
    del scan["date"], scan["exceptionDescription"]

    (event,) = parse_one(payload, SAO_PAULO).events

    assert (event.status, event.occurred_at.isoformat()) == (
        Status.DELIVERED,
        "2007-09-27T03:00:00+00:00",
    )
    body = build_tracking_body((event,), SAO_PAULO)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2007-09-27 00:00")


def test_latest_status_alone_never_makes_the_example_delivered(reference_dir: Path) -> None:
    payload = read(reference_dir, RESPONSE)
    result = payload["output"]["completeTrackResults"][0]["trackResults"][0]
    result["latestStatusDetail"].update(code="DL", derivedCode="DL", description="Delivered")

    (event,) = parse_one(payload).events
    assert event.status is Status.IN_TRANSIT
    assert build_tracking_body((event,), UTC_ZONE)["isDelivered"] is False


# --- the schema excerpts name what the adapter reads -------------------------------------


def _properties(schemas: Any, name: str) -> set[str]:
    return set(schemas[name]["properties"])


def test_webhook_body_wraps_the_track_apis_complete_track_results(reference_dir: Path) -> None:
    webhook = read(reference_dir, WEBHOOK_SCHEMA)["TestWebhookOutputVO"]["properties"]
    items = webhook["output"]["properties"]["completeTrackResults"]["items"]

    assert items == {"$ref": "#/components/schemas/CompleteTrackResult"}
    assert "outputMetaData" in webhook  # not read: its fields are not published


def test_track_api_schema_has_the_fields_the_adapter_reads(reference_dir: Path) -> None:
    schemas = read(reference_dir, TRACK_SCHEMA)

    assert {"trackingNumber", "trackResults"} <= _properties(schemas, "CompleteTrackResult")
    assert {
        "trackingNumberInfo",
        "additionalTrackingInfo",
        "scanEvents",
        "dateAndTimes",
        "error",
    } <= _properties(schemas, "TrackResult")
    assert "trackingNumber" in _properties(schemas, "TrackingNumberInfo_1")
    assert {
        "date",
        "eventType",
        "derivedStatusCode",
        "derivedStatus",
        "eventDescription",
        "exceptionDescription",
        "scanLocation",
    } <= _properties(schemas, "ScanEvent")
    assert {"city", "stateOrProvinceCode"} <= _properties(schemas, "AddressVO1")
    assert "packageIdentifiers" in _properties(schemas, "AdditionalTrackingInfo")
    identifier = schemas["PackageIdentifier"]["properties"]
    assert {"CUSTOMER_REFERENCE", "INVOICE", "PURCHASE_ORDER"} <= set(identifier["type"]["enum"])
    # Typed an array of strings, exemplified by a string: the adapter takes both.
    assert (identifier["value"]["type"], identifier["value"]["example"]) == ("array", "ASJFGVAS")
    moment = schemas["TrackingDateAndTime"]["properties"]
    assert "ACTUAL_DELIVERY" in moment["type"]["enum"]
    assert moment["dateTime"]["example"] == "2007-09-27T00:00:00"  # no offset

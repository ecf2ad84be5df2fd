"""Contract tests: ShipEngine's published samples, replayed through its adapter.

The samples are read from ``$RELAY_REFERENCE_DIR/carriers/shipengine/`` (see its
SOURCE.md); they are not copied into the project. ``webhook-*`` files are whole webhook
bodies. ``tracking-info-*`` is a ``tracking_information`` object from the official .NET
SDK's test mocks, i.e. an API response: it is what a ``track`` webhook carries in its
``data``, so it is replayed wrapped in the webhook envelope.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import shipengine
from app.normalize.model import ParseContext, ShipmentUpdate, Status

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
FOLDER = ("carriers", "shipengine")
LEGACY_CAPTURE = "webhook-api_track-delivered-2019-thirdparty-capture.json"
SDK_MOCK = "tracking-info-sdk-mock-unknown.json"
# The v2 resource_url shape shown on docs.shipstation.com's webhook schema page (SOURCE.md).
V2_LABEL_URL = "https://api.shipstation.com/v2/labels/se-1234567890/track"


def envelope(data: Any, resource_url: str | None = None) -> dict[str, Any]:
    resource_type = "TRACK_EVENT_V2" if resource_url else "API_TRACK"
    return {"resource_url": resource_url, "resource_type": resource_type, "data": data}


def sample(reference_dir: Path, name: str) -> Any:
    """A published sample as the webhook would carry it."""
    payload = json.loads(reference_dir.joinpath(*FOLDER, name).read_bytes())
    if name.startswith("tracking-info-"):
        return envelope(payload)
    if name.startswith("webhook-"):
        return payload
    raise AssertionError(f"no rule for replaying shipengine/{name}: add one to sample()")


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = shipengine.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def delivery(update: ShipmentUpdate, zone: ZoneInfo = UTC_ZONE) -> tuple[bool, str | None]:
    body = build_tracking_body(update.events, zone)
    return body["isDelivered"], body["deliveredDate"]


def test_every_published_sample_is_replayed(reference_dir: Path) -> None:
    names = sorted(path.name for path in reference_dir.joinpath(*FOLDER).glob("*.json"))

    assert names == [SDK_MOCK, LEGACY_CAPTURE]
    for name in names:
        update = parse_one(sample(reference_dir, name), SAO_PAULO)
        assert update.events, name
        assert all(event.occurred_at.tzinfo is UTC for event in update.events), name


def test_legacy_api_track_capture_is_delivered(reference_dir: Path) -> None:
    payload = sample(reference_dir, LEGACY_CAPTURE)
    update = parse_one(payload)

    assert update.tracking_number == "9361269903502070406152"
    # A v1 tracking URL names no label; the capture has no tracking_url (only "links").
    assert (update.tracking_url, dict(update.references), update.aliases) == (None, {}, ())
    (event,) = update.events
    assert (event.occurred_at.isoformat(), event.city, event.state, event.description) == (
        "2019-04-12T17:45:26.734000+00:00",  # legacy "event_date"
        "AUSTIN",
        "TX",
        "Delivered, Individual Picked Up at Post Office",
    )
    # The event has no status_code (2019 field set): being the newest, it takes the
    # tracking's DE; it has no code of its own to be its carrier_status.
    assert (event.status, event.carrier_status) == (Status.DELIVERED, "")
    assert delivery(update) == (True, "2019-04-12 17:45")
    # ...which agrees with the capture's own delivery date.
    assert payload["data"]["actual_delivery_date"].startswith("2019-04-12T17:45")
    assert delivery(update, SAO_PAULO) == (True, "2019-04-12 14:45")


def test_sdk_tracking_information_with_an_empty_event_status(reference_dir: Path) -> None:
    update = parse_one(sample(reference_dir, SDK_MOCK), SAO_PAULO)

    assert update.tracking_number == "1026167028310292"
    assert (update.tracking_url, dict(update.references), update.aliases) == (None, {}, ())
    (event,) = update.events
    # occurred_at and carrier_occurred_at both carry "Z": the default zone plays no part.
    assert (event.occurred_at.isoformat(), event.city, event.state, event.description) == (
        "2021-07-10T02:58:01+00:00",
        "",  # city_locality null
        "",  # state_province null
        "Electronic information submitted by shipper",
    )
    # status_code "" on the event: the tracking's UN; carrier_status is the carrier's own
    # code, carrier_status_code "3000".
    assert (event.status, event.carrier_status) == (Status.UNKNOWN, "3000")
    assert delivery(update) == (False, None)


def test_sdk_tracking_information_in_a_v2_envelope_names_its_label(reference_dir: Path) -> None:
    data = json.loads(reference_dir.joinpath(*FOLDER, SDK_MOCK).read_bytes())
    update = parse_one(envelope(data, V2_LABEL_URL))

    assert dict(update.references) == {"label_id": "se-1234567890"}
    assert update.events == parse_one(sample(reference_dir, SDK_MOCK)).events


# --- envelope rules, on our own fixture -------------------------------------------------

FIXTURE = Path(__file__).parent.parent / "fixtures" / "shipengine" / "delivered.json"


def test_other_resource_types_yield_nothing() -> None:
    payload = json.loads(FIXTURE.read_bytes())
    for resource_type in ("API_BATCH", "API_RATE", "REPORT_COMPLETE", "", None, ["API_TRACK"]):
        payload["resource_type"] = resource_type
        assert shipengine.parse(payload, ParseContext()) == [], resource_type

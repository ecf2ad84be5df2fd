"""Contract tests: UPS Track Alert's published examples, replayed through the ``ups`` adapter.

The samples are read from ``$RELAY_REFERENCE_DIR/carriers/ups/`` (see its SOURCE.md), not
copied into the project. They are the two request-body examples of the ``TrackingEvent``
webhook in UPS's OpenAPI file. Track Alert posts that flat object as the whole body (there
is no envelope), so unlike AfterShip's and EasyPost's bare objects they are replayed as
they are, unwrapped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import ups
from app.normalize.model import ParseContext, ShipmentUpdate, Status

UTC_ZONE = ZoneInfo("UTC")
CHARLOTTE = ZoneInfo("America/New_York")
OUT_FOR_DELIVERY = "trackalert-out-for-delivery-openapi-example.json"
DELIVERED = "trackalert-delivered-openapi-example.json"


def sample(reference_dir: Path, name: str) -> Any:
    return json.loads((reference_dir / "carriers" / "ups" / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = ups.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_is_replayed(reference_dir: Path) -> None:
    names = sorted(path.name for path in (reference_dir / "carriers" / "ups").glob("*.json"))

    assert names == sorted([OUT_FOR_DELIVERY, DELIVERED])


def test_out_for_delivery_example(reference_dir: Path) -> None:
    update = parse_one(sample(reference_dir, OUT_FOR_DELIVERY))

    assert update.tracking_number == "1Z204W4R0308071865"
    assert (update.tracking_url, update.aliases, dict(update.references)) == (None, (), {})
    (event,) = update.events
    # gmtActivity* 20240423 131519 (the local 09:15:19 is Charlotte's EDT).
    assert (event.occurred_at.isoformat(), event.city, event.state) == (
        "2024-04-23T13:15:19+00:00",
        "Charlotte",
        "NC",
    )
    assert event.description == "Out for Delivery"
    # Type I with UPS code OT ("Out for Delivery") is out for delivery, not merely in transit.
    assert (event.status, event.carrier_status) == (Status.OUT_FOR_DELIVERY, "I/OT/021")
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)


def test_delivered_example(reference_dir: Path) -> None:
    payload = sample(reference_dir, DELIVERED)
    update = parse_one(payload)

    assert update.tracking_number == "1Z204W4R0308071865"
    assert (update.tracking_url, update.aliases, dict(update.references)) == (None, (), {})
    (event,) = update.events
    assert (event.occurred_at.isoformat(), event.city, event.state) == (
        "2024-04-23T13:50:04+00:00",
        "CHARLOTTE",
        "NC",
    )
    assert event.description == "Delivered"
    assert (event.status, event.carrier_status) == (Status.DELIVERED, "D/FS/011")
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2024-04-23 13:50")
    # In the scan's own zone the delivered date is actualDeliveryDate + actualDeliveryTime.
    local = build_tracking_body(update.events, CHARLOTTE)["deliveredDate"]
    assert (payload["actualDeliveryDate"], payload["actualDeliveryTime"]) == ("20240423", "095004")
    assert local == "2024-04-23 09:50"


def test_the_two_posts_make_one_history_oldest_first(reference_dir: Path) -> None:
    # Track Alert sends one event per POST: the relay's history is their union.
    events = [
        *parse_one(sample(reference_dir, DELIVERED)).events,
        *parse_one(sample(reference_dir, OUT_FOR_DELIVERY)).events,
    ]
    body = build_tracking_body(events, UTC_ZONE)

    assert [e["description"] for e in body["events"]] == ["Out for Delivery", "Delivered"]
    assert [e["city"] for e in body["events"]] == ["Charlotte", "CHARLOTTE"]
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2024-04-23 13:50")


def test_delivery_type_without_an_actual_delivery_date_is_not_delivered(
    reference_dir: Path,
) -> None:
    # Type D also covers "loaded on vehicle"; only actualDeliveryDate makes it a delivery.
    payload = sample(reference_dir, DELIVERED)
    del payload["actualDeliveryDate"], payload["actualDeliveryTime"]

    (event,) = parse_one(payload).events
    assert event.status is Status.OUT_FOR_DELIVERY
    assert build_tracking_body((event,), UTC_ZONE)["isDelivered"] is False


@pytest.mark.parametrize(
    ("offset", "expected"),
    [("-04.00", "2024-04-23T13:50:04+00:00"), ("+05.30", "2024-04-23T04:20:04+00:00")],
)
def test_local_time_with_gmt_offset_when_the_utc_fields_are_missing(
    reference_dir: Path, offset: str, expected: str
) -> None:
    payload = sample(reference_dir, DELIVERED)
    del payload["gmtActivityDate"], payload["gmtActivityTime"]
    payload["gmtOffset"] = offset

    (event,) = parse_one(payload, ZoneInfo("Asia/Tokyo")).events
    assert event.occurred_at.isoformat() == expected


def test_local_time_without_offset_is_read_in_the_default_zone(reference_dir: Path) -> None:
    payload = sample(reference_dir, DELIVERED)
    del payload["gmtActivityDate"], payload["gmtActivityTime"]

    (event,) = parse_one(payload, CHARLOTTE).events
    assert event.occurred_at.isoformat() == "2024-04-23T13:50:04+00:00"


def test_description_code_as_a_yaml_number_reads_like_the_string(reference_dir: Path) -> None:
    # The OpenAPI YAML writes descriptionCode 021 unquoted; a sender may emit the number 21.
    payload = sample(reference_dir, OUT_FOR_DELIVERY)
    payload["activityStatus"]["descriptionCode"] = 21

    assert parse_one(payload) == parse_one(sample(reference_dir, OUT_FOR_DELIVERY))

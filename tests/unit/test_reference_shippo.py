"""Contract tests: Shippo's published samples, replayed through the Shippo adapter.

The samples are read from ``$RELAY_REFERENCE_DIR/carriers/shippo/`` (see its SOURCE.md);
they are not copied into the project.
"""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import shippo
from app.normalize.model import ParseContext, ShipmentUpdate, Status

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "shippo"
DOC_SAMPLE = "webhook-track_updated-doc-sample.json"
CASSETTE = "track-object-delivered-usps-sdk-cassette.json"


def sample(reference_dir: Path, name: str) -> Any:
    """A published sample as Shippo's webhook would carry it."""
    payload = json.loads((reference_dir / "carriers" / "shippo" / name).read_bytes())
    if name.startswith("track-object-"):
        # Not a webhook body: a Track from a recorded ``GET /tracks`` answer. The
        # ``track_updated`` webhook carries exactly that object as its ``data``.
        return {"event": "track_updated", "test": False, "data": payload}
    assert name.startswith("webhook-"), f"no rule for replaying shippo/{name}"
    return payload


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = shippo.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_is_replayed_here(reference_dir: Path) -> None:
    names = {path.name for path in (reference_dir / "carriers" / "shippo").glob("*.json")}

    assert names == {DOC_SAMPLE, CASSETTE}


def test_documented_webhook(reference_dir: Path) -> None:
    update = parse_one(sample(reference_dir, DOC_SAMPLE))

    assert update.tracking_number == "9205590164917312751089"
    assert dict(update.references) == {"metadata": "Order 000123"}
    assert update.tracking_url is None
    # tracking_status repeats the only history entry: one event.
    (event,) = update.events
    assert event.occurred_at.tzinfo is UTC
    assert (event.occurred_at.isoformat(), event.city, event.state) == (
        "2016-07-23T00:00:00+00:00",
        "Las Vegas",
        "NV",
    )
    assert event.description == "Your shipment has been delivered at the destination mailbox."
    # The sample's substatus (information_received) does not undo DELIVERED.
    assert (event.status, event.carrier_status) == (Status.DELIVERED, "information_received")
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2016-07-23 00:00")


USPS_HISTORY = [
    ("2016-12-07T00:00:00+00:00", "", "", Status.UNKNOWN,
     "The USPS has received the electronic shipment information and is awaiting the item."),
    ("2016-12-07T02:00:00+00:00", "San Francisco", "CA", Status.UNKNOWN,
     "The shipping label has been created and the USPS is awaiting the item."),
    ("2016-12-07T19:04:00+00:00", "San Francisco", "CA", Status.IN_TRANSIT,
     "Your shipment has been accepted at the USPS origin facility."),
    ("2016-12-07T20:19:00+00:00", "San Francisco", "CA", Status.IN_TRANSIT,
     "Your shipment has arrived at the USPS origin facility."),
    ("2016-12-07T21:45:00+00:00", "San Francisco", "CA", Status.IN_TRANSIT,
     "Your shipment has departed the USPS facility."),
    ("2016-12-07T22:05:00+00:00", "Oakland", "CA", Status.IN_TRANSIT,
     "Your shipment has arrived at the USPS facility."),
    ("2016-12-08T03:25:00+00:00", "Oakland", "CA", Status.IN_TRANSIT,
     "Your shipment has departed the USPS facility."),
    ("2016-12-08T06:40:00+00:00", "Berkeley", "CA", Status.IN_TRANSIT,
     "Your shipment has arrived at the post office."),
    ("2016-12-08T10:19:00+00:00", "Berkeley", "CA", Status.IN_TRANSIT,
     "Your shipment has been sorted completely."),
    # No substatus in this (older) recording: TRANSIT says no more than in transit.
    ("2016-12-08T10:29:00+00:00", "Berkeley", "CA", Status.IN_TRANSIT,
     "Your shipment is out for delivery."),
    ("2016-12-08T15:19:00+00:00", "Berkeley", "CA", Status.DELIVERED,
     "Your shipment has been delivered at the destination mailbox."),
]  # fmt: skip


def test_recorded_usps_track(reference_dir: Path) -> None:
    update = parse_one(sample(reference_dir, CASSETTE))

    assert update.tracking_number == "9205590164917337534322"
    assert dict(update.references) == {"metadata": "metadata"}
    assert update.tracking_url is None
    # 11 history entries; tracking_status repeats the last under another object_id.
    assert [
        (e.occurred_at.isoformat(), e.city, e.state, e.status, e.description) for e in update.events
    ] == USPS_HISTORY
    assert all(event.occurred_at.tzinfo is UTC for event in update.events)
    assert [event.carrier_status for event in update.events] == ["UNKNOWN"] * 2 + [
        "TRANSIT"
    ] * 8 + ["DELIVERED"]
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2016-12-08 15:19")
    assert build_tracking_body(update.events, SAO_PAULO)["deliveredDate"] == "2016-12-08 13:19"


def test_times_with_z_ignore_the_default_zone(reference_dir: Path) -> None:
    payload = sample(reference_dir, CASSETTE)

    assert parse_one(payload, SAO_PAULO) == parse_one(payload, UTC_ZONE)


# --- not about a published sample: other Shippo events ---------------------------------


@pytest.mark.parametrize(
    "event", ["transaction_created", "transaction_updated", "batch_purchased", None, ["x"]]
)
def test_an_event_other_than_track_updated_yields_nothing(event: Any) -> None:
    payload = json.loads((FIXTURES / "delivered.json").read_text(encoding="utf-8"))
    payload["event"] = event

    assert shippo.parse(payload, ParseContext()) == []

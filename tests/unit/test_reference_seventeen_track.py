"""Contract tests: 17TRACK's published sample, replayed through the 17TRACK adapter.

The sample is read from ``$RELAY_REFERENCE_DIR/carriers/17track/`` (see its SOURCE.md);
it is not copied into the project. It is a whole webhook body, replayed as it is.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import seventeen_track
from app.normalize.model import ParseContext, ShipmentUpdate, Status

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "17track"
UPS_DELIVERED = "webhook-TRACKING_UPDATED-delivered-ups-thirdparty-fixture.json"


def sample(reference_dir: Path, name: str) -> Any:
    assert name.startswith("webhook-"), f"no rule for replaying 17track/{name}"
    return json.loads((reference_dir / "carriers" / "17track" / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = seventeen_track.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_is_replayed_here(reference_dir: Path) -> None:
    names = {path.name for path in (reference_dir / "carriers" / "17track").glob("*.json")}

    assert names == {UPS_DELIVERED}


UPS_EVENTS = [
    # Address with a country only; location "US" is that country: no place.
    ("2022-03-29T05:43:08+00:00", "", "",
     "Shipper created a label, UPS has not received the package yet.",
     Status.INFO_RECEIVED, "InfoReceived"),
    # stage and sub_status null: nothing says what the scan means.
    ("2022-03-31T23:36:47+00:00", "Ontario", "CA", "Origin Scan", Status.UNKNOWN, ""),
    ("2022-04-02T09:15:00+00:00", "Anderson", "CA", "Arrived at Facility", Status.UNKNOWN, ""),
    ("2022-04-04T15:46:06+00:00", "Crescent City", "CA", "Out For Delivery Today",
     Status.OUT_FOR_DELIVERY, "OutForDelivery"),
    ("2022-04-04T23:35:22+00:00", "GASQUET", "CA", "DELIVERED", Status.DELIVERED, "Delivered"),
]  # fmt: skip


def test_ups_delivered_webhook(reference_dir: Path) -> None:
    payload = sample(reference_dir, UPS_DELIVERED)
    update = parse_one(payload)

    assert update.tracking_number == "1Z2617V10397725789"
    assert dict(update.references) == {}  # tag is null
    assert update.tracking_url is None
    # Newest first in the payload (times with -07:00), oldest first and UTC here.
    assert [
        (
            e.occurred_at.isoformat(),
            e.city,
            e.state,
            e.description,
            e.status,
            e.carrier_status,
        )
        for e in update.events
    ] == UPS_EVENTS
    assert all(event.occurred_at.tzinfo is UTC for event in update.events)
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2022-04-04 23:35")
    assert build_tracking_body(update.events, SAO_PAULO)["deliveredDate"] == "2022-04-04 20:35"
    # The sample's own summary agrees: latest status and Delivered milestone.
    assert payload["data"]["latest_status"]["status"] == "Delivered"
    (milestone,) = [m for m in payload["data"]["milestone"] if m["key_stage"] == "Delivered"]
    assert milestone["time_utc"][:16].replace("T", " ") == body["deliveredDate"]


def test_ups_webhook_reads_the_same_in_the_documented_nesting(reference_dir: Path) -> None:
    # The sample has ``tracking`` directly under ``data``; 17TRACK v2 documents it under
    # ``data.track_info``. Both layouts give the same update.
    mangled = sample(reference_dir, UPS_DELIVERED)
    documented = copy.deepcopy(mangled)
    documented["data"]["track_info"]["tracking"] = documented["data"].pop("tracking")

    assert parse_one(documented) == parse_one(mangled)


def test_ups_times_with_offsets_ignore_the_default_zone(reference_dir: Path) -> None:
    payload = sample(reference_dir, UPS_DELIVERED)

    assert parse_one(payload, SAO_PAULO) == parse_one(payload, UTC_ZONE)


# --- not about a published sample: the other 17TRACK notification ----------------------


def test_tracking_stopped_without_a_number_yields_nothing() -> None:
    payload = json.loads((FIXTURES / "stopped.json").read_text(encoding="utf-8"))
    del payload["data"]["number"]

    assert seventeen_track.parse(payload, ParseContext()) == []


@pytest.mark.parametrize("event", ["TRACKING_PAUSED", "tracking_updated", None, {"x": 1}])
def test_an_unknown_event_yields_nothing(event: Any) -> None:
    payload = json.loads((FIXTURES / "delivered.json").read_text(encoding="utf-8"))
    payload["event"] = event

    assert seventeen_track.parse(payload, ParseContext()) == []

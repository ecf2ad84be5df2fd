"""Contract tests: the carriers' published samples, replayed through the adapters.

The samples are read from ``$RELAY_REFERENCE_DIR/carriers/<carrier>/`` (see each folder's
SOURCE.md); they are not copied into the project. Bare objects are wrapped in the envelope
the carrier's webhook puts them in: an AfterShip Tracking in ``{"event", "msg"}``, an
EasyPost Tracker in an ``Event``.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import aftership, easypost
from app.normalize.model import (
    ParseContext,
    ShipmentUpdate,
    Status,
    TrackingEvent,
    event_identity,
)

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
ADAPTERS = {"aftership": aftership.parse, "easypost": easypost.parse}


def sample(reference_dir: Path, carrier: str, name: str) -> Any:
    """A published sample as the webhook would carry it."""
    payload = json.loads((reference_dir / "carriers" / carrier / name).read_bytes())
    if carrier == "aftership" and name.startswith("msg-"):
        return {"event": "tracking_update", "msg": payload}
    if carrier == "easypost" and name.startswith("tracker-"):
        return {"object": "Event", "description": "tracker.updated", "result": payload}
    if name.startswith(("webhook-", "event-")):
        return payload
    raise AssertionError(f"no rule for replaying {carrier}/{name}: add one to sample()")


def parse_one(carrier: str, payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = ADAPTERS[carrier](payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def places(events: tuple[TrackingEvent, ...]) -> list[tuple[str, str, str]]:
    return [(event.occurred_at.isoformat(), event.city, event.state) for event in events]


def published(reference_dir: Path) -> list[tuple[str, str]]:
    return sorted(
        (path.parent.name, path.name)
        for carrier in ADAPTERS
        for path in (reference_dir / "carriers" / carrier).glob("*.json")
    )


def test_every_published_sample_parses_to_utc_events_oldest_first(reference_dir: Path) -> None:
    samples = published(reference_dir)
    assert len(samples) >= 9, samples
    for carrier, name in samples:
        update = parse_one(carrier, sample(reference_dir, carrier, name))
        times = [event.occurred_at for event in update.events]
        assert all(time.tzinfo is UTC for time in times), name
        assert times == sorted(times), name
        assert update.tracking_number, name


# --- EasyPost ---------------------------------------------------------------------------


def test_easypost_in_transit_event(reference_dir: Path) -> None:
    update = parse_one(
        "easypost", sample(reference_dir, "easypost", "event-tracker-updated-in-transit.json")
    )

    assert update.tracking_number == "1"
    assert update.tracking_url == "https://track.easypost.com/1"
    assert places(update.events) == [
        ("2024-07-31T15:00:00+00:00", "", ""),
        ("2024-07-31T19:27:00+00:00", "ORLANDO", "FL"),
        ("2024-07-31T22:35:00+00:00", "ORLANDO", "FL"),
        ("2024-08-01T14:42:13+00:00", "ORLANDO", "FL"),
        ("2024-08-02T02:46:19+00:00", "KENLY", "NC"),
        ("2024-08-02T18:35:20+00:00", "EDISON TWP", "NJ"),
        ("2024-08-02T18:50:00+00:00", "EDISON", "NJ"),
    ]
    assert [event.status for event in update.events] == [Status.INFO_RECEIVED] + [
        Status.IN_TRANSIT
    ] * 6
    assert update.events[0].description == "Shipment information sent to FedEx"
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)


def test_easypost_raw_signed_body_reads_like_the_pretty_printed_one(reference_dir: Path) -> None:
    folder = reference_dir / "carriers" / "easypost"
    raw = json.loads((folder / "event-tracker-updated-in-transit.raw.json").read_bytes())

    assert parse_one("easypost", raw) == parse_one(
        "easypost", sample(reference_dir, "easypost", "event-tracker-updated-in-transit.json")
    )


def test_easypost_delivered_tracker(reference_dir: Path) -> None:
    update = parse_one("easypost", sample(reference_dir, "easypost", "tracker-delivered.json"))

    assert update.tracking_number == "9400100208303109500782"
    assert len(update.events) == 8
    first, last = update.events[0], update.events[-1]
    # USPS leaves "description" empty: the message is the text.
    assert (first.description, first.city, first.state) == (
        "Pre-Shipment Info Sent to USPS",
        "",
        "",
    )
    assert (last.occurred_at.isoformat(), last.city, last.state, last.status) == (
        "2025-02-09T09:42:47+00:00",
        "CHARLESTON",
        "SC",
        Status.DELIVERED,
    )
    assert [event.status for event in update.events].count(Status.DELIVERED) == 1
    assert build_tracking_body(update.events, UTC_ZONE)["deliveredDate"] == "2025-02-09 09:42"
    body = build_tracking_body(update.events, SAO_PAULO)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2025-02-09 06:42")


# --- AfterShip --------------------------------------------------------------------------

US_SHIPMENT = [
    ("2018-07-31T14:33:00+00:00", "", ""),
    ("2018-07-31T20:47:00+00:00", "BROOKLYN", "NY"),
    ("2018-07-31T21:51:00+00:00", "BROOKLYN", "NY"),
    ("2018-08-01T00:29:29+00:00", "BROOKLYN", "NY"),
    ("2018-08-01T04:13:04+00:00", "KEASBEY", "NJ"),
    ("2018-08-01T04:17:00+00:00", "KEASBEY", "NJ"),
    ("2018-08-01T08:30:14+00:00", "KEASBEY", "NJ"),
    ("2018-08-01T10:29:00+00:00", "DAYTON", "NJ"),
    ("2018-08-01T10:31:00+00:00", "DAYTON", "NJ"),
    ("2018-08-01T10:41:00+00:00", "DAYTON", "NJ"),
    ("2018-08-01T17:19:47+00:00", "Deal", "NJ"),
]


def test_aftership_tracking_with_city_and_state(reference_dir: Path) -> None:
    name = "msg-tracking-delivered-fedex-us-city-state.json"
    update = parse_one("aftership", sample(reference_dir, "aftership", name))

    assert update.tracking_number == "1111111111111"
    assert places(update.events) == US_SHIPMENT
    statuses = [event.status for event in update.events]
    assert statuses[4] == Status.EXCEPTION  # "Barcode label unreadable and replaced"
    assert (statuses[-2], statuses[-1]) == (Status.OUT_FOR_DELIVERY, Status.DELIVERED)
    assert update.events[-1].carrier_status == "Delivered_001"
    assert build_tracking_body(update.events, UTC_ZONE)["deliveredDate"] == "2018-08-01 17:19"


def test_aftership_tracking_without_offsets_is_read_in_the_default_zone(
    reference_dir: Path,
) -> None:
    # The same shipment as the city-state sample, its times written without an offset.
    payload = sample(reference_dir, "aftership", "msg-tracking-delivered-no-tz-offsets.json")

    assert places(parse_one("aftership", payload, UTC_ZONE).events) == US_SHIPMENT
    in_sao_paulo = parse_one("aftership", payload, SAO_PAULO)
    assert [event.occurred_at for event in in_sao_paulo.events] == [
        event.occurred_at + timedelta(hours=3)
        for event in parse_one("aftership", payload, UTC_ZONE).events
    ]


def test_aftership_tracking_with_mixed_offsets_and_location_only(reference_dir: Path) -> None:
    name = "msg-tracking-delivered-fedex-cn-jp-offsets.json"
    payload = sample(reference_dir, "aftership", name)
    update = parse_one("aftership", payload)

    assert len(update.events) == 14
    assert places(update.events)[:3] == [
        ("2018-07-23T06:21:39+00:00", "", ""),  # -05:00
        ("2018-07-23T08:58:00+00:00", "DONGGUAN CN", ""),  # +08:00, null city
        ("2018-07-23T12:45:00+00:00", "DONGGUAN CN", ""),
    ]
    assert places(update.events)[-1] == ("2018-07-25T01:10:00+00:00", "SAPPORO JP", "")
    assert update.events[-1].status == Status.DELIVERED
    # The sample's own delivery date (UTC, no offset) agrees with the Delivered checkpoint.
    body = build_tracking_body(update.events, UTC_ZONE)
    assert body["isDelivered"] is True
    assert body["deliveredDate"] == payload["msg"]["shipment_delivery_date"][:16].replace("T", " ")
    # Two scans in the same minute with different messages are two events.
    same_minute = [event for event in update.events if event.occurred_at.minute == 14]
    assert len(same_minute) == 2
    assert len({event_identity("aftership", "111111111111", e) for e in same_minute}) == 2


def test_aftership_tracking_marked_completed_still_counts_its_delivered_scan(
    reference_dir: Path,
) -> None:
    name = "msg-tracking-exception-013-marked-completed.json"
    payload = sample(reference_dir, "aftership", name)
    update = parse_one("aftership", payload)

    assert payload["msg"]["tag"] == "Exception"
    assert len(update.events) == 14
    assert update.events[-1].status == Status.DELIVERED
    assert build_tracking_body(update.events, UTC_ZONE)["isDelivered"] is True


def test_aftership_envelope_without_checkpoints(reference_dir: Path) -> None:
    name = "webhook-tracking_update-delivered-thirdparty-test.json"
    update = parse_one("aftership", sample(reference_dir, "aftership", name))

    assert update.tracking_number == "123456789"
    assert update.events == ()
    assert update.tracking_url is not None
    assert update.tracking_url.startswith("https://www.tnt.com/")


def test_aftership_documented_envelope(reference_dir: Path) -> None:
    name = "webhook-tracking_update-doc-sample-trimmed.json"
    update = parse_one("aftership", sample(reference_dir, "aftership", name), SAO_PAULO)

    assert update.tracking_number == "0000000000000000"
    (event,) = update.events
    assert (event.occurred_at.isoformat(), event.city, event.state) == (
        "2021-01-14T03:52:00+00:00",  # 00:52 without offset, read in São Paulo
        "",
        "",
    )
    assert (event.status, event.carrier_status) == (Status.IN_TRANSIT, "InTransit_001")
    assert event.description == "Departed Shipping Partner Facility, USPS Awaiting Item"


# --- every carrier's published samples have a contract test -----------------------------

REFERENCE_FOLDER = {"melhor_envio": "melhor-envio"}
"""Carrier path names whose reference folder is spelled differently."""


def test_every_carrier_with_published_samples_has_a_contract_test(reference_dir: Path) -> None:
    from app.ingest.carriers import BUILT_IN

    here = Path(__file__).parent
    missing = []
    for name, carrier in BUILT_IN.items():
        folder = reference_dir / "carriers" / REFERENCE_FOLDER.get(name, name)
        if not list(folder.glob("*.json")):
            continue
        module = carrier.parse.__module__.rsplit(".", 1)[-1]
        if name not in ADAPTERS and not (here / f"test_reference_{module}.py").exists():
            missing.append(f"{name} ({folder.name}): add tests/unit/test_reference_{module}.py")
    assert not missing, missing

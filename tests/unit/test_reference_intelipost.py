"""Contract tests: Intelipost's published webhook sample, replayed through the adapter.

The sample is read from ``$RELAY_REFERENCE_DIR/carriers/intelipost/`` (see its SOURCE.md),
not copied into the project. It is already a whole webhook body (``history``, ``invoice``,
``order_number``, ``tracking_code``...), so it is replayed as it is, with no envelope.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import intelipost
from app.normalize.model import ParseContext, ShipmentUpdate, Status

UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
IN_TRANSIT = "webhook-tracking-in_transit-doc-sample-via-thirdparty.json"


def sample(reference_dir: Path, name: str) -> Any:
    return json.loads((reference_dir / "carriers" / "intelipost" / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = intelipost.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_is_replayed(reference_dir: Path) -> None:
    names = [path.name for path in (reference_dir / "carriers" / "intelipost").glob("*.json")]

    assert names == [IN_TRANSIT]


def test_in_transit_sample(reference_dir: Path) -> None:
    update = parse_one(sample(reference_dir, IN_TRANSIT))

    assert update.tracking_number == "IP20160701BR"
    assert (update.tracking_url, update.aliases) == (None, ())
    assert dict(update.references) == {
        "order_number": "PEDIDO0004",
        "invoice_number": "1000",
        "invoice_series": "1",
        "invoice_key": "00000502834982004563550010000084111000132317",
        "volume_number": "1",
    }
    (event,) = update.events
    # event_date_iso 17:22 at -03:00; created_iso (19:36) is when Intelipost recorded it.
    assert (event.occurred_at.isoformat(), event.city, event.state) == (
        "2016-07-01T20:22:00+00:00",
        "",
        "",
    )
    assert event.description == "em processo de entrega"
    assert (event.status, event.carrier_status) == (Status.IN_TRANSIT, "IN_TRANSIT/27")
    body = build_tracking_body(update.events, SAO_PAULO)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)
    assert body["events"] == [
        {"city": "", "state": "", "description": "em processo de entrega", "date": "2016-07-01"}
    ]


def test_epoch_milliseconds_twin_gives_the_same_time(reference_dir: Path) -> None:
    payload = sample(reference_dir, IN_TRANSIT)
    del payload["history"]["event_date_iso"]

    assert parse_one(payload, ZoneInfo("Asia/Tokyo")) == parse_one(
        sample(reference_dir, IN_TRANSIT)
    )


def test_without_provider_message_the_micro_state_names_the_event(reference_dir: Path) -> None:
    payload = sample(reference_dir, IN_TRANSIT)
    payload["history"]["provider_message"] = None

    (event,) = parse_one(payload).events
    assert event.description == "CARGA REDESPACHADA"


def test_delivered_state_of_the_same_volume_is_delivered(reference_dir: Path) -> None:
    # No delivered sample is published: the in-transit one, moved on to DELIVERED.
    payload = sample(reference_dir, IN_TRANSIT)
    history = payload["history"]
    history["shipment_order_volume_state"] = "DELIVERED"
    history["shipment_order_volume_state_localized"] = "Entregue"
    history["shipment_volume_micro_state"] = None
    history["provider_message"] = ""
    history["esprinter_message"] = None
    history["event_date_iso"] = "2016-07-04T10:05:00.000-03:00"

    delivered = parse_one(payload)
    (event,) = delivered.events
    assert (event.status, event.carrier_status, event.description) == (
        Status.DELIVERED,
        "DELIVERED",
        "Entregue",
    )
    history_events = [*delivered.events, *parse_one(sample(reference_dir, IN_TRANSIT)).events]
    body = build_tracking_body(history_events, SAO_PAULO)
    assert [e["date"] for e in body["events"]] == ["2016-07-01", "2016-07-04"]
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2016-07-04 10:05")

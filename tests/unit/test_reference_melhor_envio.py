"""Contract tests: Melhor Envio's published samples, replayed through its adapter.

The samples are read from ``$RELAY_REFERENCE_DIR/carriers/melhor-envio/`` (see its
SOURCE.md); they are not copied into the project. The ``webhook-order.*`` file is a
whole webhook body and is replayed as it is. ``webhook-request-headers-*`` holds the
HTTP headers of a delivery, not a body: there is nothing to parse, so it is only
checked to be what SOURCE.md says (the signature scheme is tested with the verifiers).

The last tests need no published sample: they pin what the adapter does with webhooks
the documentation describes but does not show (the registration POST, event-only
statuses).
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deliver.vtex_body import build_tracking_body
from app.normalize.carriers import melhor_envio
from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    Status,
    event_identity,
)

FOLDER = "melhor-envio"
POSTED = "webhook-order.posted-doc-sample.json"
HEADERS = "webhook-request-headers-doc-sample.json"
UTC_ZONE = ZoneInfo("UTC")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "melhor_envio"


def read(reference_dir: Path, name: str) -> Any:
    return json.loads((reference_dir / "carriers" / FOLDER / name).read_bytes())


def parse_one(payload: Any, zone: ZoneInfo = UTC_ZONE) -> ShipmentUpdate:
    updates = melhor_envio.parse(payload, ParseContext(default_zone=zone))
    assert len(updates) == 1
    return updates[0]


def test_every_published_sample_has_a_rule(reference_dir: Path) -> None:
    names = sorted(path.name for path in (reference_dir / "carriers" / FOLDER).glob("*.json"))

    assert names == [POSTED, HEADERS], "a new sample: replay it in this module"


def test_documented_order_posted_webhook(reference_dir: Path) -> None:
    payload = read(reference_dir, POSTED)
    update = parse_one(payload)

    # data.tracking and data.self_tracking are null: the label UUID names the shipment.
    assert update.tracking_number == "0000aaaa-aa00-00aa-aa00-000000aaaaaa"
    assert update.aliases == ("ORD-2024XXXXXXXXXX",)
    assert dict(update.references) == {"tag": "tag1", "protocol": "ORD-2024XXXXXXXXXX"}
    # The doc's "https: //www..." with its stray blank, repaired.
    assert update.tracking_url == "https://www.melhorrastreio.com.br/rastreio/XXXXXXXXX"
    assert [
        (
            event.occurred_at.isoformat(),
            event.city,
            event.state,
            event.description,
            event.status,
            event.carrier_status,
        )
        for event in update.events
    ] == [
        ("2024-03-29T23:49:26+00:00", "", "", "Etiqueta criada", Status.INFO_RECEIVED, "created"),
        ("2024-03-29T23:55:00+00:00", "", "", "Objeto postado", Status.IN_TRANSIT, "posted"),
    ]
    body = build_tracking_body(update.events, UTC_ZONE)
    assert (body["isDelivered"], body["deliveredDate"]) == (False, None)
    # Every time carries +00:00: the default zone changes nothing.
    assert parse_one(payload, SAO_PAULO) == update


def test_the_next_webhook_repeats_the_milestones_with_the_same_identity(
    reference_dir: Path,
) -> None:
    posted = read(reference_dir, POSTED)
    delivered = copy.deepcopy(posted)
    delivered["event"] = "order.delivered"
    delivered["data"].update(
        status="delivered", tracking="AB123456789BR", delivered_at="2024-04-02T15:10:00+00:00"
    )
    before, after = parse_one(posted), parse_one(delivered)

    def identities(update: ShipmentUpdate) -> list[str]:
        return [
            event_identity("melhor_envio", update.tracking_number, event) for event in update.events
        ]

    # The tracking code arriving later changes neither the number nor the old events.
    assert after.tracking_number == before.tracking_number
    assert after.aliases == ("AB123456789BR", "ORD-2024XXXXXXXXXX")
    assert identities(after)[:2] == identities(before)
    assert len(after.events) == 3
    body = build_tracking_body(after.events, SAO_PAULO)
    assert (body["isDelivered"], body["deliveredDate"]) == (True, "2024-04-02 12:10")


def test_documented_request_headers_are_headers_not_a_body(reference_dir: Path) -> None:
    headers = read(reference_dir, HEADERS)

    assert headers["user-agent"].startswith("Melhor Envio Webhooks/")
    # base64 of an HMAC-SHA256: 32 bytes.
    assert len(base64.b64decode(headers["x-me-signature"], validate=True)) == 32


# --- what the documentation describes without a sample ----------------------------------


def own(fixture: str) -> Any:
    return json.loads((FIXTURES / f"{fixture}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event": "test"},
        {"data": None},
        {"event": "order.created", "data": {}},
        {"event": "order.created", "data": {"id": None}},
        {"event": "order.created", "data": {"id": "  "}},
    ],
)
def test_registration_test_post_without_a_label_yields_nothing(body: dict[str, Any]) -> None:
    # Registering a webhook sends a signed POST without a label that must get a success.
    assert melhor_envio.parse(body, ParseContext()) == []


@pytest.mark.parametrize("event", ["order.undelivered", "order.paused", "order.suspended"])
def test_exception_event_without_updated_at_is_rejected_naming_it(event: str) -> None:
    payload = own("in_transit")
    payload["event"] = event

    with pytest.raises(PayloadRejected) as rejected:
        melhor_envio.parse(payload, ParseContext())

    assert "data.updated_at" in rejected.value.detail


def test_paused_label_adds_an_exception_at_updated_at() -> None:
    payload = own("in_transit")
    payload["event"] = "order.paused"
    payload["data"]["updated_at"] = "2026-06-04T10:00:00+00:00"
    last = parse_one(payload).events[-1]

    assert (last.occurred_at.isoformat(), last.status, last.carrier_status) == (
        "2026-06-04T10:00:00+00:00",
        Status.EXCEPTION,
        "paused",
    )
    assert last.description == "Entrega pausada: aguardando ação do destinatário"


def test_received_at_a_drop_off_point_adds_an_event_only_when_timed() -> None:
    payload = own("in_transit")
    payload["event"] = "order.received"
    untimed = parse_one(payload)
    payload["data"]["updated_at"] = "2026-06-03T12:00:00+00:00"
    timed = parse_one(payload)

    assert [event.carrier_status for event in untimed.events] == [
        "created",
        "released",
        "generated",
        "posted",
    ]
    assert [event.carrier_status for event in timed.events] == [
        "created",
        "released",
        "generated",
        "received",
        "posted",
    ]
    assert timed.events[3].status == Status.IN_TRANSIT

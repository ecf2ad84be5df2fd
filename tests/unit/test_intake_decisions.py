"""The intake's decisions, without a database: what a webhook comes to (stored, duplicates,
quarantined, refused) and what a replay of the quarantine does, on the in-memory store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.errors import NotFound, Unauthorized, Unprocessable, UnsupportedMediaType
from app.ingest.carriers import BUILT_IN, Carrier
from app.ingest.intake import Accepted, Intake, ReplayReport
from app.normalize.carriers import generic
from app.normalize.model import ParseContext, PayloadRejected, ShipmentUpdate
from app.settings import Settings
from tests.support.memory_store import MemoryStore
from tests.support.signing import standard_webhooks_headers

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("clean_environment")]

T0 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
SECRET = "generic-secret-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Queued:
    """The ``on_queued`` callback: counts how often the worker would be woken."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def payload(number: str, *descriptions: str, **fields: Any) -> bytes:
    events = [
        {"time": (T0 + timedelta(hours=i)).isoformat(), "status": "in_transit", "description": d}
        for i, d in enumerate(descriptions)
    ]
    return json.dumps({"trackingNumber": number, "events": events, **fields}).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return standard_webhooks_headers(secret, body, timestamp=int(T0.timestamp()))


def rejecting(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    raise PayloadRejected("this adapter reads no pigeons yet")


PIGEON_V1 = Carrier("pigeon", BUILT_IN["generic"].verify, rejecting)
PIGEON_V2 = Carrier("pigeon", BUILT_IN["generic"].verify, generic.parse)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def queued() -> Queued:
    return Queued()


def intake(store: MemoryStore, queued: Queued, *carriers: Carrier) -> Intake:
    settings = Settings(
        _env_file=None,
        carriers={"generic": {"secret": SECRET}, "pigeon": {"allow_unsigned": True}},
    )
    chosen = {c.name: c for c in carriers} if carriers else {"generic": BUILT_IN["generic"]}
    return Intake(store, settings, chosen, on_queued=queued, clock=lambda: T0)


async def accept(relay: Intake, body: bytes, carrier: str = "generic") -> Accepted:
    return await relay.accept(carrier, signed(body), body, "application/json")


# -- accepted webhooks -----------------------------------------------------------------


async def test_new_events_are_counted_and_a_resent_webhook_is_all_duplicates(
    store: MemoryStore, queued: Queued
) -> None:
    relay = intake(store, queued)
    body = payload("TRK1", "Postado", "Em trânsito", orderId="O-1", invoiceNumber="INV-1")

    first = await accept(relay, body)
    again = await accept(relay, body)

    assert (first.new_events, first.duplicate_events) == (2, 0)
    assert (again.new_events, again.duplicate_events) == (0, 2)
    assert first.webhook_id != again.webhook_id
    assert queued.calls == 1  # one delivery, queued by the first
    history = await store.invoice_history("O-1", "INV-1")
    assert [e.description for e in history.events] == ["Postado", "Em trânsito"]
    assert await store.backlog(T0) == (1, 1)


async def test_events_of_an_unregistered_shipment_wake_no_worker(
    store: MemoryStore, queued: Queued
) -> None:
    result = await accept(intake(store, queued), payload("TRK1", "Postado"))

    assert (result.new_events, queued.calls) == (1, 0)
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert (view.registered, view.carrier, len(view.events)) == (False, "generic", 1)


# -- refused and quarantined webhooks ------------------------------------------------


async def test_an_unreadable_payload_is_quarantined_before_the_422(
    store: MemoryStore, queued: Queued
) -> None:
    body = json.dumps({"events": []}).encode()  # no trackingNumber

    with pytest.raises(Unprocessable) as refused:
        await accept(intake(store, queued), body)

    assert refused.value.status_code == 422
    [kept] = await store.quarantined()
    assert refused.value.extra == {"webhook_id": kept.id}
    assert (kept.carrier, kept.body, kept.received_at) == ("generic", body, T0)
    assert kept.error is not None
    assert refused.value.detail == f"generic payload could not be read: {kept.error}"
    assert await store.backlog(T0) == (0, 0)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"not json", "application/json"), (payload("TRK1", "Postado"), "text/plain")],
    ids=["not-json", "text-plain"],
)
async def test_a_body_that_is_not_json_is_refused_and_not_quarantined(
    store: MemoryStore, queued: Queued, body: bytes, content_type: str
) -> None:
    with pytest.raises(UnsupportedMediaType):
        await intake(store, queued).accept("generic", signed(body), body, content_type)

    assert await store.quarantined() == []
    assert await store.get_shipment("TRK1") is None


async def test_a_bad_signature_stores_nothing(store: MemoryStore, queued: Queued) -> None:
    body = payload("TRK1", "Postado")

    with pytest.raises(Unauthorized, match="signature"):
        await intake(store, queued).accept("generic", signed(body, "wrong"), body, None)

    assert await store.get_shipment("TRK1") is None
    assert await store.quarantined() == []


async def test_an_unknown_carrier_is_not_found(store: MemoryStore, queued: Queued) -> None:
    with pytest.raises(NotFound, match="known carriers: generic"):
        await accept(intake(store, queued), payload("TRK1", "Postado"), carrier="pigeons")


# -- replaying the quarantine ----------------------------------------------------------


async def test_a_replay_releases_what_todays_adapters_read_and_keeps_the_rest(
    store: MemoryStore, queued: Queued
) -> None:
    readable = payload("TRK1", "Postado", "Em trânsito", orderId="O-1", invoiceNumber="INV-1")
    unreadable = json.dumps({"events": []}).encode()
    first_ids = []
    for body in (readable, unreadable):
        with pytest.raises(Unprocessable) as refused:
            await accept(intake(store, queued, PIGEON_V1), body, carrier="pigeon")
        first_ids.append(refused.value.extra["webhook_id"])
    gone = await store.quarantine_webhook("retired", readable, "unreadable", T0)
    relay = intake(store, queued, PIGEON_V2)

    report = await relay.replay_quarantine()

    assert report == ReplayReport(replayed=1, still_quarantined=2, new_events=2)
    assert queued.calls == 1
    kept = {w.id: w.error for w in await store.quarantined()}
    assert set(kept) == {first_ids[1], gone}
    assert kept[gone] == "no carrier named 'retired' any more"
    assert kept[first_ids[1]] != "this adapter reads no pigeons yet"  # today's reason
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert {e.webhook_id for e in view.events} == {first_ids[0]}
    assert await store.backlog(T0) == (1, 1)

    assert await relay.replay_quarantine() == ReplayReport(0, 2, 0)
    assert await relay.replay_quarantine("retired") == ReplayReport(0, 1, 0)

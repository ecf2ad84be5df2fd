"""The store: dedup, the registry, the delivery queue (on the in-memory store as well as on
SQLite and PostgreSQL), and what only a database has: schema, time columns, durability."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from app.api.views import receipt_json
from app.normalize.model import Status
from app.store import (
    SCHEMA_VERSION,
    AttemptRecord,
    DeliveryJob,
    NotRetriable,
    SchemaTooNew,
    SqlStore,
    Store,
    sync_url,
)
from tests.integration.helpers import BRT, T0, StoreOpener, event, update

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)
BODY = b'{"raw": "webhook"}'


async def claim(store: Store, now: datetime, limit: int = 10) -> list[DeliveryJob]:
    return await store.claim_due_deliveries(now, now + LEASE, limit)


@pytest.fixture
def store(any_store: Store) -> Store:
    """This module's behaviour tests run on every kind of store (tests/integration/conftest.py);
    those about the database itself open a SqlStore on ``database_url``."""
    return any_store


def attempt(status_code: int | None, response_body: str | None = None) -> AttemptRecord:
    return AttemptRecord(
        started_at=T0,
        duration_ms=12.5,
        status_code=status_code,
        response_body=response_body,
        error=None if status_code == 200 else f"HTTP {status_code}",
    )


async def record_attempt(
    store: Store,
    job: DeliveryJob,
    *,
    state: str,
    covered_event_ids: tuple[int, ...],
    now: datetime,
    status_code: int = 200,
    next_attempt_at: datetime | None = None,
    body: dict[str, Any] | None = None,
    receipt: dict[str, Any] | None = None,
    response_body: str | None = None,
) -> None:
    await store.record_attempt(
        job,
        attempt(status_code, response_body),
        state=state,
        next_attempt_at=next_attempt_at,
        body=body or {"isDelivered": False, "deliveredDate": None, "events": []},
        covered_event_ids=covered_event_ids,
        receipt=receipt,
        now=now,
    )


def behind_the_stores_back(database_url: str, sql: str) -> None:
    """Change the database without the store (to fake what another relay version did)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


# -- schema and times ----------------------------------------------------------


async def test_migrate_is_idempotent_and_keeps_data(store: Store) -> None:
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)

    assert await store.migrate() == SCHEMA_VERSION
    assert await store.migrate() == SCHEMA_VERSION

    view = await store.get_shipment("TRK1")
    assert view is not None
    assert len(view.events) == 1


async def test_migrate_refuses_a_schema_from_a_newer_relay(database_url: str) -> None:
    store = SqlStore.open(database_url)
    try:
        await store.migrate()
        behind_the_stores_back(
            database_url, "UPDATE relay_meta SET value = '999' WHERE key = 'schema_version'"
        )

        with pytest.raises(SchemaTooNew, match="999"):
            await store.migrate()
    finally:
        await store.close()


async def test_times_round_trip_as_aware_utc(store: Store) -> None:
    ten_in_brasilia = datetime(2026, 4, 10, 10, 0, tzinfo=BRT)
    earlier_in_utc = datetime(2026, 4, 10, 12, 30, tzinfo=UTC)
    received = datetime(2026, 4, 10, 11, 0, tzinfo=BRT)
    await store.record_webhook(
        "generic",
        BODY,
        [
            update(
                "TRK1",
                event(ten_in_brasilia, "later"),
                event(earlier_in_utc, "earlier"),
                order_id="ORD-1",
                invoice_number="INV-1",
            )
        ],
        received,
    )

    history = await store.invoice_history("ORD-1", "INV-1")

    # Oldest first by the real instant, not by the wall-clock text of each offset.
    assert [e.description for e in history.events] == ["earlier", "later"]
    later = history.events[1].occurred_at
    assert later == datetime(2026, 4, 10, 13, 0, tzinfo=UTC)
    assert later.utcoffset() == timedelta(0)
    assert (later.hour, later.minute) == (13, 0)

    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.first_seen_at == datetime(2026, 4, 10, 14, 0, tzinfo=UTC)
    assert view.first_seen_at.utcoffset() == timedelta(0)
    assert [e.event.occurred_at.utcoffset() for e in view.events] == [timedelta(0)] * 2
    assert view.events[1].received_at.hour == 14


# -- ingest and dedup ----------------------------------------------------------


async def test_record_webhook_dedups_by_meaning(store: Store) -> None:
    first = event(T0, "Left the sorting centre", city="Curitiba", state="PR")
    second = event(T0 + timedelta(hours=5), "Out for delivery", Status.OUT_FOR_DELIVERY)

    result = await store.record_webhook("generic", BODY, [update("TRK1", first, second)], T0)
    assert (result.new_events, result.duplicate_events) == (2, 0)

    # The carrier resends the whole history: other offset, other spacing and case.
    resent_first = event(
        T0.astimezone(BRT), "  left the   sorting centre ", city=" curitiba", state="pr"
    )
    again = await store.record_webhook(
        "generic", BODY, [update("TRK1", resent_first, second)], T0 + timedelta(hours=6)
    )
    assert (again.new_events, again.duplicate_events) == (0, 2)
    assert again.webhook_id != result.webhook_id

    view = await store.get_shipment("TRK1")
    assert view is not None
    assert [e.event.description for e in view.events] == [
        "Left the sorting centre",
        "Out for delivery",
    ]


@pytest.mark.parametrize(
    "changed",
    [
        {"carrier_status": "RO"},
        {"description": "Left the sorting centre (2)"},
        {"city": "Londrina"},
        {"state": "SC"},
    ],
    ids=lambda c: next(iter(c)),
)
async def test_a_change_in_meaning_is_a_new_event(store: Store, changed: dict[str, str]) -> None:
    fields: dict[str, Any] = {
        "description": "Left the sorting centre",
        "carrier_status": "in_transit",
        "city": "Curitiba",
        "state": "PR",
    }
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0, **fields))], T0)

    result = await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0, **(fields | changed)))], T0
    )

    assert (result.new_events, result.duplicate_events) == (1, 0)


async def test_same_scan_from_another_carrier_or_number_is_not_a_duplicate(store: Store) -> None:
    scan = event(T0)
    await store.record_webhook("generic", BODY, [update("TRK1", scan)], T0)

    other_number = await store.record_webhook("generic", BODY, [update("TRK2", scan)], T0)
    other_carrier = await store.record_webhook("aftership", BODY, [update("TRK1", scan)], T0)

    assert other_number.new_events == 1
    assert other_carrier.new_events == 1


async def test_an_event_repeated_inside_one_payload_counts_once(store: Store) -> None:
    scan = event(T0, "Posted")

    result = await store.record_webhook(
        "generic", BODY, [update("TRK1", scan, scan, event(T0 + timedelta(hours=1)))], T0
    )

    assert result.new_events == 2
    assert result.new_events + result.duplicate_events == 3
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert len(view.events) == 2


# -- the shipment registry -----------------------------------------------------


async def test_unmatched_events_wait_then_registration_queues_one_delivery(store: Store) -> None:
    result = await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), event(T0 + timedelta(hours=1)))], T0
    )
    assert result.new_events == 2
    assert result.deliveries_queued == 0
    assert await claim(store, T0 + timedelta(days=1)) == []
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert not view.registered
    assert len(view.events) == 2

    registration = await store.register_shipment("TRK1", "ORD-1", "INV-1", "generic", None, T0)
    assert (registration.created, registration.deliveries_queued) == (True, 1)

    again = await store.register_shipment("TRK1", "ORD-1", "INV-1", "generic", None, T0)
    assert (again.created, again.deliveries_queued) == (False, 0)

    jobs = await claim(store, T0)
    assert [(j.order_id, j.invoice_number, j.tracking_numbers) for j in jobs] == [
        ("ORD-1", "INV-1", ("TRK1",))
    ]
    history = await store.invoice_history("ORD-1", "INV-1")
    assert len(history.events) == 2


async def test_re_registering_to_another_invoice_queues_for_the_new_invoice(store: Store) -> None:
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    await store.register_shipment("TRK1", "ORD-1", "INV-1", None, None, T0)
    held = await claim(store, T0)
    assert len(held) == 1

    moved = await store.register_shipment("TRK1", "ORD-1", "INV-2", None, None, T0)

    assert (moved.created, moved.deliveries_queued) == (False, 1)
    jobs = await claim(store, T0 + timedelta(seconds=1))
    assert [(j.order_id, j.invoice_number) for j in jobs] == [("ORD-1", "INV-2")]
    assert len((await store.invoice_history("ORD-1", "INV-2")).events) == 1
    assert (await store.invoice_history("ORD-1", "INV-1")).events == ()


async def test_registration_before_any_event_queues_when_events_arrive(store: Store) -> None:
    registration = await store.register_shipment("TRK1", "ORD-1", "INV-1", "generic", None, T0)
    assert (registration.created, registration.deliveries_queued) == (True, 0)
    assert await claim(store, T0) == []

    result = await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)

    assert result.deliveries_queued == 1
    assert len(await claim(store, T0)) == 1


async def test_a_payload_naming_the_invoice_registers_the_shipment(store: Store) -> None:
    result = await store.record_webhook(
        "generic",
        BODY,
        [update("TRK1", event(T0), order_id="ORD-9", invoice_number="INV-9")],
        T0,
    )

    assert result.deliveries_queued == 1
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert (view.registered, view.order_id, view.invoice_number) == (True, "ORD-9", "INV-9")


def aliased(tracking_number: str, *events: Any, aliases: tuple[str, ...]) -> Any:
    return dataclasses.replace(update(tracking_number, *events), aliases=aliases)


async def test_a_shipment_registered_under_an_alias_gets_the_events_held_under_the_key(
    store: Store,
) -> None:
    # Melhor Envio: events are keyed by the label id; VTEX knows the carrier tracking code.
    await store.record_webhook(
        "melhor_envio", BODY, [aliased("label-1", event(T0), aliases=("QX1BR", "ORD-P1"))], T0
    )

    registration = await store.register_shipment("QX1BR", "ORD-1", "INV-1", None, None, T0)

    assert registration.deliveries_queued == 1
    jobs = await claim(store, T0)
    assert [(j.order_id, j.invoice_number) for j in jobs] == [("ORD-1", "INV-1")]
    assert len((await store.invoice_history("ORD-1", "INV-1")).events) == 1
    # Looked up by the alias, the shipment shows the events held under its key.
    view = await store.get_shipment("QX1BR")
    assert view is not None
    assert len(view.events) == 1


async def test_events_under_a_new_key_find_the_shipment_registered_under_their_alias(
    store: Store,
) -> None:
    await store.register_shipment("QX2BR", "ORD-2", "INV-2", None, None, T0)

    result = await store.record_webhook(
        "melhor_envio", BODY, [aliased("label-2", event(T0), aliases=("QX2BR",))], T0
    )
    later = await store.record_webhook(
        "melhor_envio",
        BODY,
        [aliased("label-2", event(T0), event(T0 + timedelta(hours=2)), aliases=("QX2BR",))],
        T0,
    )

    assert (result.new_events, result.deliveries_queued) == (1, 1)
    assert later.new_events == 1
    assert len((await store.invoice_history("ORD-2", "INV-2")).events) == 2
    view = await store.get_shipment("label-2")
    assert view is not None
    assert (view.order_id, view.invoice_number) == ("ORD-2", "INV-2")


async def test_an_alias_that_matches_nothing_registers_nothing(store: Store) -> None:
    result = await store.record_webhook(
        "melhor_envio", BODY, [aliased("label-3", event(T0), aliases=("QX3BR", "label-3"))], T0
    )

    assert (result.new_events, result.deliveries_queued) == (1, 0)
    await store.register_shipment("SOMETHING-ELSE", "ORD-3", "INV-3", None, None, T0)
    assert await claim(store, T0 + timedelta(days=1)) == []


# -- the delivery queue ----------------------------------------------------------


async def test_one_open_delivery_per_invoice(store: Store) -> None:
    # Two packages of one invoice, several webhooks before the worker runs.
    await store.register_shipment("TRK-A", "ORD-1", "INV-1", None, None, T0)
    await store.register_shipment("TRK-B", "ORD-1", "INV-1", None, None, T0)
    queued = [
        (
            await store.record_webhook(
                "generic", BODY, [update(number, event(T0 + timedelta(minutes=i)))], T0
            )
        ).deliveries_queued
        for i, number in enumerate(["TRK-A", "TRK-B", "TRK-A"])
    ]
    assert queued == [1, 0, 0]

    jobs = await claim(store, T0 + timedelta(minutes=5))
    assert len(jobs) == 1
    assert jobs[0].tracking_numbers == ("TRK-A", "TRK-B")
    assert jobs[0].attempt_count == 0

    # Held: neither a second claim nor a new webhook makes a second delivery.
    assert await claim(store, T0 + timedelta(minutes=5, seconds=1)) == []
    late = await store.record_webhook(
        "generic", BODY, [update("TRK-B", event(T0 + timedelta(hours=1)))], T0
    )
    assert (late.new_events, late.deliveries_queued) == (1, 0)
    assert await store.backlog(T0 + timedelta(minutes=6)) == (1, 1)


async def test_a_claim_whose_lease_expired_can_be_taken_again(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    first = await claim(store, T0)

    again = await claim(store, T0 + LEASE + timedelta(seconds=1))

    assert [job.id for job in again] == [job.id for job in first]


async def test_claim_respects_its_limit(store: Store) -> None:
    for i in range(3):
        await store.record_webhook(
            "generic",
            BODY,
            [update(f"TRK{i}", event(T0), order_id=f"ORD-{i}", invoice_number="INV")],
            T0,
        )

    first = await claim(store, T0, limit=2)
    rest = await claim(store, T0, limit=2)

    assert len(first) == 2
    assert len(rest) == 1
    assert {j.order_id for j in first + rest} == {"ORD-0", "ORD-1", "ORD-2"}


async def test_delivered_with_an_event_newer_than_the_body_queues_the_next_delivery(
    store: Store,
) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    sent = await store.invoice_history("O", "I")
    # An event arrives while the PUT is in flight: it joins the held delivery.
    late = await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0 + timedelta(hours=1), "late"))], T0
    )
    assert late.deliveries_queued == 0

    await record_attempt(store, job, state="delivered", covered_event_ids=sent.event_ids, now=T0)

    [follow_up] = await claim(store, T0 + timedelta(seconds=1))
    assert follow_up.id != job.id
    assert follow_up.attempt_count == 0
    assert [e.description for e in (await store.invoice_history("O", "I")).events][-1] == "late"


async def test_delivered_with_the_newest_event_queues_nothing(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    sent = await store.invoice_history("O", "I")

    await record_attempt(store, job, state="delivered", covered_event_ids=sent.event_ids, now=T0)

    assert await claim(store, T0 + timedelta(days=1)) == []
    assert await store.backlog(T0 + timedelta(days=1)) == (0, 0)


async def test_a_retry_is_not_claimable_before_it_is_due(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    due = T0 + timedelta(minutes=10)

    await record_attempt(
        store,
        job,
        state="retrying",
        status_code=503,
        next_attempt_at=due,
        covered_event_ids=(),
        now=T0,
    )

    assert await claim(store, T0 + timedelta(minutes=9, seconds=59)) == []
    assert await store.backlog(T0 + timedelta(minutes=1)) == (1, 0)
    [retry] = await claim(store, due)
    assert retry.id == job.id
    assert retry.attempt_count == 1


async def test_a_dead_delivery_is_never_claimed(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)

    await record_attempt(store, job, state="dead", status_code=400, covered_event_ids=(), now=T0)

    assert await claim(store, T0 + timedelta(days=30)) == []


# -- what the operator sees --------------------------------------------------------


async def test_get_shipment_shows_events_last_body_receipts_and_attempts(store: Store) -> None:
    await store.record_webhook(
        "generic",
        BODY,
        [
            update(
                "TRK1",
                event(T0, "Posted", Status.INFO_RECEIVED, city="Recife", state="PE"),
                event(T0 + timedelta(days=1), "Delivered", Status.DELIVERED, city="", state=""),
                order_id="ORD-1",
                invoice_number="INV-1",
            )
        ],
        T0,
    )
    body = {
        "isDelivered": True,
        "deliveredDate": "2026-04-11 09:00",
        "events": [
            {"city": "Recife", "state": "PE", "description": "Posted", "date": "2026-04-10"},
            {"city": "", "state": "", "description": "Delivered", "date": "2026-04-11"},
        ],
    }
    [job] = await claim(store, T0)
    await record_attempt(
        store,
        job,
        state="retrying",
        status_code=503,
        next_attempt_at=T0 + timedelta(seconds=2),
        covered_event_ids=(),
        body=body,
        response_body="xã" * 2000,
        now=T0,
    )
    [job] = await claim(store, T0 + timedelta(seconds=2))
    history = await store.invoice_history("ORD-1", "INV-1")
    receipt = {
        "date": "2026-04-10T12:00:03.1234567+00:00",
        "orderId": "ORD-1",
        "receipt": "8b8c7e1d44f94f3a",
    }
    await record_attempt(
        store,
        job,
        state="delivered",
        covered_event_ids=history.event_ids,
        body=body,
        receipt=receipt,
        response_body='{"receipt": "8b8c7e1d44f94f3a"}',
        now=T0 + timedelta(seconds=3),
    )

    view = await store.get_shipment("TRK1")

    assert view is not None
    assert (view.order_id, view.invoice_number, view.carrier) == ("ORD-1", "INV-1", "generic")
    assert [(e.event.description, e.event.status, e.event.city) for e in view.events] == [
        ("Posted", "info_received", "Recife"),
        ("Delivered", "delivered", ""),
    ]
    assert view.last_body == body
    [delivery] = view.deliveries
    assert delivery.state == "delivered"
    assert receipt_json(delivery.receipt) == {**receipt, "orderId": "ORD-1"}
    assert delivery.delivered_at == T0 + timedelta(seconds=3)
    assert delivery.next_attempt_at is None
    assert delivery.attempt_count == 2
    assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 503), (2, 200)]
    kept = delivery.attempts[0].response_body
    assert 2047 <= len(kept.encode()) <= 2048  # 2 KB of UTF-8, no character split
    assert ("xã" * 2000).startswith(kept)
    assert delivery.attempts[0].error == "HTTP 503"
    assert delivery.attempts[1].response_body == '{"receipt": "8b8c7e1d44f94f3a"}'
    assert delivery.attempts[1].duration_ms == 12.5


async def test_get_shipment_of_an_unknown_number_is_none(store: Store) -> None:
    assert await store.get_shipment("NOPE") is None


async def test_quarantine_keeps_the_raw_body_and_the_error(store: Store) -> None:
    raw = b'{"trackingNumber": 42, "events": "\xc3\xa9"}'

    webhook_id = await store.quarantine_webhook("generic", raw, "events: not a list", T0)

    [kept] = await store.quarantined()
    assert (kept.id, kept.carrier, kept.body, kept.error) == (
        webhook_id,
        "generic",
        raw,
        "events: not a list",
    )


# -- durability ----------------------------------------------------------------------


async def test_a_reopened_store_sees_everything_and_resumes(database_url: str) -> None:
    first = SqlStore.open(database_url)
    await first.migrate()
    try:
        await first.record_webhook(
            "generic",
            BODY,
            [update("TRK1", event(T0), order_id="ORD-1", invoice_number="INV-1")],
            T0,
        )
        await first.record_webhook("generic", BODY, [update("TRK2", event(T0))], T0)
        quarantined = await first.quarantine_webhook("generic", b"{}", "no trackingNumber", T0)
        # A worker claims the delivery and then the process dies mid-PUT.
        held = await claim(first, T0)
    finally:
        await first.close()

    second = SqlStore.open(database_url)
    try:
        await second.migrate()
        registered = await second.get_shipment("TRK1")
        unmatched = await second.get_shipment("TRK2")
        again = await second.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
        resumed = await claim(second, T0 + LEASE + timedelta(seconds=1))
        still_quarantined = await second.quarantined()
    finally:
        await second.close()

    assert registered is not None
    assert (registered.order_id, len(registered.events)) == ("ORD-1", 1)
    assert unmatched is not None
    assert (unmatched.registered, len(unmatched.events)) == (False, 1)
    assert (again.new_events, again.duplicate_events) == (0, 1)
    assert [job.id for job in resumed] == [job.id for job in held]
    assert [w.id for w in still_quarantined] == [quarantined]


# -- coalescing, pauses, operator actions ----------------------------------------


async def test_a_burst_waits_the_coalescing_window_and_a_registration_does_not(
    open_store: StoreOpener,
) -> None:
    window = timedelta(seconds=1)
    store = await open_store(coalesce=window)
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    assert await claim(store, T0 + window - timedelta(milliseconds=1)) == []
    [job] = await claim(store, T0 + window)
    assert job.order_id == "O"

    # Events first, registration after: nothing to wait for, due at once.
    await store.record_webhook("generic", BODY, [update("TRK2", event(T0))], T0)
    await store.register_shipment("TRK2", "O2", "I2", None, None, T0)
    [late] = await claim(store, T0)
    assert late.order_id == "O2"


async def test_a_429_pauses_every_delivery_of_the_account_until_its_end(store: Store) -> None:
    for number, order in (("TRK1", "O1"), ("TRK2", "O2")):
        await store.register_shipment(number, order, "I", None, "shop", T0)
        await store.record_webhook("generic", BODY, [update(number, event(T0))], T0)
    await store.register_shipment("TRK3", "O3", "I", None, "other", T0)
    await store.record_webhook("generic", BODY, [update("TRK3", event(T0))], T0)
    first = next(job for job in await claim(store, T0, limit=1) if job.account == "shop")
    until = T0 + timedelta(seconds=3)

    await store.record_attempt(
        first,
        attempt(429),
        state="retrying",
        next_attempt_at=until,
        body={"events": []},
        covered_event_ids=(),
        receipt=None,
        now=T0,
        pause_account_until=until,
    )

    assert await store.paused_accounts(T0) == {"shop": until}
    assert {job.order_id for job in await claim(store, T0 + timedelta(seconds=1))} == {"O3"}
    assert {job.order_id for job in await claim(store, until)} == {"O1", "O2"}


async def test_retrying_a_dead_delivery_makes_it_pending_with_a_fresh_age(store: Store) -> None:
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    [job] = await claim(store, T0)
    await record_attempt(store, job, state="dead", covered_event_ids=(), now=T0, status_code=400)
    later = T0 + timedelta(days=4)

    assert await store.retry_delivery(job.id, later) == job.id

    [again] = await claim(store, later)
    assert (again.id, again.queued_at, again.attempt_count) == (job.id, later, 1)
    assert await store.retry_delivery(999, later) is None


async def test_retrying_a_dead_delivery_defers_to_the_invoices_open_one(store: Store) -> None:
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    [job] = await claim(store, T0)
    await record_attempt(store, job, state="dead", covered_event_ids=(), now=T0, status_code=400)
    # A new event after the death queues a new delivery carrying the whole history.
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0 + timedelta(hours=1), "later"))], T0
    )

    target = await store.retry_delivery(job.id, T0)

    assert target is not None
    assert target != job.id
    dead = await store.get_delivery(job.id)
    assert dead is not None
    assert dead.state == "dead"


async def test_a_delivered_delivery_is_not_retriable(store: Store) -> None:
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    [job] = await claim(store, T0)
    history = await store.invoice_history("O", "I")
    await record_attempt(store, job, state="delivered", covered_event_ids=history.event_ids, now=T0)

    with pytest.raises(NotRetriable):
        await store.retry_delivery(job.id, T0)


async def test_a_released_quarantined_webhook_stores_its_events_once(store: Store) -> None:
    webhook_id = await store.quarantine_webhook("generic", BODY, "unreadable", T0)
    assert [w.id for w in await store.quarantined()] == [webhook_id]
    await store.register_shipment("TRK1", "O", "I", None, None, T0)

    result = await store.release_from_quarantine(webhook_id, [update("TRK1", event(T0))], T0)

    assert result is not None
    assert (result.webhook_id, result.new_events, result.deliveries_queued) == (webhook_id, 1, 1)
    assert await store.quarantined() == []
    assert await store.release_from_quarantine(webhook_id, [], T0) is None


async def test_renewed_claims_outlive_their_first_lease(store: Store) -> None:
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    [job] = await claim(store, T0)

    await store.renew_claims([job.id], T0 + 2 * LEASE)

    assert await claim(store, T0 + LEASE + timedelta(seconds=1)) == []
    await store.postpone(job.id, T0 + LEASE)
    assert [j.id for j in await claim(store, T0 + LEASE)] == [job.id]


async def test_several_relays_migrating_at_once_agree(database_url: str) -> None:
    stores = [SqlStore.open(database_url) for _ in range(4)]
    try:
        versions = await asyncio.gather(*(store.migrate() for store in stores))
        await stores[0].record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
        seen = await stores[3].get_shipment("TRK1")
    finally:
        for store in stores:
            await store.close()

    assert versions == [SCHEMA_VERSION] * 4
    assert seen is not None
    assert len(seen.events) == 1

"""The :class:`Store` protocol's behaviour, beyond test_store.py and test_orders_store.py
(which run on every kind of store too): the same tests on the in-memory store, SQLite and
PostgreSQL, so that a test on the MemoryStore stands for the real one."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.api.views import receipt_json
from app.normalize.model import ShipmentUpdate
from app.store import AttemptRecord, DeliveryJob, Store
from tests.integration.helpers import T0, StoreOpener, event, update

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)
BODY = b'{"raw": "webhook"}'
SENT = {"isDelivered": False, "deliveredDate": None, "events": [{"description": "sent"}]}


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


async def claim(store: Store, now: datetime, limit: int = 10) -> list[DeliveryJob]:
    return await store.claim_due_deliveries(now, now + LEASE, limit)


async def attempted(
    store: Store,
    job: DeliveryJob,
    state: str,
    now: datetime,
    *,
    status_code: int | None = 200,
    next_attempt_at: datetime | None = None,
    body: dict[str, Any] | None = None,
    covered: tuple[int, ...] = (),
    receipt: dict[str, Any] | None = None,
    **outcome: Any,
) -> None:
    await store.record_attempt(
        job,
        AttemptRecord(now, 5.0, status_code, None, None if status_code == 200 else "failed"),
        state=state,
        next_attempt_at=next_attempt_at,
        body=body,
        covered_event_ids=covered,
        receipt=receipt,
        now=now,
        **outcome,
    )


async def delivered_all(store: Store, job: DeliveryJob, now: datetime) -> None:
    history = await store.invoice_history(job.order_id, job.invoice_number)
    await attempted(store, job, "delivered", now, body=SENT, covered=history.event_ids)


def naming(number: str, *events: Any, order_id: str, invoice_number: str) -> ShipmentUpdate:
    return update(number, *events, order_id=order_id, invoice_number=invoice_number)


# -- events and registration ---------------------------------------------------------


async def test_event_ids_follow_arrival_and_history_follows_time(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0 - timedelta(hours=1), "earlier"))], T0
    )

    history = await store.invoice_history("O", "I")

    assert [e.description for e in history.events] == ["earlier", "Objeto em trânsito"]
    later_id, first_id = history.event_ids
    assert later_id > first_id


async def test_the_result_names_each_updates_invoice(store: Store) -> None:
    await store.register_shipment("TRK-R", "O", "I", None, None, T0)

    result = await store.record_webhook(
        "generic",
        BODY,
        [update("TRK-R", event(T0)), update("TRK-U", event(T0)), update("TRK-R", event(T0))],
        T0,
    )

    assert result.invoices == (("O", "I"), (None, None), ("O", "I"))
    # The third update repeats the first one's event: a duplicate within the webhook.
    assert (result.new_events, result.duplicate_events, result.deliveries_queued) == (2, 1, 1)


async def test_a_payload_naming_the_invoice_of_held_events_queues_them_at_once(
    open_store: StoreOpener,
) -> None:
    store = await open_store(coalesce=timedelta(minutes=5))
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)

    # Nothing new, but the registration sends what was held, without the coalescing wait.
    resent = await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I1")], T0
    )

    assert (resent.new_events, resent.duplicate_events, resent.deliveries_queued) == (0, 1, 1)
    [job] = await claim(store, T0)
    assert (job.order_id, job.invoice_number) == ("O", "I1")
    await delivered_all(store, job, T0)

    moved = await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I2")], T0
    )

    assert moved.deliveries_queued == 1
    assert [(j.order_id, j.invoice_number) for j in await claim(store, T0)] == [("O", "I2")]
    assert (await store.invoice_history("O", "I1")).events == ()


async def test_new_events_wait_the_coalescing_window(open_store: StoreOpener) -> None:
    window = timedelta(seconds=5)
    store = await open_store(coalesce=window)

    result = await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )

    assert result.deliveries_queued == 1
    assert await store.backlog(T0) == (1, 0)
    assert await claim(store, T0 + window - timedelta(microseconds=1)) == []
    assert len(await claim(store, T0 + window)) == 1


async def test_a_jobs_numbers_and_carriers_are_the_invoices(store: Store) -> None:
    await store.register_shipment("TRK-B", "O", "I", None, None, T0)
    await store.register_shipment("TRK-A", "O", "I", "correios", None, T0)
    await store.register_shipment("TRK-C", "O", "OTHER", "dhl", None, T0)
    # A webhook fills in the carrier a registration left empty, and keeps a given one.
    await store.record_webhook("jadlog", BODY, [update("TRK-B", event(T0))], T0)
    await store.record_webhook("loggi", BODY, [update("TRK-A", event(T0))], T0)

    [job] = await claim(store, T0)

    assert job.tracking_numbers == ("TRK-A", "TRK-B")
    assert job.carriers == ("correios", "jadlog")


async def test_the_first_shipment_to_claim_an_alias_keeps_it(store: Store) -> None:
    first = dataclasses.replace(update("label-1", event(T0, "one")), aliases=("QX1BR",))
    second = dataclasses.replace(update("label-2", event(T0, "two")), aliases=("QX1BR",))
    await store.record_webhook("melhor_envio", BODY, [first], T0)
    await store.record_webhook("melhor_envio", BODY, [second], T0)

    await store.register_shipment("QX1BR", "O", "I", None, None, T0)

    history = await store.invoice_history("O", "I")
    assert [e.description for e in history.events] == ["one"]


async def test_a_webhook_that_fails_leaves_nothing_behind(store: Store) -> None:
    broken = dataclasses.replace(event(T0), description=None)  # type: ignore[arg-type]

    with pytest.raises(AttributeError):
        await store.record_webhook(
            "generic",
            BODY,
            [naming("TRK-OK", event(T0), order_id="O", invoice_number="I"), update("BAD", broken)],
            T0,
        )

    assert await store.get_shipment("TRK-OK") is None
    assert await store.backlog(T0) == (0, 0)
    again = await store.record_webhook("generic", BODY, [update("TRK-OK", event(T0))], T0)
    assert again.new_events == 1


async def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.register_shipment("TRK1", "O", "I", None, None, T0.replace(tzinfo=None))


# -- deliveries ----------------------------------------------------------------------


async def test_the_next_delivery_after_a_delivered_one_waits_the_coalescing_window(
    open_store: StoreOpener,
) -> None:
    window = timedelta(seconds=5)
    store = await open_store(coalesce=window)
    await store.register_shipment("TRK1", "O", "I", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    [job] = await claim(store, T0 + window)
    sent = await store.invoice_history("O", "I")
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0, "late"))], T0)
    done = T0 + timedelta(minutes=1)

    await attempted(store, job, "delivered", done, body=SENT, covered=sent.event_ids)

    assert await store.backlog(done) == (1, 0)
    assert await claim(store, done + window - timedelta(microseconds=1)) == []
    [follow_up] = await claim(store, done + window)
    assert (follow_up.attempt_count, follow_up.queued_at) == (0, done)


async def test_a_failed_attempt_keeps_no_receipt_and_without_a_body_the_last_body_sent(
    store: Store,
) -> None:
    await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    retry_at = T0 + timedelta(seconds=5)
    # Only a delivered attempt keeps a receipt.
    receipt = {"date": "2026-04-10T12:00:01Z", "receipt": "r-1"}
    await attempted(
        store,
        job,
        "retrying",
        T0,
        status_code=503,
        next_attempt_at=retry_at,
        body=SENT,
        receipt=receipt,
    )
    [job] = await claim(store, retry_at)

    # The check before the PUT failed: nothing was sent this time.
    await attempted(store, job, "retrying", retry_at, status_code=404, next_attempt_at=retry_at)

    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.last_body == SENT
    [delivery] = view.deliveries
    assert (delivery.attempt_count, delivery.last_status, delivery.receipt) == (2, 404, None)
    assert [a.status_code for a in delivery.attempts] == [503, 404]


async def test_a_later_pause_wins_and_none_is_the_default_account(store: Store) -> None:
    for number, order in (("TRK1", "O1"), ("TRK2", "O2")):
        await store.record_webhook(
            "generic", BODY, [naming(number, event(T0), order_id=order, invoice_number="I")], T0
        )
    first, second = await claim(store, T0)
    long, short = T0 + timedelta(minutes=2), T0 + timedelta(seconds=10)
    await attempted(
        store,
        first,
        "retrying",
        T0,
        status_code=429,
        next_attempt_at=long,
        pause_account_until=long,
    )

    await attempted(
        store,
        second,
        "retrying",
        T0,
        status_code=429,
        next_attempt_at=short,
        pause_account_until=short,
    )

    assert await store.paused_accounts(T0) == {"": long}
    assert await claim(store, short) == []
    assert len(await claim(store, long)) == 2
    assert await store.paused_accounts(long) == {}


async def test_a_postponed_delivery_keeps_its_attempts_and_is_due_later(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    later = T0 + timedelta(seconds=10)

    await store.postpone(job.id, later)
    # Renewing a released claim does not take it again.
    await store.renew_claims([job.id], later + LEASE)

    assert await claim(store, later - timedelta(seconds=1)) == []
    [again] = await claim(store, later)
    assert (again.id, again.attempt_count) == (job.id, 0)
    delivery = await store.get_delivery(job.id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts) == ("pending", [])


async def test_retrying_a_retrying_delivery_makes_it_due_now(store: Store) -> None:
    await store.record_webhook(
        "generic", BODY, [naming("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    [job] = await claim(store, T0)
    await attempted(
        store, job, "retrying", T0, status_code=404, next_attempt_at=T0 + timedelta(minutes=10)
    )
    now = T0 + timedelta(minutes=1)

    assert await store.retry_delivery(job.id, now) == job.id

    [again] = await claim(store, now)
    assert (again.id, again.queued_at, again.attempt_count) == (job.id, T0, 1)


async def test_what_the_operator_lists(store: Store) -> None:
    for number, order in (("TRK1", "O1"), ("TRK2", "O2"), ("TRK3", "O3")):
        await store.record_webhook(
            "generic", BODY, [naming(number, event(T0), order_id=order, invoice_number="I")], T0
        )
    first, second, _ = await claim(store, T0)
    await attempted(store, first, "dead", T0, status_code=400)
    receipt = {"date": "2026-04-10T12:00:01Z", "orderId": "O2", "receipt": "r-2"}
    history = await store.invoice_history("O2", "I")
    await attempted(
        store, second, "delivered", T0, body=SENT, covered=history.event_ids, receipt=receipt
    )
    await store.quarantine_webhook("generic", b"{}", "unreadable", T0)
    now = T0 + timedelta(minutes=1)

    everything = await store.list_deliveries(None, 10)

    assert [d.order_id for d in everything] == ["O3", "O2", "O1"]
    assert [d.order_id for d in await store.list_deliveries(None, 2)] == ["O3", "O2"]
    [dead] = await store.list_deliveries("dead", 10)
    assert (dead.order_id, dead.next_attempt_at, dead.last_status) == ("O1", None, 400)
    [done] = await store.list_deliveries("delivered", 10)
    assert (receipt_json(done.receipt), done.delivered_at) == ({**receipt, "orderId": "O2"}, T0)
    assert await store.get_delivery(10**6) is None
    snapshot = await store.queue_snapshot(now)
    assert (snapshot.backlog, snapshot.dead, snapshot.quarantined) == (1, 1, 1)
    assert snapshot.oldest_pending_age_seconds == 60.0
    assert await store.backlog(now) == (1, 1)  # claimed or not, O3 is due


# -- quarantine ------------------------------------------------------------------------


async def test_quarantine_lists_oldest_first_by_carrier_and_keeps_the_latest_reason(
    store: Store,
) -> None:
    newer = await store.quarantine_webhook("generic", b"2", "first reason", T0 + timedelta(1))
    older = await store.quarantine_webhook("generic", b"1", "first reason", T0)
    other = await store.quarantine_webhook("dhl", b"3", "first reason", T0)

    await store.keep_in_quarantine(newer, "failed again")

    assert [w.id for w in await store.quarantined("generic")] == [older, newer]
    assert [w.id for w in await store.quarantined("generic", limit=1)] == [older]
    assert {w.id for w in await store.quarantined()} == {older, newer, other}
    kept = {w.id: w.error for w in await store.quarantined()}
    assert kept[newer] == "failed again"


async def test_a_replayed_webhook_counts_what_was_known_and_leaves_quarantine(
    store: Store,
) -> None:
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)
    webhook_id = await store.quarantine_webhook("generic", BODY, "unreadable", T0)
    other = await store.quarantine_webhook("generic", BODY, "unreadable", T0)

    result = await store.release_from_quarantine(
        webhook_id,
        [
            naming(
                "TRK1", event(T0), event(T0 + timedelta(hours=1)), order_id="O", invoice_number="I"
            )
        ],
        T0,
    )

    assert result is not None
    assert (result.new_events, result.duplicate_events, result.deliveries_queued) == (1, 1, 1)
    assert [w.id for w in await store.quarantined()] == [other]
    await store.keep_in_quarantine(webhook_id, "not any more")
    assert await store.discard_quarantined(webhook_id) is None
    assert len((await store.invoice_history("O", "I")).events) == 2


async def test_discarding_takes_only_quarantined_webhooks(store: Store) -> None:
    one = await store.quarantine_webhook("generic", BODY, "unreadable", T0)
    two = await store.quarantine_webhook("generic", BODY, "unreadable", T0)
    dhl = await store.quarantine_webhook("dhl", BODY, "unreadable", T0)
    replayed = await store.quarantine_webhook("generic", BODY, "unreadable", T0)
    await store.release_from_quarantine(replayed, [update("TRK1", event(T0))], T0)
    accepted = await store.record_webhook("generic", BODY, [update("TRK2", event(T0))], T0)

    discarded = await store.discard_quarantined(one)

    assert discarded is not None
    assert (discarded.id, discarded.carrier, discarded.body, discarded.error) == (
        one,
        "generic",
        BODY,
        "unreadable",
    )
    assert await store.discard_quarantined(one) is None
    assert await store.discard_quarantined(accepted.webhook_id) is None
    assert await store.discard_quarantined(replayed) is None
    assert await store.discard_quarantine("generic") == [two]
    assert [w.id for w in await store.quarantined()] == [dhl]
    assert (await store.queue_snapshot(T0)).quarantined == 1

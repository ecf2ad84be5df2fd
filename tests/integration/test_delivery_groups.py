"""Deliveries are claimed and recorded a set at a time: a claim reads its invoices' histories
in one query, and a commit group of attempts costs the same statements (round trips, on
PostgreSQL) whatever its size; an attempt's record may wait briefly for others to share its
commit."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from app.store import AttemptRecord, DeliveryJob, SqlStore, sync_url
from app.store.deliveries import AttemptToRecord, Outcome, claim_due, record_attempts
from app.store.engine import Database
from tests.integration.helpers import T0, event, update
from tests.integration.test_store_groups import statements_sent

pytestmark = pytest.mark.anyio

LEASE = timedelta(minutes=1)
CLAIM_AT = T0 + timedelta(minutes=1)


async def queued_invoices(database_url: str, prefix: str, count: int) -> None:
    """``count`` invoices of account ``prefix`` with two events each and a delivery due at
    ``T0``."""
    store = SqlStore.open(database_url)
    await store.migrate()
    try:
        for index in range(count):
            number = f"{prefix}-{index}"
            await store.register_shipment(number, f"ORD-{number}", "INV-1", None, prefix, T0)
            events = [event(T0 - timedelta(hours=2)), event(T0 - timedelta(hours=1), "Saiu")]
            await store.record_webhook("correios", b"{}", [update(number, *events)], T0)
    finally:
        await store.close()


def outcomes(jobs: list[DeliveryJob]) -> list[AttemptToRecord]:
    """Every kind of outcome, in turn: delivered after a check (one lacking an event, so the
    next delivery is queued), a 429 pausing the account, dead."""
    made = []
    for index, job in enumerate(jobs):
        kind = index % 3
        status = (200, 429, 400)[kind]
        outcome = Outcome(
            state=("delivered", "retrying", "dead")[kind],
            next_attempt_at=None if kind != 1 else CLAIM_AT + timedelta(seconds=30),
            body={"events": [], "isDelivered": False} if kind != 2 else None,
            covered_event_ids=job.history.event_ids[: 1 if index == 0 else None],
            receipt={"receipt": f"R-{index}", "date": "2026-04-10"} if kind == 0 else None,
            pause_account_until=CLAIM_AT + timedelta(seconds=30) if kind == 1 else None,
            invoice_checked_by="Get order" if kind == 0 else None,
        )
        attempt = AttemptRecord(CLAIM_AT, 12.5, status, "{}", None if kind == 0 else "refused")
        made.append(AttemptToRecord(job, attempt, outcome, CLAIM_AT))
    return made


async def test_claims_and_attempt_groups_cost_the_same_statements_at_any_size(
    database_url: str,
) -> None:
    sizes = {"ONE": 3, "MANY": 48}  # 3: one outcome of each kind
    for prefix, size in sizes.items():
        await queued_invoices(database_url, prefix, size)
    engine = create_engine(sync_url(database_url))
    claims: dict[int, int] = {}
    records: dict[int, int] = {}
    try:
        for size in sizes.values():
            with engine.connect() as conn, conn.begin(), statements_sent(conn) as sent:
                claimed = claim_due(conn, CLAIM_AT, CLAIM_AT + LEASE, size)
            claims[size] = len(sent)
            assert len(claimed.jobs) == size
            for job in claimed.jobs:
                assert len(job.history.events) == 2
                assert [e.description for e in job.history.events][-1] == "Saiu"
                assert job.history.checked_by is None
            with engine.connect() as conn, conn.begin(), statements_sent(conn) as sent:
                record_attempts(conn, outcomes(claimed.jobs), timedelta(0))
            records[size] = len(sent)
    finally:
        engine.dispose()
    print(f"claim statements: {claims}; attempt group statements: {records}")
    assert claims[48] == claims[3]
    assert records[48] == records[3]
    assert records[3] <= 9


async def test_a_recorded_group_leaves_each_delivery_as_its_attempt_said(database_url: str) -> None:
    await queued_invoices(database_url, "G", 6)
    store = SqlStore.open(database_url)
    try:
        jobs = await store.claim_due_deliveries(CLAIM_AT, CLAIM_AT + LEASE, 6)
        assert store.account_paused_until("G", CLAIM_AT) is None
        # Recorded at once: the writer applies them in one commit group.
        await asyncio.gather(
            *(
                store.record_attempt(
                    r.job,
                    r.attempt,
                    state=r.outcome.state,
                    next_attempt_at=r.outcome.next_attempt_at,
                    body=r.outcome.body,
                    covered_event_ids=r.outcome.covered_event_ids,
                    receipt=r.outcome.receipt,
                    now=r.now,
                    pause_account_until=r.outcome.pause_account_until,
                    invoice_checked_by=r.outcome.invoice_checked_by,
                )
                for r in outcomes(jobs)
            )
        )
        views = [await store.get_delivery(job.id) for job in jobs]
        assert [view.state if view else None for view in views] == [
            "delivered",
            "retrying",
            "dead",
        ] * 2
        first = views[0]
        assert first is not None
        assert first.receipt is not None
        assert first.receipt.receipt == "R-0"
        assert first.invoice_check is not None
        assert first.invoice_check.checked_by == "Get order"
        assert [a.status_code for a in first.attempts] == [200]
        # The first delivered body lacked an event: its invoice's next delivery is queued
        # (due after the pause, which the store now holds for the account).
        pause_end = CLAIM_AT + timedelta(seconds=30)
        assert store.account_paused_until("G", CLAIM_AT) == pause_end
        assert store.account_paused_until("G", pause_end) is None
        assert store.account_paused_until(None, CLAIM_AT) is None
        assert await store.claim_due_deliveries(CLAIM_AT, CLAIM_AT + LEASE, 10) == []
        later = await store.claim_due_deliveries(pause_end + timedelta(seconds=1), CLAIM_AT, 10)
        assert {(job.order_id, job.attempt_count) for job in later} == {
            (jobs[0].order_id, 0),  # the follow-up of the delivery that lacked an event
            (jobs[1].order_id, 1),  # the 429s, retried
            (jobs[4].order_id, 1),
        }
        assert [job.history.checked_by for job in later if job.order_id == jobs[0].order_id] == [
            "Get order"
        ]
    finally:
        await store.close()


async def test_a_pause_another_relay_recorded_is_held_once_this_one_claims(
    database_url: str,
) -> None:
    await queued_invoices(database_url, "shop", 3)
    here, there = SqlStore.open(database_url), SqlStore.open(database_url)
    try:
        held = await here.claim_due_deliveries(CLAIM_AT, CLAIM_AT + LEASE, 2)
        [theirs] = await there.claim_due_deliveries(CLAIM_AT, CLAIM_AT + LEASE, 5)
        [answered] = outcomes([held[0], theirs])[1:]  # a 429, recorded by the other relay
        await there.record_attempt(
            theirs,
            answered.attempt,
            state="retrying",
            next_attempt_at=answered.outcome.next_attempt_at,
            body=None,
            covered_event_ids=(),
            receipt=None,
            now=CLAIM_AT,
            pause_account_until=answered.outcome.pause_account_until,
        )
        assert here.account_paused_until("shop", CLAIM_AT) is None  # not claimed since
        assert await here.claim_due_deliveries(CLAIM_AT, CLAIM_AT + LEASE, 5) == []
        # The deliveries this relay claimed before the pause are now held by it too.
        assert here.account_paused_until("shop", CLAIM_AT) == answered.outcome.pause_account_until
        assert len(held) == 2
    finally:
        await here.close()
        await there.close()


async def test_a_lingering_write_waits_for_company_but_not_past_its_time(
    database_url: str,
) -> None:
    db = Database(database_url)
    groups: list[list[str]] = []

    def batch(_conn: Connection, items: list[str]) -> list[str]:
        groups.append(list(items))
        return [item.upper() for item in items]

    try:
        # Two writes that may wait 0.5 s: the second, 0.1 s later, shares the first's commit.
        first = asyncio.ensure_future(db.write_in_batch(batch, "a", linger=0.5))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        assert await asyncio.gather(first, db.write_in_batch(batch, "b", linger=0.5)) == ["A", "B"]
        assert groups == [["a", "b"]]
        assert time.monotonic() - started < 0.5  # committed at the first's time, not later
        # A write someone waits on ends the lingering at once, and takes the waiting along.
        lingering = asyncio.ensure_future(db.write_in_batch(batch, "c", linger=5.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await db.write_in_batch(batch, "d") == "D"
        assert await lingering == "C"
        assert time.monotonic() - started < 1.0
        assert groups[-1] == ["c", "d"]
    finally:
        db.close()

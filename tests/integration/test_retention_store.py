"""Retention on both databases (SPEC §11): what a prune removes and keeps, that a dry run
reports exactly what a real prune then removes, tombstones, and fleet-wide periodic turns."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from app.normalize.model import Status
from app.store import AttemptRecord, SqlStore, sync_url
from app.store.schema import metadata
from tests.integration.helpers import T0, event, update

pytestmark = pytest.mark.anyio

KEEP = timedelta(days=90)
LEASE = timedelta(seconds=30)
NOW = T0 + KEEP + timedelta(days=10)
OLD = T0
YOUNG = NOW - timedelta(days=5)
BODY = b'{"raw": "webhook"}'


def row_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return {
                name: int(conn.scalar(select(func.count()).select_from(table)) or 0)
                for name, table in metadata.tables.items()
            }
    finally:
        engine.dispose()


async def post(store: SqlStore, number: str, when: datetime, **invoice: Any) -> Any:
    scans = [event(when, "Postado"), event(when + timedelta(hours=5), "Em trânsito")]
    return await store.record_webhook("generic", BODY, [update(number, *scans, **invoice)], when)


async def attempt_all(store: SqlStore, when: datetime, status_code: int, state: str) -> None:
    """Claim every due delivery and record one attempt answered ``status_code``."""
    for job in await store.claim_due_deliveries(when, when + LEASE, 100):
        history = await store.invoice_history(job.order_id, job.invoice_number)
        await store.record_attempt(
            job,
            AttemptRecord(
                started_at=when,
                duration_ms=12.0,
                status_code=status_code,
                response_body="{}",
                error=None,
            ),
            state=state,
            next_attempt_at=None if state in ("delivered", "dead") else when + timedelta(hours=1),
            body={"events": []} if status_code == 200 else None,
            covered_event_ids=history.event_ids if status_code == 200 else [],
            receipt={"receipt": "r-1"} if status_code == 200 else None,
            now=when,
        )


async def populate(store: SqlStore) -> None:
    """Old and delivered (goes), young and delivered, old and dead, old and never
    registered (goes), an old quarantined webhook (goes) and a young one."""
    await post(store, "OLD-DELIVERED", OLD, order_id="O-1", invoice_number="I-1")
    await post(store, "OLD-DEAD", OLD, order_id="O-2", invoice_number="I-2")
    await attempt_all(store, OLD + timedelta(days=1), 200, "delivered")
    # O-1 is delivered; O-2 was delivered too, then got a new event VTEX refused for good.
    await store.record_webhook(
        "generic", BODY, [update("OLD-DEAD", event(OLD + timedelta(days=2), "Saiu"))], OLD
    )
    await attempt_all(store, OLD + timedelta(days=3), 400, "dead")
    await post(store, "YOUNG-DELIVERED", OLD, order_id="O-3", invoice_number="I-3")
    await attempt_all(store, OLD + timedelta(days=1), 200, "delivered")
    await store.record_webhook(  # a later event of O-3, received within the retention
        "generic",
        BODY,
        [update("YOUNG-DELIVERED", event(YOUNG, "Entregue", Status.DELIVERED))],
        YOUNG,
    )
    await attempt_all(store, YOUNG, 200, "delivered")
    await post(store, "UNMATCHED-OLD", OLD)
    await post(store, "UNMATCHED-YOUNG", YOUNG)
    await store.quarantine_webhook("generic", b"{old", "not JSON", OLD)
    await store.quarantine_webhook("generic", b"{young", "not JSON", YOUNG)


async def test_prune_removes_old_delivered_invoices_and_keeps_young_and_undelivered_ones(
    sql_store: SqlStore, database_url: str
) -> None:
    await populate(sql_store)
    before = row_counts(database_url)

    rehearsed = await sql_store.upkeep().prune(NOW, KEEP, dry_run=True, batch=1)

    assert row_counts(database_url) == before  # a dry run changes nothing
    pruned = await sql_store.upkeep().prune(NOW, KEEP, batch=1)
    after = row_counts(database_url)

    assert pruned == rehearsed
    assert pruned.as_dict() == {
        "invoices": 1,
        "shipments": 2,  # OLD-DELIVERED, UNMATCHED-OLD
        "aliases": 0,
        "events": 4,
        "deliveries": 1,
        "attempts": 1,
        "webhooks": 2,  # the two that reported only their events
        "quarantined": 1,
        "minute_counts": 0,
        "tombstones": 0,
        "sessions": 0,
    }
    for table, removed in (
        ("shipments", 2),
        ("events", 4),
        ("deliveries", 1),
        ("attempts", 1),
        ("webhooks", 3),
        ("invoice_checks", 0),
    ):
        assert before[table] - after[table] == removed, table
    assert after["pruned_shipments"] == 1  # OLD-DELIVERED's tombstone
    assert await sql_store.get_shipment("OLD-DELIVERED") is None
    assert await sql_store.get_shipment("UNMATCHED-OLD") is None
    for kept in ("OLD-DEAD", "YOUNG-DELIVERED", "UNMATCHED-YOUNG"):
        view = await sql_store.get_shipment(kept)
        assert view is not None
        assert view.events, kept
    assert [q.body for q in await sql_store.quarantined(None)] == [b"{young"]
    # Nothing is left to prune.
    assert (await sql_store.upkeep().prune(NOW, KEEP)).total() == 0


async def test_a_pruned_invoices_old_webhook_resent_is_accepted_and_queues_nothing(
    sql_store: SqlStore,
) -> None:
    await post(sql_store, "TRK-1", OLD, order_id="O-1", invoice_number="I-1")
    await attempt_all(sql_store, OLD + timedelta(days=1), 200, "delivered")
    await sql_store.upkeep().prune(NOW, KEEP)

    again = await post(sql_store, "TRK-1", OLD, order_id="O-1", invoice_number="I-1")
    newer = await sql_store.record_webhook(
        "generic", BODY, [update("TRK-1", event(NOW, "Devolvido"))], NOW
    )

    assert (again.new_events, again.duplicate_events, again.deliveries_queued) == (0, 2, 0)
    assert (newer.new_events, newer.duplicate_events) == (0, 1)
    assert await sql_store.get_shipment("TRK-1") is None
    assert await sql_store.claim_due_deliveries(NOW + KEEP, NOW + KEEP + LEASE, 10) == []


async def test_registering_a_pruned_tracking_number_again_starts_it_afresh(
    sql_store: SqlStore,
) -> None:
    await post(sql_store, "TRK-1", OLD, order_id="O-1", invoice_number="I-1")
    await attempt_all(sql_store, OLD + timedelta(days=1), 200, "delivered")
    await sql_store.upkeep().prune(NOW, KEEP)

    await sql_store.register_shipment("TRK-1", "O-9", "I-9", None, None, NOW)
    result = await sql_store.record_webhook(
        "generic", BODY, [update("TRK-1", event(NOW, "Postado"))], NOW
    )

    assert (result.new_events, result.deliveries_queued) == (1, 1)


async def test_a_webhook_that_reported_a_kept_invoice_too_is_kept_and_counted_alike(
    sql_store: SqlStore, database_url: str
) -> None:
    both = [
        update("TRK-OLD", event(OLD, "Postado"), order_id="O-1", invoice_number="I-1"),
        update("TRK-LIVE", event(OLD, "Postado"), order_id="O-2", invoice_number="I-2"),
    ]
    shared = await sql_store.record_webhook("generic", BODY, both, OLD)
    await attempt_all(sql_store, OLD + timedelta(days=1), 200, "delivered")
    await sql_store.record_webhook(
        "generic", BODY, [update("TRK-LIVE", event(YOUNG, "Saiu"))], YOUNG
    )

    rehearsed = await sql_store.upkeep().prune(NOW, KEEP, dry_run=True, batch=1)
    pruned = await sql_store.upkeep().prune(NOW, KEEP, batch=1)

    assert pruned == rehearsed
    assert (pruned.invoices, pruned.events, pruned.webhooks) == (1, 1, 0)
    view = await sql_store.get_shipment("TRK-LIVE")
    assert view is not None
    assert shared.webhook_id in {e.webhook_id for e in view.events}
    assert row_counts(database_url)["webhooks"] == 2


async def test_one_webhook_reporting_two_old_invoices_goes_with_the_second_in_a_dry_run_too(
    sql_store: SqlStore,
) -> None:
    two = [
        update("TRK-A", event(OLD, "Postado"), order_id="O-1", invoice_number="I-1"),
        update("TRK-B", event(OLD, "Postado"), order_id="O-2", invoice_number="I-2"),
    ]
    await sql_store.record_webhook("generic", BODY, two, OLD)
    await attempt_all(sql_store, OLD + timedelta(days=1), 200, "delivered")

    rehearsed = await sql_store.upkeep().prune(NOW, KEEP, dry_run=True, batch=1)
    pruned = await sql_store.upkeep().prune(NOW, KEEP, batch=1)

    assert (pruned.invoices, pruned.webhooks) == (2, 1)
    assert pruned == rehearsed


async def test_a_periodic_task_gets_one_turn_per_interval_across_relays(
    database_url: str,
) -> None:
    first, second = SqlStore.open(database_url), SqlStore.open(database_url)
    await first.migrate()
    every = timedelta(minutes=10)
    try:
        turns = []
        for store, at in (
            (first, T0),
            (second, T0),
            (second, T0 + timedelta(minutes=9)),
            (second, T0 + every),
            (first, T0 + every),
        ):
            async with store.upkeep().fleet_turn("reconcile", at, every) as mine:
                turns.append(mine)
        assert turns == [True, False, False, True, False]
        assert await first.upkeep().last_started("reconcile") == T0 + every
    finally:
        await first.close()
        await second.close()


async def test_on_postgresql_a_running_task_holds_its_lock_against_other_relays(
    database_url: str,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite is served by one process: there is no other relay to hold off")
    first, second = SqlStore.open(database_url), SqlStore.open(database_url)
    await first.migrate()
    try:
        async with first.upkeep().fleet_turn("prune", T0, timedelta(seconds=1)) as mine:
            assert mine
            # The interval passed, but the first relay is still pruning.
            late = T0 + timedelta(hours=1)
            async with second.upkeep().fleet_turn("prune", late, timedelta(seconds=1)) as theirs:
                assert not theirs
        async with second.upkeep().fleet_turn("prune", late, timedelta(seconds=1)) as theirs:
            assert theirs
    finally:
        await first.close()
        await second.close()


async def test_the_database_size_is_measured_and_sqlite_gives_pruned_pages_back(
    sql_store: SqlStore, database_url: str
) -> None:
    for n in range(300):
        await post(sql_store, f"TRK-{n}", OLD, order_id=f"O-{n}", invoice_number="I")
    await attempt_all(sql_store, OLD + timedelta(days=1), 200, "delivered")
    size = await sql_store.upkeep().database_bytes()

    await sql_store.upkeep().prune(NOW, KEEP)
    await sql_store.upkeep().free_space()

    assert size > 0
    if database_url.startswith("sqlite"):
        assert await sql_store.upkeep().database_bytes() < size

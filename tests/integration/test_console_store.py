"""The console's SQL (app/store/console.py) on SQLite and PostgreSQL: sessions, per-minute
counts, search, the Deliveries filter with its keyset pages and bulk retry, and the
Quarantine pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select

from app.console.tally import MinuteCount, MinuteTally
from app.normalize.model import ShipmentUpdate
from app.store import SqlStore, sync_url
from app.store.console import DeliveryFilter
from app.store.console_front import ConsoleStore
from app.store.schema import minute_counts
from tests.integration.helpers import T0, event, update
from tests.integration.test_store import claim, record_attempt

pytestmark = pytest.mark.anyio

BODY = b'{"raw": "webhook"}'


@pytest.fixture
def console(sql_store: SqlStore) -> ConsoleStore:
    return sql_store.console()


async def dead_deliveries(store: SqlStore, count: int, carrier: str = "generic") -> list[int]:
    """``count`` invoices, each with one dead delivery (VTEX answered 400)."""
    for n in range(count):
        await store.register_shipment(
            f"T{carrier}{n}", f"O{carrier}{n}", f"I{n}", carrier, None, T0
        )
        await store.record_webhook(carrier, BODY, [update(f"T{carrier}{n}", event(T0))], T0)
    jobs = await claim(store, T0, limit=count)
    for job in jobs:
        await record_attempt(
            store, job, state="dead", covered_event_ids=(), now=T0, status_code=400
        )
    return [job.id for job in jobs]


async def test_a_session_lives_until_it_expires_or_is_ended(console: ConsoleStore) -> None:
    await console.start_session("a" * 64, "admin", T0, T0 + timedelta(hours=12))
    await console.start_session("b" * 64, "viewer", T0, T0 + timedelta(hours=12))

    assert await console.session_role("a" * 64, T0 + timedelta(hours=1)) == "admin"
    assert await console.session_role("b" * 64, T0) == "viewer"
    assert await console.session_role("a" * 64, T0 + timedelta(hours=12)) is None
    assert await console.session_role("c" * 64, T0) is None
    await console.end_session("a" * 64)
    assert await console.session_role("a" * 64, T0) is None
    assert await console.session_role("b" * 64, T0) == "viewer"


async def test_counts_from_several_relays_add_up_in_one_row_per_minute(
    console: ConsoleStore, database_url: str
) -> None:
    first, second = MinuteTally(), MinuteTally()
    for n in range(500):  # a flood of refused calls, on two replicas
        first.note("carrier", "dhl", "unauthorized", T0 + timedelta(seconds=n % 50))
        second.note("carrier", "dhl", "unauthorized", T0 + timedelta(seconds=n % 30))
    first.note("carrier", "dhl", "accepted", T0 + timedelta(minutes=3))
    await console.add_counts(first.take())
    await console.add_counts(second.take())
    await console.add_counts(first.take())  # nothing new: writes nothing

    facts = await console.overview(T0 + timedelta(minutes=5))

    totals = {(t.name, t.outcome): (t.count, t.last_at) for t in facts.carriers_today}
    assert totals[("dhl", "unauthorized")] == (1000, T0 + timedelta(seconds=49))
    assert totals[("dhl", "accepted")] == (1, T0 + timedelta(minutes=3))
    assert facts.last_accepted == {"dhl": T0 + timedelta(minutes=3)}
    assert facts.webhooks_per_minute == {T0 + timedelta(minutes=3): 1}
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(minute_counts)) == 2
    finally:
        engine.dispose()
    # A day later the refusals have left the Overview's 24 h, not the last accepted time.
    later = await console.overview(T0 + timedelta(days=1, minutes=5))
    assert later.carriers_today == []
    assert later.last_accepted == {"dhl": T0 + timedelta(minutes=3)}


async def test_counts_a_failed_write_kept_are_written_with_the_next(console: ConsoleStore) -> None:
    tally = MinuteTally()
    tally.note("account", "shop", "delivered", T0)
    taken = tally.take()
    tally.give_back(taken)  # as the flush does when the database was away
    tally.note("account", "shop", "delivered", T0 + timedelta(seconds=5))
    await console.add_counts(tally.take())

    facts = await console.accounts(T0 + timedelta(minutes=1))

    assert [(t.name, t.outcome, t.count) for t in facts.today] == [("shop", "delivered", 2)]
    assert isinstance(taken[0], MinuteCount)


async def test_search_finds_by_tracking_number_alias_order_invoice_and_webhook(
    sql_store: SqlStore, console: ConsoleStore
) -> None:
    labelled = ShipmentUpdate("LABEL-1", (event(T0),), aliases=("AA123BR",))
    result = await sql_store.record_webhook("melhor_envio", BODY, [labelled], T0)
    await sql_store.register_shipment("TRK-2", "ORD-9", "NF-7", "generic", None, T0)

    by_number = await console.search("LABEL-1")
    by_alias = await console.search("AA123BR")
    by_order = await console.search("ORD-9")
    by_invoice = await console.search("NF-7")
    by_webhook = await console.search(result.webhook_id)
    nothing = await console.search("nope")

    assert [(h.tracking_number, h.found_as) for h in by_number.shipments] == [
        ("LABEL-1", "tracking number")
    ]
    assert [(h.tracking_number, h.found_as) for h in by_alias.shipments] == [("LABEL-1", "alias")]
    assert [(h.tracking_number, h.found_as) for h in by_order.shipments] == [("TRK-2", "orderId")]
    assert [h.found_as for h in by_invoice.shipments] == ["invoice number"]
    assert (by_webhook.shipments, by_webhook.webhook_id) == ([], result.webhook_id)
    assert (nothing.shipments, nothing.webhook_id) == ([], None)
    page = await console.shipment("LABEL-1")
    assert page is not None
    assert page.aliases == ["AA123BR"]


async def test_deliveries_page_by_keyset_with_filters_and_count(
    sql_store: SqlStore, console: ConsoleStore
) -> None:
    dead = await dead_deliveries(sql_store, 30)
    await dead_deliveries(sql_store, 3, carrier="dhl")

    first = await console.deliveries(DeliveryFilter(state="dead", carrier="generic"), None, 25)
    assert first.total == 30
    assert [row.id for row in first.rows] == sorted(dead, reverse=True)[:25]
    assert first.next_before == first.rows[-1].id
    second = await console.deliveries(
        DeliveryFilter(state="dead", carrier="generic"), first.next_before, 25
    )
    assert [row.id for row in second.rows] == sorted(dead, reverse=True)[25:]
    assert second.next_before is None
    assert first.rows[0].carriers == ("generic",)
    assert first.rows[0].tracking_numbers == ("Tgeneric29",)
    assert (await console.deliveries(DeliveryFilter(status_code=400), None, 25)).total == 33
    assert (await console.deliveries(DeliveryFilter(status_code=500), None, 25)).total == 0
    assert (await console.deliveries(DeliveryFilter(state="pending"), None, 25)).total == 0
    assert (await console.deliveries(DeliveryFilter(since=T0 + timedelta(1)), None, 5)).total == 0
    assert (await console.deliveries(DeliveryFilter(until=T0 + timedelta(1)), None, 5)).total == 33
    named = DeliveryFilter(account="shop", account_is_default=True)
    assert (await console.deliveries(named, None, 5)).total == 33  # none names an account
    assert (await console.deliveries(DeliveryFilter(account="shop"), None, 5)).total == 0


async def test_retry_all_puts_back_every_dead_match_beyond_the_first_page(
    sql_store: SqlStore, console: ConsoleStore
) -> None:
    await dead_deliveries(sql_store, 30)
    others = await dead_deliveries(sql_store, 2, carrier="dhl")
    matching = DeliveryFilter(carrier="generic")

    assert await console.count_deliveries(DeliveryFilter(state="dead", carrier="generic")) == 30
    assert await console.retry_all(matching, T0 + timedelta(days=1)) == 30

    claimed = await claim(sql_store, T0 + timedelta(days=1), limit=100)
    assert len(claimed) == 30
    assert all(job.queued_at == T0 + timedelta(days=1) for job in claimed)
    assert {(await sql_store.get_delivery(i)).state for i in others} == {"dead"}  # type: ignore[union-attr]
    assert await console.retry_all(matching, T0 + timedelta(days=1)) == 0


async def test_retry_all_leaves_an_invoice_with_an_open_delivery_to_that_one(
    sql_store: SqlStore, console: ConsoleStore
) -> None:
    [dead] = await dead_deliveries(sql_store, 1)
    await sql_store.record_webhook(
        "generic", BODY, [update("Tgeneric0", event(T0 + timedelta(hours=1), "later"))], T0
    )

    assert await console.retry_all(DeliveryFilter(), T0) == 1

    assert (await sql_store.get_delivery(dead)).state == "dead"  # type: ignore[union-attr]
    [open_one] = await claim(sql_store, T0)
    assert open_one.id != dead


async def test_quarantine_pages_oldest_first_by_keyset(
    sql_store: SqlStore, console: ConsoleStore
) -> None:
    ids = [
        await sql_store.quarantine_webhook(
            "generic" if n % 2 else "dhl", b'{"n": %d}' % n, f"reason {n}", T0 + timedelta(n)
        )
        for n in range(5)
    ]
    big = await sql_store.quarantine_webhook("dhl", b"x" * 40_000, "big", T0 + timedelta(9))

    first = await console.quarantine(None, None, 2)
    second = await console.quarantine(None, first.next_after, 2)
    dhl = await console.quarantine("dhl", None, 25)

    assert [w.id for w in first.webhooks] == ids[:2]
    assert [w.id for w in second.webhooks] == ids[2:4]
    assert first.total == 6
    assert [w.id for w in dhl.webhooks] == [ids[0], ids[2], ids[4], big]
    assert dhl.next_after is None
    assert first.webhooks[1].body == b'{"n": 1}'
    assert first.webhooks[1].error == "reason 1"
    shown = dhl.webhooks[-1]
    assert (len(shown.body), shown.size) == (16_384, 40_000)
    gone = await console.quarantine(None, "discarded-or-unknown", 2)  # starts over
    assert [w.id for w in gone.webhooks] == ids[:2]
    found = await console.webhook(big)
    assert found is not None
    assert found.size == 40_000
    assert await console.webhook("nope") is None

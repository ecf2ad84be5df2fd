"""The store's side of VTEX orders: the orders hook's notifications, invoice checks, the
shipments of an invoice, and what reconciliation reads and queues (SPEC §2, §4)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from app.store import (
    ActiveInvoice,
    AttemptRecord,
    DeliveryJob,
    InvoiceShipment,
    OrderNotification,
    Store,
)
from tests.integration.helpers import T0, event, update

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=30)
BODY = b'{"raw": "webhook"}'
SINCE = T0 - timedelta(days=30)


@pytest.fixture
def store(any_store: Store) -> Store:
    """These behaviour tests run on every kind of store (tests/integration/conftest.py)."""
    return any_store


async def claim_notifications(
    store: Store, now: datetime, limit: int = 10
) -> list[OrderNotification]:
    return await store.claim_order_notifications(now, now + LEASE, limit)


async def claim_deliveries(store: Store, now: datetime) -> list[DeliveryJob]:
    return await store.claim_due_deliveries(now, now + LEASE, 10)


async def deliver(store: Store, order_id: str, invoice_number: str, now: datetime) -> None:
    """Claim the invoice's open delivery and record it delivered with every event held."""
    jobs = await claim_deliveries(store, now)
    [job] = [j for j in jobs if (j.order_id, j.invoice_number) == (order_id, invoice_number)]
    history = await store.invoice_history(order_id, invoice_number)
    await store.record_attempt(
        job,
        AttemptRecord(
            started_at=now, duration_ms=10.0, status_code=200, response_body="{}", error=None
        ),
        state="delivered",
        next_attempt_at=None,
        body={"isDelivered": False, "deliveredDate": None, "events": []},
        covered_event_ids=history.event_ids,
        receipt=None,
        now=now,
    )


async def registered_with_events(
    store: Store,
    tracking_number: str,
    order_id: str,
    invoice_number: str,
    received_at: datetime,
    account: str | None = "acme",
) -> None:
    await store.register_shipment(tracking_number, order_id, invoice_number, None, account, T0)
    await store.record_webhook(
        "generic", BODY, [update(tracking_number, event(received_at))], received_at
    )


# -- orders hook notifications ------------------------------------------------------------


async def test_a_notification_is_claimed_once_while_its_lease_holds(store: Store) -> None:
    await store.queue_order_notification("1001-01", "acme", T0)

    first = await claim_notifications(store, T0)

    assert first == [OrderNotification("1001-01", "acme", T0, 0)]
    assert await claim_notifications(store, T0) == []
    assert await claim_notifications(store, T0 + LEASE - timedelta(seconds=1)) == []
    # The lease ran out (the relay that held it died): another claim takes it.
    assert await claim_notifications(store, T0 + LEASE + timedelta(seconds=1)) == first


async def test_an_invoiced_notification_makes_the_orders_waiting_deliveries_due_at_once(
    store: Store,
) -> None:
    for order_id in ("1001-01", "1002-01"):
        await registered_with_events(store, f"TRK-{order_id}", order_id, "INV-1", T0)
    for job in await claim_deliveries(store, T0):  # VTEX: no such invoice yet (404)
        await store.record_attempt(
            job,
            AttemptRecord(
                started_at=T0, duration_ms=5.0, status_code=404, response_body="", error="404"
            ),
            state="retrying",
            next_attempt_at=T0 + timedelta(minutes=8),
            body=None,
            covered_event_ids=[],
            receipt=None,
            now=T0,
        )
    notified_at = T0 + timedelta(minutes=1)
    assert await claim_deliveries(store, notified_at) == []

    await store.queue_order_notification("1001-01", "acme", notified_at)

    [due] = await claim_deliveries(store, notified_at)
    assert (due.order_id, due.invoice_number) == ("1001-01", "INV-1")
    # Another order's delivery keeps its time.
    later = [j.order_id for j in await claim_deliveries(store, T0 + timedelta(minutes=7))]
    assert "1002-01" not in later
    later = [j.order_id for j in await claim_deliveries(store, T0 + timedelta(minutes=8))]
    assert "1002-01" in later


async def test_a_notification_is_not_claimed_before_it_is_received(store: Store) -> None:
    await store.queue_order_notification("1001-01", None, T0)

    assert await claim_notifications(store, T0 - timedelta(seconds=1)) == []
    assert await claim_notifications(store, T0) == [OrderNotification("1001-01", None, T0, 0)]


async def test_claiming_notifications_respects_its_limit(store: Store) -> None:
    for i in range(3):
        await store.queue_order_notification(f"100{i}-01", "acme", T0 + timedelta(seconds=i))
    now = T0 + timedelta(minutes=1)

    first = await claim_notifications(store, now, limit=2)
    rest = await claim_notifications(store, now, limit=2)

    assert [n.order_id for n in first] == ["1000-01", "1001-01"]
    assert [n.order_id for n in rest] == ["1002-01"]
    assert await claim_notifications(store, now, limit=2) == []


async def test_a_finished_notification_is_gone(store: Store) -> None:
    await store.queue_order_notification("1001-01", "acme", T0)
    [taken] = await claim_notifications(store, T0)

    await store.finish_order_notification(taken)

    assert await claim_notifications(store, T0 + timedelta(days=1)) == []


async def test_renotifying_resets_attempts_and_survives_the_older_claims_finish(
    store: Store,
) -> None:
    await store.queue_order_notification("1001-01", "acme", T0)
    [older] = await claim_notifications(store, T0)
    await store.retry_order_notification(older, T0 + timedelta(minutes=5), "Get order: 404")
    [older] = await claim_notifications(store, T0 + timedelta(minutes=5))
    assert older.attempts == 1
    renotified_at = T0 + timedelta(minutes=5, seconds=10)

    # VTEX notifies the order again while the older notification is held by a claim.
    await store.queue_order_notification("1001-01", "other", renotified_at)
    [newer] = await claim_notifications(store, renotified_at)

    assert newer == OrderNotification("1001-01", "other", renotified_at, 0)
    # The older claim finishing (or retrying) must not touch the newer notification.
    await store.finish_order_notification(older)
    await store.retry_order_notification(older, T0 + timedelta(days=1), "Get order: 503")
    later = renotified_at + LEASE + timedelta(seconds=1)
    assert await claim_notifications(store, later) == [newer]
    await store.finish_order_notification(newer)
    assert await claim_notifications(store, later + timedelta(days=2)) == []


async def test_a_retry_waits_until_it_is_due_and_counts_the_attempt(store: Store) -> None:
    await store.queue_order_notification("1001-01", "acme", T0)
    [taken] = await claim_notifications(store, T0)
    due = T0 + timedelta(minutes=10)

    await store.retry_order_notification(taken, due, "Get order: HTTP 503 " + "x" * 1000)

    # Not due: hidden, though its lease is long over.
    assert await claim_notifications(store, T0 + LEASE + timedelta(seconds=1)) == []
    assert await claim_notifications(store, due - timedelta(seconds=1)) == []
    [again] = await claim_notifications(store, due)
    assert again == dataclasses.replace(taken, attempts=1)

    await store.retry_order_notification(again, due + timedelta(minutes=20), "Get order: 404")
    [third] = await claim_notifications(store, due + timedelta(minutes=20))
    assert third.attempts == 2


# -- invoice checks ------------------------------------------------------------------------


async def record_check(
    store: Store, job: DeliveryJob, checked_by: str | None, now: datetime, status_code: int = 503
) -> None:
    """A failed attempt; ``checked_by`` is None when its check did not pass (Get order 404),
    else what showed the invoice's tracking number before the PUT failed."""
    await store.record_attempt(
        job,
        AttemptRecord(
            started_at=now,
            duration_ms=10.0,
            status_code=status_code,
            response_body="{}",
            error=f"HTTP {status_code}",
        ),
        state="retrying",
        next_attempt_at=now + timedelta(seconds=1),
        body=None,
        covered_event_ids=(),
        receipt=None,
        now=now,
        invoice_checked_by=checked_by,
    )


async def test_an_invoice_is_unchecked_until_an_attempt_records_its_check(store: Store) -> None:
    await registered_with_events(store, "TRK1", "ORD-1", "INV-1", T0)
    assert not (await store.invoice_history("ORD-1", "INV-1")).checked
    [job] = await claim_deliveries(store, T0 + timedelta(minutes=1))

    await record_check(store, job, None, T0, status_code=404)
    assert not (await store.invoice_history("ORD-1", "INV-1")).checked  # no check recorded

    [job] = await claim_deliveries(store, T0 + timedelta(seconds=2))
    await record_check(store, job, "partial invoice PATCH", T0 + timedelta(seconds=2))

    history = await store.invoice_history("ORD-1", "INV-1")
    assert history.checked_by == "partial invoice PATCH"
    assert len(history.events) == 1
    # Recording it again is harmless (the first check stays); another invoice of the order
    # is its own.
    [job] = await claim_deliveries(store, T0 + timedelta(seconds=4))
    assert job.history.checked_by == "partial invoice PATCH"  # the claim carries it
    await record_check(store, job, "Get order", T0 + timedelta(seconds=4))
    assert (await store.invoice_history("ORD-1", "INV-1")).checked_by == "partial invoice PATCH"
    assert not (await store.invoice_history("ORD-1", "INV-2")).checked
    assert not (await store.invoice_history("ORD-2", "INV-1")).checked


# -- the shipments of an invoice -------------------------------------------------------------


async def test_invoice_shipments_list_the_numbers_vtex_knows_first(store: Store) -> None:
    # Melhor Envio: events keyed by the label id "label-1", VTEX knows the code "zz1br".
    aliased = dataclasses.replace(
        update("label-1", event(T0)),
        aliases=("zz1br",),
        tracking_url="https://track.example/label-1",
    )
    await store.record_webhook("melhor_envio", BODY, [aliased], T0)
    await store.register_shipment("zz1br", "ORD-1", "INV-1", "correios", "acme", T0)
    await store.register_shipment("TRK-OTHER", "ORD-1", "INV-2", None, "acme", T0)

    found = await store.invoice_shipments("ORD-1", "INV-1")

    assert found == [
        InvoiceShipment("zz1br", None, "correios", True),
        InvoiceShipment("label-1", "https://track.example/label-1", "melhor_envio", False),
    ]


async def test_invoice_shipments_in_registration_order(store: Store) -> None:
    await store.register_shipment("TRK-B", "ORD-1", "INV-1", None, None, T0)
    await store.register_shipment("TRK-A", "ORD-1", "INV-1", "correios", None, T0 + LEASE)

    found = await store.invoice_shipments("ORD-1", "INV-1")

    assert found == [
        InvoiceShipment("TRK-B", None, None, False),
        InvoiceShipment("TRK-A", None, "correios", False),
    ]
    assert await store.invoice_shipments("ORD-1", "INV-9") == []


# -- reconciliation ----------------------------------------------------------------------------


async def test_active_invoices_are_delivered_registered_invoices_with_a_recent_event(
    store: Store,
) -> None:
    # Delivered, two shipments with recent events: listed once.
    await registered_with_events(store, "TRK-A1", "ORD-A", "INV-A", T0)
    await registered_with_events(store, "TRK-A2", "ORD-A", "INV-A", T0)
    await deliver(store, "ORD-A", "INV-A", T0)
    # Delivered, its account unknown.
    await registered_with_events(store, "TRK-N", "ORD-N", "INV-N", T0, account=None)
    await deliver(store, "ORD-N", "INV-N", T0)
    # Delivered once, but its events are older than the window.
    old = SINCE - timedelta(seconds=1)
    await registered_with_events(store, "TRK-O", "ORD-O", "INV-O", old)
    await deliver(store, "ORD-O", "INV-O", old)
    # Recent events, never delivered (its delivery is still open).
    await registered_with_events(store, "TRK-P", "ORD-P", "INV-P", T0)
    # Recent events, not registered.
    await store.record_webhook("generic", BODY, [update("TRK-U", event(T0))], T0)

    active = await store.active_invoices(SINCE)

    assert active == [
        ActiveInvoice("ORD-A", "INV-A", "acme"),
        ActiveInvoice("ORD-N", "INV-N", None),
    ]


async def test_an_event_received_at_the_windows_start_is_recent(store: Store) -> None:
    await registered_with_events(store, "TRK1", "ORD-1", "INV-1", SINCE)
    await deliver(store, "ORD-1", "INV-1", SINCE)

    assert await store.active_invoices(SINCE) == [ActiveInvoice("ORD-1", "INV-1", "acme")]
    assert await store.active_invoices(SINCE + timedelta(microseconds=1)) == []


async def test_a_recent_event_keeps_a_delivered_invoice_active_after_a_new_delivery(
    store: Store,
) -> None:
    await registered_with_events(store, "TRK1", "ORD-1", "INV-1", T0)
    await deliver(store, "ORD-1", "INV-1", T0)
    later = T0 + timedelta(hours=1)
    await store.record_webhook("generic", BODY, [update("TRK1", event(later, "late"))], later)

    # The next delivery is open; the first one was delivered.
    assert await store.active_invoices(SINCE) == [ActiveInvoice("ORD-1", "INV-1", "acme")]


async def test_queue_delivery_now_queues_one_delivery(store: Store) -> None:
    await registered_with_events(store, "TRK1", "ORD-1", "INV-1", T0)
    await deliver(store, "ORD-1", "INV-1", T0)
    assert await claim_deliveries(store, T0 + timedelta(days=1)) == []
    now = T0 + timedelta(days=1)

    assert await store.queue_delivery_now("ORD-1", "INV-1", "acme", now) == 1
    # One is open now: reconciliation asking again queues no second one.
    assert await store.queue_delivery_now("ORD-1", "INV-1", "acme", now) == 0

    jobs = await claim_deliveries(store, now)
    assert [(j.order_id, j.invoice_number, j.account, j.tracking_numbers) for j in jobs] == [
        ("ORD-1", "INV-1", "acme", ("TRK1",))
    ]
    assert jobs[0].attempt_count == 0
    # Held by the worker, it is still the invoice's open delivery.
    assert await store.queue_delivery_now("ORD-1", "INV-1", "acme", now) == 0
    assert await claim_deliveries(store, now + LEASE + timedelta(seconds=1)) != []
    assert await store.backlog(now) == (1, 1)


async def test_queue_delivery_now_defers_to_a_pending_delivery(store: Store) -> None:
    await registered_with_events(store, "TRK1", "ORD-1", "INV-1", T0)

    assert await store.queue_delivery_now("ORD-1", "INV-1", "acme", T0) == 0

    assert len(await claim_deliveries(store, T0)) == 1

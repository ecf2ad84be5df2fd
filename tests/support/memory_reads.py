"""The :class:`~tests.support.memory_store.MemoryStore`'s read models (``app/store/reads.py``
and ``orders.active_invoices``): functions of its tables, changing nothing."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.store import (
    ActiveInvoice,
    DeliveryView,
    InvoiceCheck,
    QuarantinedWebhook,
    QueueSnapshot,
    Receipt,
    ShipmentView,
    StoredEvent,
)
from tests.support.memory_tables import Delivery, Tables, Webhook, utc


def queue_snapshot(t: Tables, now: datetime) -> QueueSnapshot:
    """Open deliveries, the oldest one's age, dead deliveries and quarantined webhooks."""
    waiting = [d.queued_at for d in t.deliveries.values() if d.is_open]
    age = max((utc(now) - min(waiting)).total_seconds(), 0.0) if waiting else 0.0
    dead = sum(1 for d in t.deliveries.values() if d.state == "dead")
    quarantined = sum(1 for w in t.webhooks.values() if w.state == "quarantined")
    return QueueSnapshot(len(waiting), age, dead, quarantined)


def backlog(t: Tables, now: datetime) -> tuple[int, int]:
    """(open deliveries, of which due now)."""
    waiting = [d for d in t.deliveries.values() if d.is_open]
    return len(waiting), sum(1 for d in waiting if d.next_attempt_at <= utc(now))


def paused_accounts(t: Tables, now: datetime) -> dict[str, datetime]:
    return {account: until for account, until in t.pauses.items() if until > utc(now)}


def active_invoices(t: Tables, since: datetime) -> list[ActiveInvoice]:
    """Registered invoices delivered at least once, with an event received since ``since``."""
    delivered = {d.invoice for d in t.deliveries.values() if d.state == "delivered"}
    recent = {e.number for e in t.events.values() if e.received_at >= utc(since)}
    found = {
        (invoice, row.account)
        for row in t.shipments.values()
        if (invoice := row.invoice) is not None and invoice in delivered and row.number in recent
    }
    return [
        ActiveInvoice(order_id, invoice_number, account)
        for (order_id, invoice_number), account in sorted(found, key=lambda f: (f[0], f[1] or ""))
    ]


def shipment(t: Tables, tracking_number: str) -> ShipmentView | None:
    """The shipment, its events, the last body sent to VTEX and its deliveries."""
    row = t.shipments.get(tracking_number)
    if row is None:
        return None
    # A number registered as an alias shows the events held under the key it stands for.
    keys = {tracking_number, t.aliases.get(tracking_number)}
    held = sorted((e for e in t.events.values() if e.number in keys), key=lambda e: e.order)
    views: list[DeliveryView] = []
    last_body: dict[str, Any] | None = None
    if row.invoice is not None:
        of_invoice = [d for d in t.newest_deliveries() if d.invoice == row.invoice]
        views = [delivery_view(t, d) for d in of_invoice[:20]]
        sent = next((d.body for d in of_invoice if d.body is not None), None)
        last_body = json.loads(sent) if sent else None
    return ShipmentView(
        tracking_number=row.number,
        carrier=row.carrier,
        tracking_url=row.url,
        order_id=row.order_id,
        invoice_number=row.invoice_number,
        account=row.account,
        registered=row.order_id is not None,
        first_seen_at=row.first_seen_at,
        events=[StoredEvent(e.id, e.carrier, e.event, e.received_at, e.webhook_id) for e in held],
        last_body=last_body,
        deliveries=views,
    )


def deliveries_in(t: Tables, state: str | None, limit: int) -> list[DeliveryView]:
    """Newest deliveries first, in ``state`` when given, with their attempts."""
    chosen = [d for d in t.newest_deliveries() if state is None or d.state == state]
    return [delivery_view(t, d) for d in chosen[:limit]]


def delivery_view(t: Tables, d: Delivery) -> DeliveryView:
    check = t.checks.get(d.invoice)
    return DeliveryView(
        id=d.id,
        order_id=d.order_id,
        invoice_number=d.invoice_number,
        account=d.account,
        state=d.state,
        queued_at=d.queued_at,
        next_attempt_at=d.next_attempt_at if d.is_open else None,
        attempt_count=d.attempt_count,
        last_status=d.last_status,
        last_error=d.last_error,
        receipt=Receipt(d.receipt, d.vtex_date, d.order_id) if d.receipt is not None else None,
        delivered_at=d.delivered_at,
        attempts=list(d.attempts),
        invoice_check=InvoiceCheck(*check) if check else None,
    )


def quarantined_webhook(webhook: Webhook) -> QuarantinedWebhook:
    return QuarantinedWebhook(
        webhook.id, webhook.carrier, webhook.received_at, webhook.body, webhook.error
    )

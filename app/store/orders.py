"""VTEX orders: "invoiced" notifications from the orders hook waiting to be read, and the
invoices reconciliation compares with VTEX (SQLAlchemy Core: none of it is on a hot path)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from app.store.deliveries import notify_work
from app.store.records import ActiveInvoice, OrderNotification
from app.store.schema import deliveries, events, insert_into, order_notifications, shipments


def queue_notification(conn: Connection, order_id: str, account: str | None, now: datetime) -> None:
    """Remember to read an invoiced order (again, if it was notified before), and make the
    order's deliveries waiting to retry due now: VTEX has just invoiced it (SPEC §3)."""
    values = {
        "order_id": order_id,
        "account": account,
        "received_at": now,
        "next_attempt_at": now,
        "claimed_until": None,
        "attempts": 0,
        "last_error": None,
    }
    conn.execute(
        insert_into(conn, order_notifications)
        .values(values)
        .on_conflict_do_update(
            index_elements=[order_notifications.c.order_id],
            set_={k: v for k, v in values.items() if k != "order_id"},
        )
    )
    conn.execute(
        update(deliveries)
        .where(deliveries.c.order_id == order_id)
        .where(deliveries.c.state == "retrying")
        .where(deliveries.c.next_attempt_at > now)
        .where(deliveries.c.claimed_until.is_(None) | (deliveries.c.claimed_until < now))
        .values(next_attempt_at=now)
    )
    if conn.dialect.name == "postgresql":
        notify_work(conn)


def claim_notifications(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[OrderNotification]:
    """Take up to ``limit`` due notifications not held by a live claim."""
    rows = conn.execute(
        select(order_notifications)
        .where(order_notifications.c.next_attempt_at <= now)
        .where(
            order_notifications.c.claimed_until.is_(None)
            | (order_notifications.c.claimed_until < now)
        )
        .order_by(order_notifications.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        conn.execute(
            update(order_notifications)
            .where(order_notifications.c.order_id.in_([r.order_id for r in rows]))
            .values(claimed_until=lease_until)
        )
    return [OrderNotification(r.order_id, r.account, r.received_at, r.attempts) for r in rows]


def finish_notification(conn: Connection, notification: OrderNotification) -> None:
    """Done with it, unless the order was notified again meanwhile."""
    conn.execute(
        order_notifications.delete()
        .where(order_notifications.c.order_id == notification.order_id)
        .where(order_notifications.c.received_at == notification.received_at)
    )


def retry_notification(
    conn: Connection, notification: OrderNotification, at: datetime, error: str
) -> None:
    """Read the order again at ``at``, noting why this time failed."""
    conn.execute(
        update(order_notifications)
        .where(order_notifications.c.order_id == notification.order_id)
        .where(order_notifications.c.received_at == notification.received_at)
        .values(
            next_attempt_at=at,
            claimed_until=None,
            attempts=notification.attempts + 1,
            last_error=error[:500],
        )
    )


def active_invoices(conn: Connection, since: datetime) -> list[ActiveInvoice]:
    """Registered invoices already delivered to VTEX at least once, with an event
    received since ``since``: the ones whose VTEX tracking is worth comparing."""
    rows = conn.execute(
        select(shipments.c.order_id, shipments.c.invoice_number, shipments.c.account)
        .where(shipments.c.order_id.is_not(None))
        .where(
            select(deliveries.c.id)
            .where(deliveries.c.order_id == shipments.c.order_id)
            .where(deliveries.c.invoice_number == shipments.c.invoice_number)
            .where(deliveries.c.state == "delivered")
            .exists()
        )
        .where(
            select(events.c.id)
            .where(events.c.tracking_number == shipments.c.tracking_number)
            .where(events.c.received_at >= since)
            .exists()
        )
        .distinct()
        .order_by(shipments.c.order_id, shipments.c.invoice_number)
    ).all()
    return [ActiveInvoice(r.order_id, r.invoice_number, r.account) for r in rows]

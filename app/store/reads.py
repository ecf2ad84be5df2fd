"""Read models: what the admin API, the CLI and the metrics show (SQLAlchemy Core)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, true
from sqlalchemy.engine import Connection

from app.normalize.model import Status, TrackingEvent
from app.store.records import (
    OPEN_STATES,
    DeliveryView,
    InvoiceCheck,
    QueueSnapshot,
    Receipt,
    RecordedAttempt,
    ShipmentView,
    StoredEvent,
)
from app.store.schema import (
    account_pauses,
    attempts,
    deliveries,
    events,
    invoice_checks,
    shipment_aliases,
    shipments,
    webhooks,
)


def queue_snapshot(conn: Connection, now: datetime) -> QueueSnapshot:
    """Open deliveries, the oldest one's age, dead deliveries and quarantined webhooks."""
    backlog, oldest = conn.execute(
        select(func.count(), func.min(deliveries.c.queued_at)).where(
            deliveries.c.state.in_(OPEN_STATES)
        )
    ).one()
    dead = conn.scalar(select(func.count()).where(deliveries.c.state == "dead"))
    quarantined = conn.scalar(select(func.count()).where(webhooks.c.state == "quarantined"))
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    return QueueSnapshot(int(backlog), age, int(dead or 0), int(quarantined or 0))


def backlog(conn: Connection, now: datetime) -> tuple[int, int]:
    """(open deliveries, of which due now)."""
    row = conn.execute(
        select(
            func.count(),
            func.count().filter(deliveries.c.next_attempt_at <= now),
        ).where(deliveries.c.state.in_(OPEN_STATES))
    ).one()
    return int(row[0]), int(row[1])


def paused_accounts(conn: Connection, now: datetime) -> dict[str, datetime]:
    """Accounts a 429 paused, with the time the pause ends."""
    rows = conn.execute(select(account_pauses).where(account_pauses.c.paused_until > now)).all()
    return {row.account: row.paused_until for row in rows}


def shipment(conn: Connection, tracking_number: str) -> ShipmentView | None:
    """The shipment, its events, the last body sent to VTEX and its deliveries."""
    row = conn.execute(
        select(shipments).where(shipments.c.tracking_number == tracking_number)
    ).first()
    if row is None:
        return None
    # A number registered as an alias (Melhor Envio's carrier code) shows the events held
    # under the key it stands for.
    # The keys are read first: PostgreSQL plans "= x OR IN (subquery)" as a scan of events.
    keys = {tracking_number}
    keys.update(
        conn.scalars(
            select(shipment_aliases.c.tracking_number).where(
                shipment_aliases.c.alias == tracking_number
            )
        )
    )
    event_rows = conn.execute(
        select(events)
        .where(events.c.tracking_number.in_(sorted(keys)))
        .order_by(events.c.occurred_at, events.c.id)
    ).all()
    views: list[DeliveryView] = []
    last_body: dict[str, Any] | None = None
    if row.order_id is not None:
        views = delivery_views(
            conn,
            and_(
                deliveries.c.order_id == row.order_id,
                deliveries.c.invoice_number == row.invoice_number,
            ),
            limit=20,
        )
        body_text = conn.scalar(
            select(deliveries.c.body)
            .where(deliveries.c.order_id == row.order_id)
            .where(deliveries.c.invoice_number == row.invoice_number)
            .where(deliveries.c.body.is_not(None))
            .order_by(deliveries.c.id.desc())
            .limit(1)
        )
        last_body = json.loads(body_text) if body_text else None
    return ShipmentView(
        tracking_number=row.tracking_number,
        carrier=row.carrier,
        tracking_url=row.tracking_url,
        order_id=row.order_id,
        invoice_number=row.invoice_number,
        account=row.account,
        registered=row.order_id is not None,
        first_seen_at=row.first_seen_at,
        events=[
            StoredEvent(
                e.id,
                e.carrier,
                TrackingEvent(
                    e.occurred_at,
                    Status(e.status),
                    e.carrier_status,
                    e.description,
                    e.city,
                    e.state,
                ),
                e.received_at,
                e.webhook_id,
            )
            for e in event_rows
        ],
        last_body=last_body,
        deliveries=views,
    )


def deliveries_in(conn: Connection, state: str | None, limit: int) -> list[DeliveryView]:
    """Newest deliveries first, in ``state`` when given, with their attempts."""
    condition = deliveries.c.state == state if state is not None else true()
    return delivery_views(conn, condition, limit)


def delivery(conn: Connection, delivery_id: int) -> DeliveryView | None:
    views = delivery_views(conn, deliveries.c.id == delivery_id, 1)
    return views[0] if views else None


def delivery_views(conn: Connection, condition: Any, limit: int) -> list[DeliveryView]:
    checked = invoice_checks.c
    rows = conn.execute(
        select(deliveries, checked.checked_at, checked.checked_by)
        .outerjoin(
            invoice_checks,
            (checked.order_id == deliveries.c.order_id)
            & (checked.invoice_number == deliveries.c.invoice_number),
        )
        .where(condition)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    ).all()
    views = {
        row.id: DeliveryView(
            id=row.id,
            order_id=row.order_id,
            invoice_number=row.invoice_number,
            account=row.account,
            state=row.state,
            queued_at=row.queued_at,
            next_attempt_at=row.next_attempt_at if row.state in OPEN_STATES else None,
            attempt_count=row.attempt_count,
            last_status=row.last_status,
            last_error=row.last_error,
            receipt=(
                Receipt(row.receipt, row.vtex_date, row.order_id)
                if row.receipt is not None
                else None
            ),
            delivered_at=row.delivered_at,
            invoice_check=(
                InvoiceCheck(row.checked_at, row.checked_by) if row.checked_by is not None else None
            ),
        )
        for row in rows
    }
    if views:
        for attempt in conn.execute(
            select(attempts)
            .where(attempts.c.delivery_id.in_(list(views)))
            .order_by(attempts.c.delivery_id, attempts.c.attempt)
        ).all():
            views[attempt.delivery_id].attempts.append(
                RecordedAttempt(
                    attempt.attempt,
                    attempt.started_at,
                    attempt.duration_ms,
                    attempt.status_code,
                    attempt.response_body,
                    attempt.error,
                )
            )
    return list(views.values())

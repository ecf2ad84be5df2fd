"""Deliveries: the queue of invoices whose tracking VTEX must hear, their claims, history
and attempts (hot statements in ``sql/deliveries.sql``; the rest SQLAlchemy Core).

At most one delivery per invoice is open (pending or retrying): new events join it, since
every delivery sends the invoice's whole history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from app.normalize.model import Status, TrackingEvent
from app.store.engine import WORK_CHANNEL
from app.store.queries import Statements
from app.store.records import (
    OPEN_STATES,
    RESPONSE_KEEP_BYTES,
    AttemptRecord,
    DeliveryJob,
    InvoiceHistory,
    InvoiceShipment,
    NotRetriable,
    first_bytes,
)
from app.store.schema import (
    account_pauses,
    deliveries,
    insert_into,
    read_time,
    shipment_aliases,
    shipments,
    stored_time,
)

SQL = Statements("deliveries")

Invoice = tuple[str, str]
"""(orderId, invoice number)"""


@dataclass(frozen=True)
class QueueRequest:
    """A delivery of the invoice wanted, due at ``due``."""

    order_id: str
    invoice_number: str
    account: str | None
    now: datetime
    due: datetime

    @property
    def invoice(self) -> Invoice:
        return self.order_id, self.invoice_number


def queue(conn: Connection, requests: Sequence[QueueRequest]) -> set[Invoice]:
    """Queue a delivery per requested invoice unless one is open; return those queued.

    A fixed number of statements for any number of requests (the first request of an
    invoice is the one that counts). On PostgreSQL the open deliveries found instead are
    share-locked until this transaction commits: a worker finishing one waits, and its
    check for newer events (a statement after ours committed) sees ours, so the next
    delivery is queued by one of the two. Those that closed meanwhile are queued again.
    (SQLite has a single writer.)
    """
    wanted: dict[Invoice, QueueRequest] = {}
    for request in requests:
        wanted.setdefault(request.invoice, request)
    queued: set[Invoice] = set()
    dialect = conn.dialect.name
    while wanted:
        rows = [_queue_row(request, dialect) for request in wanted.values()]
        added = {(order, invoice) for order, invoice in SQL.run_set(conn, "queue", rows)}
        queued |= added
        if dialect != "postgresql":
            break
        wanted = {key: request for key, request in wanted.items() if key not in added}
        if not wanted:
            break
        rows = [_queue_row(request, dialect) for request in wanted.values()]
        held = {(order, invoice) for order, invoice in SQL.run_set(conn, "hold_open", rows)}
        wanted = {key: request for key, request in wanted.items() if key not in held}
    if queued and dialect == "postgresql":
        notify_work(conn)
    return queued


def _queue_row(request: QueueRequest, dialect: str) -> dict[str, Any]:
    return {
        "order_id": request.order_id,
        "invoice_number": request.invoice_number,
        "account": request.account,
        "at": stored_time(request.now, dialect),
        "due": stored_time(request.due, dialect),
    }


def notify_work(conn: Connection) -> None:
    """Wake every relay's worker once this transaction commits (PostgreSQL)."""
    conn.exec_driver_sql(f"NOTIFY {WORK_CHANNEL}")


def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int
) -> list[DeliveryJob]:
    """Take up to ``limit`` open deliveries that are due and not held by a live claim."""
    ids = conn.scalars(
        select(deliveries.c.id)
        .where(deliveries.c.state.in_(OPEN_STATES))
        .where(deliveries.c.next_attempt_at <= now)
        .where((deliveries.c.claimed_until.is_(None)) | (deliveries.c.claimed_until < now))
        .where(
            ~select(account_pauses.c.account)
            .where(account_pauses.c.account == func.coalesce(deliveries.c.account, ""))
            .where(account_pauses.c.paused_until > now)
            .exists()
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return []
    conn.execute(
        update(deliveries).where(deliveries.c.id.in_(ids)).values(claimed_until=lease_until)
    )
    rows = conn.execute(select(deliveries).where(deliveries.c.id.in_(ids))).all()
    numbers = conn.execute(
        select(
            shipments.c.order_id,
            shipments.c.invoice_number,
            shipments.c.tracking_number,
            shipments.c.carrier,
        ).where(shipments.c.order_id.in_({row.order_id for row in rows}))
    ).all()
    by_invoice: dict[Invoice, list[str]] = {}
    carriers: dict[Invoice, set[str]] = {}
    for n in numbers:
        by_invoice.setdefault((n.order_id, n.invoice_number), []).append(n.tracking_number)
        if n.carrier:
            carriers.setdefault((n.order_id, n.invoice_number), set()).add(n.carrier)
    return [
        DeliveryJob(
            id=row.id,
            order_id=row.order_id,
            invoice_number=row.invoice_number,
            account=row.account,
            queued_at=row.queued_at,
            attempt_count=row.attempt_count,
            tracking_numbers=tuple(sorted(by_invoice.get((row.order_id, row.invoice_number), []))),
            carriers=tuple(sorted(carriers.get((row.order_id, row.invoice_number), ()))),
        )
        for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.id))
    ]


def invoice_history(conn: Connection, order_id: str, invoice_number: str) -> InvoiceHistory:
    """Every event of every shipment registered to the invoice, oldest first."""
    invoice = {"order_id": order_id, "invoice_number": invoice_number}
    rows = SQL.run(conn, "history", invoice).fetchall()
    checked = SQL.run(conn, "invoice_checked", invoice).fetchone()
    return InvoiceHistory(
        events=tuple(
            TrackingEvent(
                occurred_at=read_time(occurred_at),
                status=Status(status),
                carrier_status=carrier_status,
                description=description,
                city=city,
                state=state,
            )
            for _, occurred_at, status, carrier_status, description, city, state in rows
        ),
        event_ids=tuple(row[0] for row in rows),
        checked=checked is not None,
    )


def invoice_shipments(
    conn: Connection, order_id: str, invoice_number: str
) -> list[InvoiceShipment]:
    """The shipments registered to an invoice, the numbers VTEX knows first."""
    aliases = select(shipment_aliases.c.alias)
    rows = conn.execute(
        select(
            shipments.c.tracking_number,
            shipments.c.tracking_url,
            shipments.c.carrier,
            shipments.c.tracking_number.in_(aliases).label("is_alias"),
        )
        .where(shipments.c.order_id == order_id)
        .where(shipments.c.invoice_number == invoice_number)
        .order_by(shipments.c.registered_at, shipments.c.tracking_number)
    ).all()
    found = [
        InvoiceShipment(r.tracking_number, r.tracking_url, r.carrier, bool(r.is_alias))
        for r in rows
    ]
    return sorted(found, key=lambda shipment: not shipment.stands_for_another)


@dataclass(frozen=True)
class Outcome:
    """What an attempt leaves behind, besides the attempt itself."""

    state: str
    next_attempt_at: datetime | None
    body: dict[str, Any] | None
    """What VTEX was sent (None when nothing was)."""
    covered_event_ids: Sequence[int]
    receipt: dict[str, Any] | None
    pause_account_until: datetime | None = None
    invoice_checked: bool | None = None
    """The check before the first PUT passed (True: the relay patched the number in)."""


def record_attempt(
    conn: Connection,
    job: DeliveryJob,
    attempt: AttemptRecord,
    outcome: Outcome,
    now: datetime,
    coalesce: timedelta,
) -> None:
    """Store one attempt and its delivery's new state, releasing the claim.

    When a delivery succeeds and the invoice has an event the body lacked, the next
    delivery is queued in the same transaction. The check is by id set, not "newest id":
    with several replicas a lower id can commit after a higher one (and an ingest that
    joined this delivery holds its row lock until it commits, so the UPDATE below waits for
    it and the check after it sees its events).
    """
    dialect = conn.dialect.name
    number = job.attempt_count + 1
    SQL.run(
        conn,
        "add_attempt",
        {
            "delivery_id": job.id,
            "attempt": number,
            "started_at": stored_time(attempt.started_at, dialect),
            "duration_ms": attempt.duration_ms,
            "status_code": attempt.status_code,
            "response_body": first_bytes(attempt.response_body, RESPONSE_KEEP_BYTES),
            "error": attempt.error,
        },
    )
    delivered = outcome.state == "delivered"
    receipt = outcome.receipt if delivered and outcome.receipt is not None else {}
    body = outcome.body
    SQL.run(
        conn,
        "attempted",
        {
            "delivery_id": job.id,
            "state": outcome.state,
            "attempt": number,
            "status_code": attempt.status_code,
            "error": attempt.error,
            "body": json.dumps(body, ensure_ascii=False) if body is not None else None,
            "covered_event_id": max(outcome.covered_event_ids, default=None),
            "next_attempt_at": (
                None
                if outcome.next_attempt_at is None
                else stored_time(outcome.next_attempt_at, dialect)
            ),
            "delivered_at": stored_time(now, dialect) if delivered else None,
            "receipt": str(receipt.get("receipt") or "") or None,
            "vtex_date": str(receipt.get("date") or "") or None,
        },
    )
    if outcome.pause_account_until is not None:
        pause_account(conn, job.account or "", outcome.pause_account_until)
    if outcome.invoice_checked is not None:
        SQL.run(
            conn,
            "check_invoice",
            {
                "order_id": job.order_id,
                "invoice_number": job.invoice_number,
                "at": stored_time(now, dialect),
                "patched": outcome.invoice_checked,
            },
        )
    if delivered:
        invoice = {"order_id": job.order_id, "invoice_number": job.invoice_number}
        held = {row[0] for row in SQL.run(conn, "event_ids", invoice).fetchall()}
        if held - set(outcome.covered_event_ids):
            queue(
                conn,
                [QueueRequest(job.order_id, job.invoice_number, job.account, now, now + coalesce)],
            )


def pause_account(conn: Connection, account: str, until: datetime) -> None:
    """Hold every delivery to ``account`` until ``until`` (a later pause wins)."""
    later = func.max if conn.dialect.name == "sqlite" else func.greatest
    conn.execute(
        insert_into(conn, account_pauses)
        .values(account=account, paused_until=until)
        .on_conflict_do_update(
            index_elements=[account_pauses.c.account],
            set_={"paused_until": later(account_pauses.c.paused_until, until)},
        )
    )


def postpone(conn: Connection, delivery_id: int, until: datetime) -> None:
    """Release a claim without an attempt: the delivery is due again at ``until``."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(next_attempt_at=until, claimed_until=None)
    )


def renew_claims(conn: Connection, delivery_ids: Sequence[int], until: datetime) -> None:
    """Extend the claims a live worker still holds, so that only a dead one's expire."""
    if delivery_ids:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)))
            .where(deliveries.c.claimed_until.is_not(None))
            .values(claimed_until=until)
        )


def retry(conn: Connection, delivery_id: int, now: datetime) -> int | None:
    """Put a delivery back in line now; return the id of the one that will run.

    A dead delivery becomes pending again with a fresh age, unless the invoice already
    has an open delivery (it carries the whole history), which is then made due now.
    None when there is no such delivery; :class:`NotRetriable` when it was delivered.
    """
    row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
    if row is None:
        return None
    if row.state == "delivered":
        raise NotRetriable(f"delivery {delivery_id} was delivered")
    target = row.id
    if row.state == "dead":
        open_id = conn.scalar(
            select(deliveries.c.id)
            .where(deliveries.c.order_id == row.order_id)
            .where(deliveries.c.invoice_number == row.invoice_number)
            .where(deliveries.c.state.in_(OPEN_STATES))
        )
        if open_id is None:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(state="pending", queued_at=now, claimed_until=None)
            )
        else:
            target = open_id
    conn.execute(update(deliveries).where(deliveries.c.id == target).values(next_attempt_at=now))
    if conn.dialect.name == "postgresql":
        notify_work(conn)
    return int(target)

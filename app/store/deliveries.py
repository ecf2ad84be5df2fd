"""Deliveries: the queue of invoices whose tracking VTEX must hear, their claims, history
and attempts (hot statements in ``sql/deliveries.sql``; the rest SQLAlchemy Core).

At most one delivery per invoice is open (pending or retrying): new events join it, since
every delivery sends the invoice's whole history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
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


@dataclass(frozen=True)
class Claimed:
    """A claim's deliveries, each with its invoice's history, and the accounts paused now."""

    jobs: list[DeliveryJob]
    pauses: dict[str, datetime]


def claim_due(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> Claimed:
    """Take up to ``limit`` open deliveries that are due and not held by a live claim, with
    their invoices' histories (one query for all of them)."""
    pauses = {
        account: read_time(until)
        for account, until in SQL.run(
            conn, "active_pauses", {"now": stored_time(now, conn.dialect.name)}
        ).fetchall()
    }
    ids = conn.scalars(
        select(deliveries.c.id)
        .where(deliveries.c.state.in_(OPEN_STATES))
        .where(deliveries.c.next_attempt_at <= now)
        .where((deliveries.c.claimed_until.is_(None)) | (deliveries.c.claimed_until < now))
        .where(func.coalesce(deliveries.c.account, "").not_in(list(pauses)))
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return Claimed([], pauses)
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
    histories = invoice_histories(conn, {(row.order_id, row.invoice_number) for row in rows})
    jobs = [
        DeliveryJob(
            id=row.id,
            order_id=row.order_id,
            invoice_number=row.invoice_number,
            account=row.account,
            queued_at=row.queued_at,
            attempt_count=row.attempt_count,
            tracking_numbers=tuple(sorted(by_invoice.get((row.order_id, row.invoice_number), []))),
            carriers=tuple(sorted(carriers.get((row.order_id, row.invoice_number), ()))),
            history=histories[(row.order_id, row.invoice_number)],
        )
        for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.id))
    ]
    return Claimed(jobs, pauses)


def _invoice_rows(invoices: Iterable[Invoice]) -> list[dict[str, str]]:
    return [{"order_id": order, "invoice_number": number} for order, number in invoices]


def invoice_histories(conn: Connection, invoices: set[Invoice]) -> dict[Invoice, InvoiceHistory]:
    """Every event of every shipment registered to each invoice, oldest first; and how its
    VTEX package was checked (two queries, whatever the number of invoices)."""
    rows = _invoice_rows(invoices)
    events: dict[Invoice, list[tuple[int, TrackingEvent]]] = {invoice: [] for invoice in invoices}
    for order, number, event_id, occurred_at, status, code, description, city, state in SQL.run_set(
        conn, "histories", rows
    ):
        events[(order, number)].append(
            (
                event_id,
                TrackingEvent(
                    occurred_at=read_time(occurred_at),
                    status=Status(status),
                    carrier_status=code,
                    description=description,
                    city=city,
                    state=state,
                ),
            )
        )
    checked = {
        (order, number): by for order, number, by in SQL.run_set(conn, "invoices_checked", rows)
    }
    return {
        invoice: InvoiceHistory(
            events=tuple(event for _, event in held),
            event_ids=tuple(event_id for event_id, _ in held),
            checked_by=checked.get(invoice),
        )
        for invoice, held in events.items()
    }


def invoice_history(conn: Connection, order_id: str, invoice_number: str) -> InvoiceHistory:
    """Every event of every shipment registered to the invoice, oldest first."""
    return invoice_histories(conn, {(order_id, invoice_number)})[(order_id, invoice_number)]


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
    invoice_checked_by: str | None = None
    """The check before the first PUT passed, shown by this (see ``CHECKED_BY``)."""


@dataclass(frozen=True)
class AttemptToRecord:
    job: DeliveryJob
    attempt: AttemptRecord
    outcome: Outcome
    now: datetime


def record_attempts(
    conn: Connection, recorded: list[AttemptToRecord], coalesce: timedelta
) -> list[None]:
    """Store a commit group's attempts and their deliveries' new states, releasing the claims
    (a fixed number of statements, whatever the group's size).

    When a delivery succeeds and the invoice has an event the body lacked, the next
    delivery is queued in the same transaction. The check is by id set, not "newest id":
    with several replicas a lower id can commit after a higher one (and an ingest that
    joined this delivery holds its row lock until it commits, so the UPDATE below waits for
    it and the check after it sees its events).
    """
    dialect = conn.dialect.name
    SQL.run_set(conn, "add_attempts", [_attempt_row(r, dialect) for r in recorded])
    SQL.run_set(conn, "attempted", [_delivery_row(r, dialect) for r in recorded])
    pauses: dict[str, datetime] = {}
    for r in recorded:
        until = r.outcome.pause_account_until
        if until is not None:
            account = r.job.account or ""
            pauses[account] = max(pauses.get(account, until), until)
    for account, until in pauses.items():
        pause_account(conn, account, until)
    checks = [
        _check_row(
            r.job.order_id, r.job.invoice_number, r.outcome.invoice_checked_by, r.now, dialect
        )
        for r in recorded
        if r.outcome.invoice_checked_by is not None
    ]
    SQL.run_set(conn, "check_invoices", checks)
    delivered = [r for r in recorded if r.outcome.state == "delivered"]
    if delivered:
        held: dict[Invoice, set[int]] = {}
        invoices = {(r.job.order_id, r.job.invoice_number) for r in delivered}
        for order, number, event_id in SQL.run_set(conn, "events_held", _invoice_rows(invoices)):
            held.setdefault((order, number), set()).add(event_id)
        behind = [
            QueueRequest(
                r.job.order_id, r.job.invoice_number, r.job.account, r.now, r.now + coalesce
            )
            for r in delivered
            if held.get((r.job.order_id, r.job.invoice_number), set())
            - set(r.outcome.covered_event_ids)
        ]
        queue(conn, behind)
    return [None] * len(recorded)


def _attempt_row(r: AttemptToRecord, dialect: str) -> dict[str, Any]:
    return {
        "delivery_id": r.job.id,
        "attempt": r.job.attempt_count + 1,
        "started_at": stored_time(r.attempt.started_at, dialect),
        "duration_ms": r.attempt.duration_ms,
        "status_code": r.attempt.status_code,
        "response_body": first_bytes(r.attempt.response_body, RESPONSE_KEEP_BYTES),
        "error": r.attempt.error,
    }


def _delivery_row(r: AttemptToRecord, dialect: str) -> dict[str, Any]:
    outcome = r.outcome
    delivered = outcome.state == "delivered"
    receipt = outcome.receipt if delivered and outcome.receipt is not None else {}
    body = outcome.body
    return {
        "delivery_id": r.job.id,
        "state": outcome.state,
        "attempt": r.job.attempt_count + 1,
        "status_code": r.attempt.status_code,
        "error": r.attempt.error,
        "body": json.dumps(body, ensure_ascii=False) if body is not None else None,
        "covered_event_id": max(outcome.covered_event_ids, default=None),
        "next_attempt_at": (
            None
            if outcome.next_attempt_at is None
            else stored_time(outcome.next_attempt_at, dialect)
        ),
        "delivered_at": stored_time(r.now, dialect) if delivered else None,
        "receipt": str(receipt.get("receipt") or "") or None,
        "vtex_date": str(receipt.get("date") or "") or None,
    }


def note_invoice_checked(
    conn: Connection, order_id: str, invoice_number: str, checked_by: str, now: datetime
) -> None:
    """Remember that the invoice's VTEX package carries its tracking number (the first
    note stays)."""
    row = _check_row(order_id, invoice_number, checked_by, now, conn.dialect.name)
    SQL.run_set(conn, "check_invoices", [row])


def _check_row(
    order_id: str, invoice_number: str, checked_by: str, now: datetime, dialect: str
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "invoice_number": invoice_number,
        "at": stored_time(now, dialect),
        "patched": checked_by == "partial invoice PATCH",
        "checked_by": checked_by,
    }


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

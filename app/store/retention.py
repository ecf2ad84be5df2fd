"""Retention (SPEC §11): what is older than ``RELAY_RETENTION`` goes, a small batch per
transaction (SQLAlchemy Core; nothing here is on a hot path).

- An invoice whose newest delivery was delivered before the cutoff and none of whose
  events was received since goes with its shipments, aliases, events, deliveries, attempts
  and invoice check; its tracking numbers and aliases are kept as tombstones, so that a
  carrier resending old webhooks gets 202 and VTEX no partial history.
- Unregistered shipments (unmatched events) whose newest event is older go likewise,
  without a tombstone: VTEX never had them.
- A webhook goes once it is older and no kept event came from it; quarantined webhooks,
  per-minute counts and tombstones once older; console sessions once expired.

Each batch function takes a :class:`Cursor` (where the last batch stopped, and in a dry run
what earlier rolled-back batches removed) and returns what it removed, so that a dry run,
whose batches are each rolled back, counts what a real run then removes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, delete, exists, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Row

from app.store.schema import (
    attempts,
    console_sessions,
    deliveries,
    events,
    insert_into,
    invoice_checks,
    minute_counts,
    pruned_shipments,
    shipment_aliases,
    shipments,
    webhooks,
)

KEPT_WEBHOOK_STATES = ("accepted", "replayed")


@dataclass
class PruneReport:
    """Rows removed (or, in a dry run, that would be), by kind."""

    invoices: int = 0
    shipments: int = 0
    aliases: int = 0
    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    webhooks: int = 0
    quarantined: int = 0
    minute_counts: int = 0
    tombstones: int = 0
    sessions: int = 0

    def add(self, other: PruneReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Cursor:
    """Where a prune run stands: per kind, the key its last batch stopped at; and, in a dry
    run, per webhook, how many of its events earlier (rolled back) batches removed."""

    cutoff: datetime
    now: datetime
    after_delivery: int = 0
    after_number: str = ""
    after_webhook: tuple[datetime, str] | None = None
    after_quarantined: tuple[datetime, str] | None = None
    gone_events: Counter[str] = field(default_factory=Counter)
    dry_run: bool = False


@dataclass(frozen=True)
class Batch:
    report: PruneReport
    more: bool
    """Whether this kind may have more to remove (the batch was full)."""


def prune_invoices(conn: Connection, cursor: Cursor, limit: int) -> Batch:
    """Up to ``limit`` delivered invoices older than the cutoff, with everything of them."""
    newer = deliveries.alias("newer")
    recent = (
        select(events.c.id)
        .select_from(
            shipments.join(events, events.c.tracking_number == shipments.c.tracking_number)
        )
        .where(shipments.c.order_id == deliveries.c.order_id)
        .where(shipments.c.invoice_number == deliveries.c.invoice_number)
        .where(events.c.received_at >= cursor.cutoff)
    )
    rows = conn.execute(
        select(deliveries.c.id, deliveries.c.order_id, deliveries.c.invoice_number)
        .where(deliveries.c.state == "delivered")
        .where(deliveries.c.id > cursor.after_delivery)
        .where(deliveries.c.delivered_at < cursor.cutoff)
        .where(
            ~exists()
            .where(newer.c.order_id == deliveries.c.order_id)
            .where(newer.c.invoice_number == deliveries.c.invoice_number)
            .where(newer.c.id > deliveries.c.id)
        )
        .where(~recent.exists())
        .order_by(deliveries.c.id)
        .limit(limit)
    ).all()
    if not rows:
        return Batch(PruneReport(), more=False)
    cursor.after_delivery = rows[-1].id
    invoices = {(row.order_id, row.invoice_number) for row in rows}
    owner = {
        row.tracking_number: (row.order_id, row.invoice_number)
        for row in _invoice_rows(conn, shipments, invoices, shipments.c.tracking_number)
    }
    numbers = sorted(owner)
    tombstones = dict(owner)
    for alias, number in conn.execute(
        select(shipment_aliases.c.alias, shipment_aliases.c.tracking_number).where(
            shipment_aliases.c.tracking_number.in_(numbers)
        )
    ):
        tombstones.setdefault(alias, owner[number])
    report = PruneReport(invoices=len(invoices))
    delivery_ids = [row.id for row in _invoice_rows(conn, deliveries, invoices, deliveries.c.id)]
    report.attempts = _count(
        conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(delivery_ids)))
    )
    report.deliveries = _count(
        conn.execute(delete(deliveries).where(deliveries.c.id.in_(delivery_ids)))
    )
    checked = [
        (row.order_id, row.invoice_number) for row in _invoice_rows(conn, invoice_checks, invoices)
    ]
    if checked:
        conn.execute(
            delete(invoice_checks).where(
                or_(
                    *(
                        and_(
                            invoice_checks.c.order_id == order_id,
                            invoice_checks.c.invoice_number == invoice_number,
                        )
                        for order_id, invoice_number in checked
                    )
                )
            )
        )
    _remove_shipments(conn, cursor, numbers, report)
    if tombstones:
        conn.execute(
            insert_into(conn, pruned_shipments).on_conflict_do_nothing(),
            [
                {
                    "tracking_number": key,
                    "order_id": order_id,
                    "invoice_number": invoice_number,
                    "pruned_at": cursor.now,
                }
                for key, (order_id, invoice_number) in sorted(tombstones.items())
            ],
        )
    return Batch(report, more=len(rows) == limit)


def _invoice_rows(
    conn: Connection, table: Table, invoices: set[tuple[str, str]], *columns: Any
) -> list[Row[Any]]:
    """``table``'s rows (``order_id``, ``invoice_number`` and ``columns``) of ``invoices``.

    They are found by the order's index and kept by invoice here: SQLite plans
    ``(order_id, invoice_number) IN (VALUES …)`` as a scan of the whole table, 20-25 ms a
    batch on 100,000 invoices (bench/PRUNE.md)."""
    orders = sorted({order_id for order_id, _ in invoices})
    query = select(table.c.order_id, table.c.invoice_number, *columns).where(
        table.c.order_id.in_(orders)
    )
    return [row for row in conn.execute(query) if (row.order_id, row.invoice_number) in invoices]


def prune_unmatched(conn: Connection, cursor: Cursor, limit: int) -> Batch:
    """Up to ``limit`` unregistered shipments first seen and last heard of before the
    cutoff, with their events and aliases (SPEC §11 "unmatched events")."""
    numbers = list(
        conn.scalars(
            select(shipments.c.tracking_number)
            .where(shipments.c.order_id.is_(None))
            .where(shipments.c.tracking_number > cursor.after_number)
            .where(shipments.c.first_seen_at < cursor.cutoff)
            .where(
                ~exists()
                .where(events.c.tracking_number == shipments.c.tracking_number)
                .where(events.c.received_at >= cursor.cutoff)
            )
            .order_by(shipments.c.tracking_number)
            .limit(limit)
        )
    )
    if not numbers:
        return Batch(PruneReport(), more=False)
    cursor.after_number = numbers[-1]
    report = PruneReport()
    _remove_shipments(conn, cursor, numbers, report)
    return Batch(report, more=len(numbers) == limit)


def _remove_shipments(
    conn: Connection, cursor: Cursor, numbers: Sequence[str], report: PruneReport
) -> None:
    """The shipments, their aliases and events; then the webhooks no kept event came from."""
    reporters = Counter(
        {
            webhook_id: count
            for webhook_id, count in conn.execute(
                select(events.c.webhook_id, func.count())
                .where(events.c.tracking_number.in_(numbers))
                .group_by(events.c.webhook_id)
            )
        }
    )
    report.events += _count(
        conn.execute(delete(events).where(events.c.tracking_number.in_(numbers)))
    )
    report.aliases += _count(
        conn.execute(
            delete(shipment_aliases).where(shipment_aliases.c.tracking_number.in_(numbers))
        )
    )
    report.shipments += _count(
        conn.execute(delete(shipments).where(shipments.c.tracking_number.in_(numbers)))
    )
    if not reporters:
        return
    still: dict[str, int] = {
        webhook_id: int(count)
        for webhook_id, count in conn.execute(
            select(events.c.webhook_id, func.count())
            .where(events.c.webhook_id.in_(list(reporters)))
            .group_by(events.c.webhook_id)
        )
    }
    emptied = []
    for webhook_id, removed in reporters.items():
        left = still.get(webhook_id, 0) - cursor.gone_events.get(webhook_id, 0)
        if left <= 0:
            emptied.append(webhook_id)
            cursor.gone_events.pop(webhook_id, None)
        elif cursor.dry_run:
            cursor.gone_events[webhook_id] += removed
    if emptied:
        report.webhooks += _count(
            conn.execute(
                delete(webhooks)
                .where(webhooks.c.id.in_(emptied))
                .where(webhooks.c.state.in_(KEPT_WEBHOOK_STATES))
                .where(webhooks.c.received_at < cursor.cutoff)
            )
        )


def prune_silent_webhooks(conn: Connection, cursor: Cursor, limit: int) -> Batch:
    """Of the next ``limit`` webhooks received before the cutoff, those no event came from
    (all duplicates, or none): nothing refers to them."""
    key = (webhooks.c.received_at, webhooks.c.id)
    query = (
        select(
            webhooks.c.id,
            webhooks.c.received_at,
            exists().where(events.c.webhook_id == webhooks.c.id).label("reported"),
        )
        .where(webhooks.c.state.in_(KEPT_WEBHOOK_STATES))
        .where(webhooks.c.received_at < cursor.cutoff)
        .order_by(*key)
        .limit(limit)
    )
    if cursor.after_webhook is not None:
        query = query.where(tuple_(*key) > tuple_(*cursor.after_webhook))
    rows = conn.execute(query).all()
    if not rows:
        return Batch(PruneReport(), more=False)
    cursor.after_webhook = (rows[-1].received_at, rows[-1].id)
    silent = [row.id for row in rows if not row.reported]
    report = PruneReport()
    if silent:
        report.webhooks = _count(conn.execute(delete(webhooks).where(webhooks.c.id.in_(silent))))
    return Batch(report, more=len(rows) == limit)


def prune_quarantined(conn: Connection, cursor: Cursor, limit: int) -> Batch:
    """Up to ``limit`` quarantined webhooks received before the cutoff."""
    key = (webhooks.c.received_at, webhooks.c.id)
    query = (
        select(*key)
        .where(webhooks.c.state == "quarantined")
        .where(webhooks.c.received_at < cursor.cutoff)
        .order_by(*key)
        .limit(limit)
    )
    if cursor.after_quarantined is not None:
        query = query.where(tuple_(*key) > tuple_(*cursor.after_quarantined))
    rows = conn.execute(query).all()
    if not rows:
        return Batch(PruneReport(), more=False)
    cursor.after_quarantined = (rows[-1].received_at, rows[-1].id)
    ids = [row.id for row in rows]
    removed = _count(conn.execute(delete(webhooks).where(webhooks.c.id.in_(ids))))
    return Batch(PruneReport(quarantined=removed), more=len(rows) == limit)


def prune_small_rows(conn: Connection, cursor: Cursor) -> PruneReport:
    """Per-minute counts and tombstones older than the cutoff, expired console sessions
    (a few rows an hour: one statement each)."""
    return PruneReport(
        minute_counts=_count(
            conn.execute(delete(minute_counts).where(minute_counts.c.minute < cursor.cutoff))
        ),
        tombstones=_count(
            conn.execute(
                delete(pruned_shipments).where(pruned_shipments.c.pruned_at < cursor.cutoff)
            )
        ),
        sessions=_count(
            conn.execute(delete(console_sessions).where(console_sessions.c.expires_at < cursor.now))
        ),
    )


def free_pages(conn: Connection, pages: int, budget: float) -> int:
    """SQLite: give up to ``pages`` free pages back to the file system (incremental vacuum,
    one page a step, in this write transaction), stopping after ``budget`` seconds (a page
    that moves a full one from the file's end costs far more than one that does not); how
    many free pages are left. Files created before retention existed have no incremental
    vacuum: their free pages are reused instead, and this returns 0."""
    if conn.dialect.name != "sqlite":
        return 0
    if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:
        return 0
    free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)
    stop_at = time.monotonic() + budget
    for _ in range(min(free, pages)):
        # Python's driver steps a pragma once: each call frees one page.
        conn.exec_driver_sql("PRAGMA incremental_vacuum(1)")
        if time.monotonic() >= stop_at:
            break
    return int(conn.exec_driver_sql("PRAGMA freelist_count").scalar() or 0)


def database_bytes(conn: Connection) -> int:
    """The database's size on disk (SQLite: the file's pages in use and free; PostgreSQL:
    the current database)."""
    if conn.dialect.name == "sqlite":
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
        page_count = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
        return int(page_size) * int(page_count)
    return int(conn.scalar(select(func.pg_database_size(func.current_database()))) or 0)


def _count(result: Any) -> int:
    return max(int(result.rowcount or 0), 0)

"""The console's SQL (SPEC §10): its sessions, the per-minute counts, search, and the
Deliveries and Quarantine pages' filtered, keyset-paginated lists and bulk retry.

Every list reads at most a page and one row more (to know there is a next page); counts are
one ``count(*)`` over an index where the filter allows it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, true, tuple_, update
from sqlalchemy.engine import Connection

from app.console.tally import MinuteCount
from app.store import reads, retention
from app.store.deliveries import notify_work
from app.store.records import OPEN_STATES, QueueSnapshot, ShipmentView
from app.store.schema import (
    console_sessions,
    deliveries,
    insert_into,
    meta,
    minute_counts,
    read_time,
    shipment_aliases,
    shipments,
    webhooks,
)

BODY_SHOWN_BYTES = 16_384
"""How much of a quarantined webhook's body a page shows."""


# -- sessions ----------------------------------------------------------------


SIGNING_SECRET_ROW = "console_signing_secret"  # noqa: S105 (the row's name, not a secret)


def signing_secret(conn: Connection) -> str:
    """The console's signing secret (hex) kept in ``relay_meta``, made on first use."""
    conn.execute(
        insert_into(conn, meta).on_conflict_do_nothing(),
        {"key": SIGNING_SECRET_ROW, "value": secrets.token_hex(32)},
    )
    return str(conn.scalar(select(meta.c.value).where(meta.c.key == SIGNING_SECRET_ROW)))


def start_session(
    conn: Connection, id_hash: str, role: str, now: datetime, expires_at: datetime
) -> None:
    """Keep a new session (and forget the expired ones)."""
    conn.execute(console_sessions.delete().where(console_sessions.c.expires_at <= now))
    conn.execute(
        console_sessions.insert().values(
            id_hash=id_hash, role=role, created_at=now, expires_at=expires_at
        )
    )


def session_role(conn: Connection, id_hash: str, now: datetime) -> str | None:
    """The role of a live session; None once it expired or was ended."""
    role: str | None = conn.scalar(
        select(console_sessions.c.role)
        .where(console_sessions.c.id_hash == id_hash)
        .where(console_sessions.c.expires_at > now)
    )
    return role


def end_session(conn: Connection, id_hash: str) -> None:
    conn.execute(console_sessions.delete().where(console_sessions.c.id_hash == id_hash))


# -- per-minute counts -----------------------------------------------------------


def add_counts(conn: Connection, counts: list[MinuteCount]) -> None:
    """Add a relay's tally to the minutes' rows (one row per scope, name, outcome, minute)."""
    if not counts:
        return
    statement = insert_into(conn, minute_counts)
    newest = func.greatest if conn.dialect.name == "postgresql" else func.max
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["scope", "name", "outcome", "minute"],
            set_={
                "count": minute_counts.c.count + statement.excluded.count,
                "last_at": newest(minute_counts.c.last_at, statement.excluded.last_at),
            },
        ),
        [
            {
                "scope": c.scope,
                "name": c.name,
                "outcome": c.outcome,
                "minute": c.minute,
                "count": c.count,
                "last_at": c.last_at,
            }
            for c in counts
        ],
    )


@dataclass(frozen=True)
class CountTotal:
    name: str
    outcome: str
    count: int
    last_at: datetime


def count_totals(conn: Connection, scope: str, since: datetime | None) -> list[CountTotal]:
    """Per name and outcome of ``scope``: the count since ``since`` (all kept, if None) and
    the newest occurrence."""
    c = minute_counts.c
    query = (
        select(c.name, c.outcome, func.sum(c.count), func.max(c.last_at))
        .where(c.scope == scope)
        .group_by(c.name, c.outcome)
    )
    if since is not None:
        query = query.where(c.minute >= since)
    return [
        CountTotal(name, outcome, int(total), read_time(last_at))
        for name, outcome, total, last_at in conn.execute(query).all()
    ]


def per_minute(
    conn: Connection, scope: str, outcomes: tuple[str, ...], since: datetime
) -> dict[datetime, int]:
    """Counts of ``scope`` with one of ``outcomes``, summed over names, by minute."""
    c = minute_counts.c
    rows = conn.execute(
        select(c.minute, func.sum(c.count))
        .where(c.minute >= since)
        .where(c.scope == scope)
        .where(c.outcome.in_(outcomes))
        .group_by(c.minute)
    ).all()
    return {read_time(minute): int(total) for minute, total in rows}


# -- search ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentHit:
    tracking_number: str
    order_id: str | None
    invoice_number: str | None
    carrier: str | None
    found_as: str  # "tracking number", "alias", "orderId", "invoice number"


@dataclass(frozen=True)
class SearchResult:
    shipments: list[ShipmentHit]
    webhook_id: str | None


SEARCH_LIMIT = 25


def search(conn: Connection, text: str) -> SearchResult:
    """Shipments by tracking number, alias, orderId or invoice number; a webhook by id."""
    s = shipments.c
    columns = (s.tracking_number, s.order_id, s.invoice_number, s.carrier)
    aliased = select(shipment_aliases.c.tracking_number).where(shipment_aliases.c.alias == text)
    found: dict[str, ShipmentHit] = {}
    for found_as, condition in (
        ("tracking number", s.tracking_number == text),
        ("alias", s.tracking_number.in_(aliased)),
        ("orderId", s.order_id == text),
        ("invoice number", s.invoice_number == text),
    ):
        for row in conn.execute(
            select(*columns).where(condition).order_by(s.tracking_number).limit(SEARCH_LIMIT)
        ).all():
            found.setdefault(row.tracking_number, ShipmentHit(*row, found_as=found_as))
    webhook = conn.scalar(select(webhooks.c.id).where(webhooks.c.id == text))
    return SearchResult(list(found.values())[:SEARCH_LIMIT], webhook)


def aliases_of(conn: Connection, tracking_number: str) -> list[str]:
    """Other numbers of the same shipment: its aliases, and the key it is an alias of."""
    a = shipment_aliases.c
    rows = conn.execute(
        select(a.alias, a.tracking_number).where(
            or_(a.tracking_number == tracking_number, a.alias == tracking_number)
        )
    ).all()
    names = {alias if key == tracking_number else key for alias, key in rows}
    names.discard(tracking_number)
    return sorted(names)


@dataclass(frozen=True)
class WebhookView:
    id: str
    carrier: str
    received_at: datetime
    state: str
    error: str | None
    new_events: int
    duplicate_events: int
    body: bytes
    size: int


def webhook(conn: Connection, webhook_id: str) -> WebhookView | None:
    row = conn.execute(select(*_WEBHOOK_COLUMNS).where(webhooks.c.id == webhook_id)).first()
    return None if row is None else _webhook_view(row)


_WEBHOOK_COLUMNS = (
    webhooks.c.id,
    webhooks.c.carrier,
    webhooks.c.received_at,
    webhooks.c.state,
    webhooks.c.error,
    webhooks.c.new_events,
    webhooks.c.duplicate_events,
    func.substr(webhooks.c.body, 1, BODY_SHOWN_BYTES),
    func.length(webhooks.c.body),
)
"""A webhook as the console shows it: its body cut to :data:`BODY_SHOWN_BYTES`, and its size."""


def _webhook_view(row: Any) -> WebhookView:
    webhook_id, carrier, received_at, state, error, new_events, duplicates, body, size = row
    return WebhookView(
        webhook_id, carrier, received_at, state, error, new_events, duplicates, bytes(body), size
    )


# -- deliveries --------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryFilter:
    state: str | None = None
    account: str | None = None
    account_is_default: bool = False
    """The account is the default one: deliveries that name no account match it too."""
    carrier: str | None = None
    status_code: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    order_id: str
    invoice_number: str
    account: str | None
    state: str
    queued_at: datetime
    attempt_count: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    carriers: tuple[str, ...]
    tracking_numbers: tuple[str, ...]
    """The invoice's shipments."""


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]
    total: int
    next_before: int | None
    """The keyset of the next page: ids below this one; None on the last page."""


def _matching(f: DeliveryFilter) -> Any:
    d = deliveries.c
    conditions = []
    if f.state is not None:
        conditions.append(d.state == f.state)
    if f.account is not None:
        named = d.account == f.account
        conditions.append(or_(named, d.account.is_(None)) if f.account_is_default else named)
    if f.carrier is not None:
        conditions.append(
            exists()
            .where(shipments.c.order_id == d.order_id)
            .where(shipments.c.invoice_number == d.invoice_number)
            .where(shipments.c.carrier == f.carrier)
        )
    if f.status_code is not None:
        conditions.append(d.last_status == f.status_code)
    if f.since is not None:
        conditions.append(d.queued_at >= f.since)
    if f.until is not None:
        conditions.append(d.queued_at < f.until)
    return and_(*conditions) if conditions else true()


def deliveries_page(
    conn: Connection, f: DeliveryFilter, before: int | None, limit: int
) -> DeliveryPage:
    """Matching deliveries, newest first, below the ``before`` id; and how many match."""
    d = deliveries.c
    query = (
        select(
            d.id,
            d.order_id,
            d.invoice_number,
            d.account,
            d.state,
            d.queued_at,
            d.attempt_count,
            d.last_status,
            d.last_error,
            d.delivered_at,
        )
        .where(_matching(f))
        .order_by(d.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(d.id < before)
    rows = conn.execute(query).all()
    total = conn.scalar(select(func.count()).select_from(deliveries).where(_matching(f)))
    shown = rows[:limit]
    carriers: dict[tuple[str, str], set[str]] = {}
    numbers: dict[tuple[str, str], set[str]] = {}
    if shown:
        s = shipments.c
        for order_id, invoice_number, carrier, number in conn.execute(
            select(s.order_id, s.invoice_number, s.carrier, s.tracking_number).where(
                tuple_(s.order_id, s.invoice_number).in_(
                    {(row.order_id, row.invoice_number) for row in shown}
                )
            )
        ).all():
            numbers.setdefault((order_id, invoice_number), set()).add(number)
            if carrier:
                carriers.setdefault((order_id, invoice_number), set()).add(carrier)
    return DeliveryPage(
        [
            DeliveryRow(
                **row._mapping,
                carriers=tuple(sorted(carriers.get((row.order_id, row.invoice_number), ()))),
                tracking_numbers=tuple(sorted(numbers.get((row.order_id, row.invoice_number), ()))),
            )
            for row in shown
        ],
        int(total or 0),
        shown[-1].id if len(rows) > limit else None,
    )


def count_deliveries(conn: Connection, f: DeliveryFilter) -> int:
    return int(conn.scalar(select(func.count()).select_from(deliveries).where(_matching(f))) or 0)


def retry_all(conn: Connection, f: DeliveryFilter, now: datetime) -> int:
    """Put every dead delivery matching ``f`` back in line now, with a fresh age; return how
    many dead deliveries matched (as the confirmation counted them): each one's invoice is
    then sent again. An invoice that already has an open delivery is sent by that one (made
    due now); of several dead ones of an invoice, the newest is put back, carrying the
    invoice's whole history (the others stay dead: they would send the same)."""
    d = deliveries.c
    dead = DeliveryFilter(**{**f.__dict__, "state": "dead"})
    matched = count_deliveries(conn, dead)
    open_one = deliveries.alias("open_delivery")
    has_open = (
        exists()
        .where(open_one.c.order_id == d.order_id)
        .where(open_one.c.invoice_number == d.invoice_number)
        .where(open_one.c.state.in_(OPEN_STATES))
    )
    newest_dead = (
        select(func.max(d.id))
        .where(_matching(dead))
        .where(~has_open)
        .group_by(d.order_id, d.invoice_number)
    )
    reopened = conn.execute(
        update(deliveries)
        .where(d.id.in_(newest_dead.scalar_subquery()))
        .values(state="pending", queued_at=now, next_attempt_at=now, claimed_until=None)
    ).rowcount
    dead_with_open = select(d.order_id, d.invoice_number).where(_matching(dead)).where(has_open)
    hurried = conn.execute(
        update(deliveries)
        .where(d.state.in_(OPEN_STATES))
        .where(tuple_(d.order_id, d.invoice_number).in_(dead_with_open))
        .values(next_attempt_at=now)
    ).rowcount
    if conn.dialect.name == "postgresql" and reopened + hurried:
        notify_work(conn)
    return matched


# -- quarantine ----------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantinePage:
    webhooks: list[WebhookView]
    total: int
    next_after: str | None
    """The id of the last webhook shown when there are more after it."""


def quarantine_page(
    conn: Connection, carrier: str | None, after: str | None, limit: int
) -> QuarantinePage:
    """Quarantined webhooks oldest first, after the ``after`` webhook; and how many."""
    w = webhooks.c
    condition = w.state == "quarantined"
    if carrier is not None:
        condition = and_(condition, w.carrier == carrier)
    query = (
        select(*_WEBHOOK_COLUMNS).where(condition).order_by(w.received_at, w.id).limit(limit + 1)
    )
    mark = None if after is None else conn.scalar(select(w.received_at).where(w.id == after))
    if mark is not None:  # an anchor since replayed or discarded: from the first page
        query = query.where(or_(w.received_at > mark, and_(w.received_at == mark, w.id > after)))
    rows = conn.execute(query).all()
    total = conn.scalar(select(func.count()).select_from(webhooks).where(condition))
    shown = [_webhook_view(row) for row in rows[:limit]]
    return QuarantinePage(
        shown, int(total or 0), shown[-1].id if len(rows) > limit and shown else None
    )


# -- pages made of several reads ------------------------------------------------------


@dataclass(frozen=True)
class OverviewFacts:
    queue: QueueSnapshot
    paused: dict[str, datetime]
    webhooks_per_minute: dict[datetime, int]
    deliveries_per_minute: dict[datetime, int]
    carriers_today: list[CountTotal]
    """Per carrier and outcome over the last 24 h."""
    last_accepted: dict[str, datetime]
    """Per carrier, the last webhook accepted (as long as the counts are kept)."""
    latency_buckets: dict[str, int]
    """Deliveries of the last 24 h by latency bucket (its upper bound in seconds)."""
    database_bytes: int


def overview(conn: Connection, now: datetime, since: datetime) -> OverviewFacts:
    carriers_ever = count_totals(conn, "carrier", None)
    return OverviewFacts(
        queue=reads.queue_snapshot(conn, now),
        paused=reads.paused_accounts(conn, now),
        webhooks_per_minute=per_minute(conn, "carrier", ("accepted",), since),
        deliveries_per_minute=per_minute(conn, "account", ("delivered",), since),
        carriers_today=count_totals(conn, "carrier", since),
        last_accepted={t.name: t.last_at for t in carriers_ever if t.outcome == "accepted"},
        latency_buckets={t.name: t.count for t in count_totals(conn, "latency", since)},
        database_bytes=retention.database_bytes(conn),
    )


@dataclass(frozen=True)
class AccountFacts:
    paused: dict[str, datetime]
    today: list[CountTotal]
    """Per account and outcome over the last 24 h."""
    ever: list[CountTotal]
    """Per account and outcome, as long as the counts are kept (the last 401/403)."""


def accounts(conn: Connection, now: datetime, since: datetime) -> AccountFacts:
    return AccountFacts(
        paused=reads.paused_accounts(conn, now),
        today=count_totals(conn, "account", since),
        ever=count_totals(conn, "account", None),
    )


@dataclass(frozen=True)
class ShipmentPage:
    shipment: ShipmentView
    aliases: list[str]


def shipment_page(conn: Connection, tracking_number: str) -> ShipmentPage | None:
    view = reads.shipment(conn, tracking_number)
    return None if view is None else ShipmentPage(view, aliases_of(conn, tracking_number))

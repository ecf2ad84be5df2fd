"""Every query the relay makes, behind one async :class:`Store`.

Each public method is written as plain synchronous SQLAlchemy Core against a
``Connection``; ``@_writes`` runs it in a write transaction on the store's writer thread
(grouped with other writes into one commit), ``@_reads`` on a reader thread. Times are
converted to UTC at this edge (see ``schema.UTCDateTime``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from app.normalize.model import ShipmentUpdate, Status, TrackingEvent, event_identity
from app.store.engine import WORK_CHANNEL, Database
from app.store.schema import (
    SCHEMA_VERSION,
    account_pauses,
    attempts,
    deliveries,
    events,
    meta,
    metadata,
    order_notifications,
    shipment_aliases,
    shipments,
    webhooks,
)

P = ParamSpec("P")
R = TypeVar("R")

OPEN_STATES = ("pending", "retrying")
RESPONSE_KEEP_BYTES = 2048
MIGRATION_LOCK = 7_441_226_100  # any constant, the same in every relay


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer relay than this one."""


class NotRetriable(Exception):
    """The delivery was delivered: there is nothing to retry."""


@dataclass(frozen=True)
class QuarantinedWebhook:
    id: str
    carrier: str
    received_at: datetime
    body: bytes
    error: str | None


@dataclass(frozen=True)
class IngestResult:
    webhook_id: str
    new_events: int
    duplicate_events: int
    deliveries_queued: int
    invoices: tuple[tuple[str | None, str | None], ...] = ()
    """Per update, the (orderId, invoiceNumber) its shipment is registered to, if any."""


@dataclass(frozen=True)
class QueueSnapshot:
    """The delivery queue as the database holds it, for the metrics' gauges."""

    backlog: int
    oldest_pending_age_seconds: float
    dead: int
    quarantined: int


@dataclass(frozen=True)
class Registration:
    created: bool
    deliveries_queued: int


@dataclass(frozen=True)
class DeliveryJob:
    """A claimed delivery: the worker owns it until it records the attempt."""

    id: int
    order_id: str
    invoice_number: str
    account: str | None
    queued_at: datetime
    attempt_count: int
    tracking_numbers: tuple[str, ...]
    carriers: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class InvoiceHistory:
    events: tuple[TrackingEvent, ...]
    event_ids: tuple[int, ...]
    checked: bool = False
    """The invoice's VTEX package was seen with its tracking number (SPEC §2)."""


@dataclass(frozen=True)
class InvoiceShipment:
    """A shipment registered to an invoice, for the PATCH that gives VTEX its number."""

    tracking_number: str
    tracking_url: str | None
    carrier: str | None
    stands_for_another: bool
    """Registered under an alias (Melhor Envio's carrier code): the number VTEX knows."""


@dataclass(frozen=True)
class OrderNotification:
    order_id: str
    account: str | None
    received_at: datetime
    attempts: int


@dataclass(frozen=True)
class ActiveInvoice:
    order_id: str
    invoice_number: str
    account: str | None


@dataclass
class DeliveryView:
    id: int
    order_id: str
    invoice_number: str
    account: str | None
    state: str
    queued_at: datetime
    next_attempt_at: datetime | None
    attempt_count: int
    last_status: int | None
    last_error: str | None
    receipt: dict[str, Any] | None
    delivered_at: datetime | None
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ShipmentView:
    tracking_number: str
    carrier: str | None
    tracking_url: str | None
    order_id: str | None
    invoice_number: str | None
    account: str | None
    registered: bool
    first_seen_at: datetime
    events: list[dict[str, Any]]
    last_body: dict[str, Any] | None
    deliveries: list[DeliveryView]


def _new_webhook_id() -> str:
    return "wh_" + uuid.uuid4().hex


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    return _dialect_insert(conn.dialect.name, table)


def _dialect_insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


@functools.cache
def _ignoring_conflicts_for(dialect: str, table: Table) -> Any:
    return _dialect_insert(dialect, table).on_conflict_do_nothing()


def _ignoring_conflicts(conn: Connection, table: Table) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the table, built once per dialect."""
    return _ignoring_conflicts_for(conn.dialect.name, table)


_SHIPMENT = select(shipments).where(shipments.c.tracking_number == bindparam("number"))
_SET_TRACKING_URL = (
    update(shipments)
    .where(shipments.c.tracking_number == bindparam("number"))
    .values(tracking_url=bindparam("url"), updated_at=bindparam("now"))
)


SyncMethod = Callable[Concatenate["Store", Connection, P], R]
AsyncMethod = Callable[Concatenate["Store", P], Coroutine[Any, Any, R]]


def _on_connection(method: SyncMethod[P, R], *, write: bool) -> AsyncMethod[P, R]:
    async def run(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        def work(conn: Connection) -> R:
            return method(self, conn, *args, **kwargs)

        return await (self._db.write(work) if write else self._db.read(work))

    run.__doc__ = method.__doc__
    return run


def _writes(method: SyncMethod[P, R]) -> AsyncMethod[P, R]:
    """The method runs in a write transaction, committed before the caller resumes."""
    return _on_connection(method, write=True)


def _reads(method: SyncMethod[P, R]) -> AsyncMethod[P, R]:
    """The method runs on a reader connection."""
    return _on_connection(method, write=False)


class Store:
    """The relay's database; create with :meth:`open`, close with :meth:`close`."""

    def __init__(self, db: Database, coalesce: timedelta = timedelta(0)) -> None:
        self._db = db
        self._coalesce = coalesce

    @classmethod
    def open(cls, url: str, coalesce: timedelta = timedelta(0)) -> Store:
        """``coalesce``: how long a delivery queued by new events waits for more to join it."""
        return cls(Database(url), coalesce)

    def watch_for_work(self, on_work: Callable[[], None]) -> Callable[[], None]:
        """See :meth:`Database.watch_for_work`; returns a function that stops watching."""
        return self._db.watch_for_work(on_work)

    def describe(self) -> str:
        """The database URL without its password, for logs."""
        return self._db.url.render_as_string(hide_password=True)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._db.close)

    # -- schema --------------------------------------------------------------

    @_writes
    def migrate(self, conn: Connection) -> int:
        """Create missing tables; return the schema version. Safe to run repeatedly, and
        from several pods at once (PostgreSQL: they queue on an advisory lock)."""
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        metadata.create_all(conn)
        version = conn.scalar(select(meta.c.value).where(meta.c.key == "schema_version"))
        if version is not None and int(version) > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"database schema is version {version}, this relay knows {SCHEMA_VERSION}"
            )
        if version is None:
            conn.execute(
                _ignoring_conflicts(conn, meta),
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            )
        return SCHEMA_VERSION

    @_reads
    def ping(self, conn: Connection) -> None:
        conn.scalar(select(1))

    @_reads
    def queue_snapshot(self, conn: Connection, now: datetime) -> QueueSnapshot:
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

    # -- ingest --------------------------------------------------------------

    @_writes
    def record_webhook(
        self,
        conn: Connection,
        carrier: str,
        body: bytes,
        updates: Sequence[ShipmentUpdate],
        now: datetime,
    ) -> IngestResult:
        """Store a verified webhook and its new events in one transaction.

        Known events count as duplicates. Shipments the payload registers are
        registered; every invoice that gained events gets a delivery queued.
        """
        result = self._apply_updates(conn, _new_webhook_id(), carrier, updates, now)
        sql = _driver_sql(conn.dialect.name)
        conn.connection.cursor().execute(
            sql.webhook,
            (
                result.webhook_id,
                carrier,
                sql.time(now),
                body,
                result.new_events,
                result.duplicate_events,
            ),
        )
        return result

    def _apply_updates(
        self,
        conn: Connection,
        webhook_id: str,
        carrier: str,
        updates: Sequence[ShipmentUpdate],
        now: datetime,
    ) -> IngestResult:
        """Register, insert new events, count duplicates and queue deliveries for a webhook.

        The ingest hot path: it runs for every webhook on the writer thread, which holds
        the GIL while it works, so it speaks to the driver directly (see ``_DriverSql``).
        """
        sql = _driver_sql(conn.dialect.name)
        cursor = conn.connection.cursor()
        at = sql.time(now)
        new_total = duplicates = queued = 0
        registered_anew: set[str] = set()
        invoices: list[tuple[str | None, str | None]] = []
        for update_ in updates:
            number = update_.tracking_number
            shipment = cursor.execute(sql.shipment, (number,)).fetchone()
            if shipment is None:
                cursor.execute(sql.new_shipment, (number, carrier, update_.tracking_url, at, at))
                order_id = invoice_number = account = None
            else:
                order_id, invoice_number, account, link, known_carrier = shipment
                if update_.tracking_url and link != update_.tracking_url:
                    cursor.execute(sql.tracking_url, (update_.tracking_url, at, number))
                if known_carrier is None:  # registered before its first webhook
                    cursor.execute(sql.carrier, (carrier, number))
            if (
                update_.order_id
                and update_.invoice_number
                and (order_id, invoice_number) != (update_.order_id, update_.invoice_number)
            ):
                if self._register(
                    conn, number, update_.order_id, update_.invoice_number, None, None, now
                ):
                    registered_anew.add(number)
                order_id, invoice_number = update_.order_id, update_.invoice_number
            if update_.aliases:
                known = self._link_aliases(conn, number, update_.aliases)
                if order_id is None and known is not None:
                    order_id, invoice_number, account = known
                    self._register(conn, number, order_id, invoice_number, None, account, now)
                    registered_anew.add(number)
            invoices.append((order_id, invoice_number))
            rows = _event_rows(carrier, number, update_.events, webhook_id, at, sql)
            inserted = 0
            if rows:
                cursor.executemany(sql.event, rows)
                inserted = cursor.rowcount
            new_total += inserted
            duplicates += len(update_.events) - inserted
            if inserted and order_id is not None and invoice_number is not None:
                if sql.is_sqlite:
                    due = sql.time(now + self._coalesce)
                    cursor.execute(sql.delivery, (order_id, invoice_number, account, at, due))
                    queued += cursor.rowcount
                else:  # needs the lock that _queue_delivery takes
                    queued += self._queue_delivery(
                        conn, order_id, invoice_number, account, now, now + self._coalesce
                    )
                registered_anew.discard(number)
        # A registration that moved known events to another invoice queues them too.
        queued += self._queue_for_tracking_numbers(conn, registered_anew, now)
        return IngestResult(webhook_id, new_total, duplicates, queued, tuple(invoices))

    @_writes
    def quarantine_webhook(
        self, conn: Connection, carrier: str, body: bytes, error: str, now: datetime
    ) -> str:
        """Keep a verified webhook its adapter could not read, with the reason."""
        webhook_id = _new_webhook_id()
        conn.execute(
            webhooks.insert().values(
                id=webhook_id,
                carrier=carrier,
                received_at=now,
                body=body,
                state="quarantined",
                error=error,
            )
        )
        return webhook_id

    @_reads
    def quarantined(
        self, conn: Connection, carrier: str | None = None, limit: int = 1000
    ) -> list[QuarantinedWebhook]:
        """Quarantined webhooks, oldest first."""
        query = (
            select(webhooks)
            .where(webhooks.c.state == "quarantined")
            .order_by(webhooks.c.received_at, webhooks.c.id)
            .limit(limit)
        )
        if carrier is not None:
            query = query.where(webhooks.c.carrier == carrier)
        rows = (conn.execute(query)).all()
        return [_quarantined(row) for row in rows]

    @_writes
    def release_from_quarantine(
        self, conn: Connection, webhook_id: str, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult | None:
        """Store what a re-run of a quarantined webhook read; None if it was not quarantined."""
        carrier = conn.scalar(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .where(webhooks.c.state == "quarantined")
            .values(state="replayed", error=None)
            .returning(webhooks.c.carrier)
        )
        if carrier is None:
            return None
        return self._apply_updates(conn, webhook_id, carrier, updates, now)

    @_writes
    def keep_in_quarantine(self, conn: Connection, webhook_id: str, error: str) -> None:
        """Record why a re-run of a quarantined webhook failed again."""
        conn.execute(
            update(webhooks)
            .where(webhooks.c.id == webhook_id)
            .where(webhooks.c.state == "quarantined")
            .values(error=error)
        )

    @_writes
    def discard_quarantined(self, conn: Connection, webhook_id: str) -> QuarantinedWebhook | None:
        """Delete one quarantined webhook and return it; None if no such webhook is
        quarantined (an accepted or replayed webhook is never deleted)."""
        row = conn.execute(
            delete(webhooks)
            .where(webhooks.c.id == webhook_id)
            .where(webhooks.c.state == "quarantined")
            .returning(webhooks)
        ).one_or_none()
        return None if row is None else _quarantined(row)

    @_writes
    def discard_quarantine(self, conn: Connection, carrier: str) -> list[str]:
        """Delete every quarantined webhook of ``carrier``; return their ids."""
        return list(
            conn.scalars(
                delete(webhooks)
                .where(webhooks.c.carrier == carrier)
                .where(webhooks.c.state == "quarantined")
                .returning(webhooks.c.id)
            )
        )

    def _see_shipment(
        self,
        conn: Connection,
        tracking_number: str,
        carrier: str | None,
        tracking_url: str | None,
        now: datetime,
    ) -> Any:
        """The shipment's row, created (unregistered) on first sight; the link kept fresh."""
        row = conn.execute(_SHIPMENT, {"number": tracking_number}).first()
        if row is None:
            conn.execute(
                _ignoring_conflicts(conn, shipments),
                {
                    "tracking_number": tracking_number,
                    "carrier": carrier,
                    "tracking_url": tracking_url,
                    "first_seen_at": now,
                    "updated_at": now,
                },
            )
            return conn.execute(_SHIPMENT, {"number": tracking_number}).one()
        if tracking_url and row.tracking_url != tracking_url:
            conn.execute(
                _SET_TRACKING_URL, {"number": tracking_number, "url": tracking_url, "now": now}
            )
        return row

    def _insert_events(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Insert the events not yet known; return how many were new."""
        if not rows:
            return 0
        # One cached statement, executed for many rows: RETURNING yields the new ones only.
        statement = _ignoring_conflicts(conn, events).returning(events.c.id)
        return len(conn.execute(statement, rows).all())

    def _link_aliases(
        self, conn: Connection, tracking_number: str, aliases: Sequence[str]
    ) -> tuple[str, str, str | None] | None:
        """Remember the aliases of a tracking number; return the invoice (orderId,
        invoiceNumber, account) of a shipment registered under one of them, if any."""
        others = sorted({alias for alias in aliases if alias and alias != tracking_number})
        if not others:
            return None
        conn.execute(
            _ignoring_conflicts(conn, shipment_aliases),
            [{"alias": alias, "tracking_number": tracking_number} for alias in others],
        )
        row = conn.execute(
            select(shipments.c.order_id, shipments.c.invoice_number, shipments.c.account)
            .where(shipments.c.tracking_number.in_(others))
            .where(shipments.c.order_id.is_not(None))
            .order_by(shipments.c.registered_at.desc())
            .limit(1)
        ).first()
        return None if row is None else (row.order_id, row.invoice_number, row.account)

    # -- shipment registry ---------------------------------------------------

    @_writes
    def register_shipment(
        self,
        conn: Connection,
        tracking_number: str,
        order_id: str,
        invoice_number: str,
        carrier: str | None,
        account: str | None,
        now: datetime,
    ) -> Registration:
        """Map a tracking number to a VTEX invoice; events already held get delivered."""
        existing = (
            conn.execute(
                select(shipments.c.registered_at).where(
                    shipments.c.tracking_number == tracking_number
                )
            )
        ).first()
        created = existing is None or existing.registered_at is None
        self._see_shipment(conn, tracking_number, carrier, None, now)
        changed_numbers = set()
        if self._register(conn, tracking_number, order_id, invoice_number, carrier, account, now):
            changed_numbers.add(tracking_number)
        # The number may be an alias of a shipment whose events are held under another key.
        for (aliased,) in conn.execute(
            select(shipment_aliases.c.tracking_number).where(
                shipment_aliases.c.alias == tracking_number
            )
        ).all():
            if self._register(conn, aliased, order_id, invoice_number, None, account, now):
                changed_numbers.add(aliased)
        queued = self._queue_for_tracking_numbers(conn, changed_numbers, now)
        return Registration(created=created, deliveries_queued=queued)

    def _register(
        self,
        conn: Connection,
        tracking_number: str,
        order_id: str,
        invoice_number: str,
        carrier: str | None,
        account: str | None,
        now: datetime,
    ) -> bool:
        """Set the shipment's invoice; True when it changed where its events go."""
        row = (
            conn.execute(
                select(
                    shipments.c.order_id,
                    shipments.c.invoice_number,
                    shipments.c.account,
                    shipments.c.carrier,
                ).where(shipments.c.tracking_number == tracking_number)
            )
        ).one()
        values: dict[str, Any] = {"order_id": order_id, "invoice_number": invoice_number}
        if carrier is not None:
            values["carrier"] = carrier
        if account is not None:
            values["account"] = account
        changed = (row.order_id, row.invoice_number) != (order_id, invoice_number) or (
            account is not None and row.account != account
        )
        if changed:
            values["registered_at"] = now
        if changed or (carrier is not None and row.carrier != carrier):
            conn.execute(
                update(shipments)
                .where(shipments.c.tracking_number == tracking_number)
                .values(updated_at=now, **values)
            )
        return changed

    def _queue_for_tracking_numbers(
        self, conn: Connection, tracking_numbers: set[str], now: datetime
    ) -> int:
        """Queue a delivery for each registered invoice of these tracking numbers that has
        events, unless one is already open (it will carry the new events too)."""
        if not tracking_numbers:
            return 0
        invoices = (
            conn.execute(
                select(shipments.c.order_id, shipments.c.invoice_number, shipments.c.account)
                .where(shipments.c.tracking_number.in_(sorted(tracking_numbers)))
                .where(shipments.c.order_id.is_not(None))
                .where(
                    select(events.c.id)
                    .where(events.c.tracking_number == shipments.c.tracking_number)
                    .exists()
                )
                .distinct()
            )
        ).all()
        queued = 0
        for invoice in invoices:
            queued += self._queue_delivery(
                conn, invoice.order_id, invoice.invoice_number, invoice.account, now, now
            )
        return queued

    def _queue_delivery(
        self,
        conn: Connection,
        order_id: str,
        invoice_number: str,
        account: str | None,
        now: datetime,
        due: datetime,
    ) -> int:
        """Queue a delivery of the invoice due at ``due``, unless one is open already.

        On PostgreSQL the open delivery is then share-locked until this transaction
        commits: a worker finishing it waits, and its check for newer events (a statement
        after ours committed) sees ours, so the next delivery is queued by one of the two.
        If it closed meanwhile, a new one is queued. (SQLite has a single writer.)
        """
        while True:
            queued = conn.execute(
                _ignoring_conflicts(conn, deliveries).returning(deliveries.c.id),
                {
                    "order_id": order_id,
                    "invoice_number": invoice_number,
                    "account": account,
                    "state": "pending",
                    "queued_at": now,
                    "next_attempt_at": due,
                },
            ).all()
            if queued and conn.dialect.name == "postgresql":
                _notify_work(conn)
            if queued or conn.dialect.name != "postgresql":
                return len(queued)
            held = conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.order_id == order_id)
                .where(deliveries.c.invoice_number == invoice_number)
                .where(deliveries.c.state.in_(OPEN_STATES))
                .with_for_update(read=True)
            ).first()
            if held is not None:
                return 0

    @_reads
    def get_shipment(self, conn: Connection, tracking_number: str) -> ShipmentView | None:
        """The shipment, its events, the last body sent to VTEX and its deliveries."""
        row = (
            conn.execute(select(shipments).where(shipments.c.tracking_number == tracking_number))
        ).first()
        if row is None:
            return None
        # A number registered as an alias (Melhor Envio's carrier code) shows the events held
        # under the key it stands for.
        keys = select(shipment_aliases.c.tracking_number).where(
            shipment_aliases.c.alias == tracking_number
        )
        event_rows = (
            conn.execute(
                select(events)
                .where(
                    or_(
                        events.c.tracking_number == tracking_number,
                        events.c.tracking_number.in_(keys),
                    )
                )
                .order_by(events.c.occurred_at, events.c.id)
            )
        ).all()
        views: list[DeliveryView] = []
        last_body: dict[str, Any] | None = None
        if row.order_id is not None:
            views = self._delivery_views(
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
                {
                    "id": e.id,
                    "carrier": e.carrier,
                    "occurred_at": e.occurred_at,
                    "status": e.status,
                    "carrier_status": e.carrier_status,
                    "description": e.description,
                    "city": e.city,
                    "state": e.state,
                    "received_at": e.received_at,
                    "webhook_id": e.webhook_id,
                }
                for e in event_rows
            ],
            last_body=last_body,
            deliveries=views,
        )

    def _delivery_views(self, conn: Connection, condition: Any, limit: int) -> list[DeliveryView]:
        rows = (
            conn.execute(
                select(deliveries).where(condition).order_by(deliveries.c.id.desc()).limit(limit)
            )
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
                    {"date": row.vtex_date, "orderId": row.order_id, "receipt": row.receipt}
                    if row.receipt is not None
                    else None
                ),
                delivered_at=row.delivered_at,
            )
            for row in rows
        }
        if views:
            for attempt in (
                conn.execute(
                    select(attempts)
                    .where(attempts.c.delivery_id.in_(list(views)))
                    .order_by(attempts.c.delivery_id, attempts.c.attempt)
                )
            ).all():
                views[attempt.delivery_id].attempts.append(
                    {
                        "attempt": attempt.attempt,
                        "started_at": attempt.started_at,
                        "duration_ms": attempt.duration_ms,
                        "status_code": attempt.status_code,
                        "response_body": attempt.response_body,
                        "error": attempt.error,
                    }
                )
        return list(views.values())

    # -- delivery administration --------------------------------------------

    @_reads
    def list_deliveries(
        self, conn: Connection, state: str | None, limit: int
    ) -> list[DeliveryView]:
        """Newest deliveries first, in ``state`` when given, with their attempts."""
        condition = deliveries.c.state == state if state is not None else true()
        return self._delivery_views(conn, condition, limit)

    @_reads
    def get_delivery(self, conn: Connection, delivery_id: int) -> DeliveryView | None:
        views = self._delivery_views(conn, deliveries.c.id == delivery_id, 1)
        return views[0] if views else None

    @_writes
    def retry_delivery(self, conn: Connection, delivery_id: int, now: datetime) -> int | None:
        """Put a delivery back in line now; return the id of the one that will run.

        A dead delivery becomes pending again with a fresh age, unless the invoice already
        has an open delivery (it carries the whole history), which is then made due now.
        None when there is no such delivery; :class:`NotRetriable` when it was delivered.
        """
        row = (conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).first()
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
        conn.execute(
            update(deliveries).where(deliveries.c.id == target).values(next_attempt_at=now)
        )
        if conn.dialect.name == "postgresql":
            _notify_work(conn)
        return int(target)

    # -- delivery ------------------------------------------------------------

    @_writes
    def claim_due_deliveries(
        self, conn: Connection, now: datetime, lease_until: datetime, limit: int
    ) -> list[DeliveryJob]:
        """Take up to ``limit`` open deliveries that are due and not held by a live claim."""
        ids = (
            conn.scalars(
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
            )
        ).all()
        if not ids:
            return []
        conn.execute(
            update(deliveries).where(deliveries.c.id.in_(ids)).values(claimed_until=lease_until)
        )
        rows = (conn.execute(select(deliveries).where(deliveries.c.id.in_(ids)))).all()
        numbers = (
            conn.execute(
                select(
                    shipments.c.order_id,
                    shipments.c.invoice_number,
                    shipments.c.tracking_number,
                    shipments.c.carrier,
                ).where(
                    shipments.c.order_id.in_({row.order_id for row in rows}),
                )
            )
        ).all()
        by_invoice: dict[tuple[str, str], list[str]] = {}
        carriers: dict[tuple[str, str], set[str]] = {}
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
                tracking_numbers=tuple(
                    sorted(by_invoice.get((row.order_id, row.invoice_number), []))
                ),
                carriers=tuple(sorted(carriers.get((row.order_id, row.invoice_number), ()))),
            )
            for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.id))
        ]

    @_reads
    def invoice_history(
        self, conn: Connection, order_id: str, invoice_number: str
    ) -> InvoiceHistory:
        """Every event of every shipment registered to the invoice, oldest first."""
        sql = _driver_sql(conn.dialect.name)
        cursor = conn.connection.cursor()
        rows = cursor.execute(sql.history, (order_id, invoice_number)).fetchall()
        checked = cursor.execute(sql.invoice_checked, (order_id, invoice_number)).fetchone()
        return InvoiceHistory(
            events=tuple(
                TrackingEvent(
                    occurred_at=sql.read_time(occurred_at),
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

    @_reads
    def invoice_shipments(
        self, conn: Connection, order_id: str, invoice_number: str
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

    # -- VTEX orders hook --------------------------------------------------------

    @_writes
    def queue_order_notification(
        self, conn: Connection, order_id: str, account: str | None, now: datetime
    ) -> None:
        """Remember to read an invoiced order (again, if it was notified before)."""
        values = {
            "order_id": order_id,
            "account": account,
            "received_at": now,
            "next_attempt_at": now,
            "claimed_until": None,
            "attempts": 0,
            "last_error": None,
        }
        statement = _dialect_insert(conn.dialect.name, order_notifications).values(values)
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=[order_notifications.c.order_id],
                set_={k: v for k, v in values.items() if k != "order_id"},
            )
        )
        if conn.dialect.name == "postgresql":
            _notify_work(conn)

    @_writes
    def claim_order_notifications(
        self, conn: Connection, now: datetime, lease_until: datetime, limit: int
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

    @_writes
    def finish_order_notification(self, conn: Connection, notification: OrderNotification) -> None:
        """Done with it, unless the order was notified again meanwhile."""
        conn.execute(
            order_notifications.delete()
            .where(order_notifications.c.order_id == notification.order_id)
            .where(order_notifications.c.received_at == notification.received_at)
        )

    @_writes
    def retry_order_notification(
        self, conn: Connection, notification: OrderNotification, at: datetime, error: str
    ) -> None:
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

    # -- reconciliation ------------------------------------------------------------

    @_reads
    def active_invoices(self, conn: Connection, since: datetime) -> list[ActiveInvoice]:
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

    @_writes
    def queue_delivery_now(
        self,
        conn: Connection,
        order_id: str,
        invoice_number: str,
        account: str | None,
        now: datetime,
    ) -> int:
        """Queue a delivery of the invoice's whole tracking, due now (reconciliation)."""
        return self._queue_delivery(conn, order_id, invoice_number, account, now, now)

    @_writes
    def record_attempt(
        self,
        conn: Connection,
        job: DeliveryJob,
        attempt: AttemptRecord,
        *,
        state: str,
        next_attempt_at: datetime | None,
        body: dict[str, Any] | None,
        covered_event_ids: Sequence[int],
        receipt: dict[str, Any] | None,
        now: datetime,
        pause_account_until: datetime | None = None,
        invoice_checked: bool | None = None,
    ) -> None:
        """Store one attempt and its delivery's new state, releasing the claim.

        ``body`` is what VTEX was sent (None when nothing was), ``covered_event_ids`` the
        events it held. When a delivery succeeds and the invoice has an event the body
        lacked, the next delivery is queued in the same transaction. The check is by id
        set, not "newest id": with several replicas a lower id can commit after a higher
        one (and an ingest that joined this delivery holds its row lock until it commits,
        so the UPDATE below waits for it and the check after it sees its events).
        """
        sql = _driver_sql(conn.dialect.name)
        cursor = conn.connection.cursor()
        number = job.attempt_count + 1
        cursor.execute(
            sql.attempt,
            (
                job.id,
                number,
                sql.time(attempt.started_at),
                attempt.duration_ms,
                attempt.status_code,
                _first_bytes(attempt.response_body, RESPONSE_KEEP_BYTES),
                attempt.error,
            ),
        )
        delivered = state == "delivered"
        receipt = receipt if delivered and receipt is not None else {}
        body_json = json.dumps(body, ensure_ascii=False) if body is not None else None
        cursor.execute(
            sql.attempted,
            (
                state,
                number,
                attempt.status_code,
                attempt.error,
                body_json,
                body_json,
                max(covered_event_ids, default=None),
                sql.time(next_attempt_at) if next_attempt_at is not None else None,
                sql.time(now) if delivered else None,
                str(receipt.get("receipt") or "") or None,
                str(receipt.get("date") or "") or None,
                job.id,
            ),
        )
        if pause_account_until is not None:
            self._pause_account(conn, job.account or "", pause_account_until)
        if invoice_checked is not None:  # the check before the first PUT passed (patched?)
            cursor.execute(
                sql.check_invoice,
                (job.order_id, job.invoice_number, sql.time(now), invoice_checked),
            )
        if delivered:
            held = cursor.execute(sql.event_ids, (job.order_id, job.invoice_number)).fetchall()
            if {row[0] for row in held} - set(covered_event_ids):
                self._queue_delivery(
                    conn, job.order_id, job.invoice_number, job.account, now, now + self._coalesce
                )

    def _pause_account(self, conn: Connection, account: str, until: datetime) -> None:
        later = func.max if conn.dialect.name == "sqlite" else func.greatest
        conn.execute(
            _insert(conn, account_pauses)
            .values(account=account, paused_until=until)
            .on_conflict_do_update(
                index_elements=[account_pauses.c.account],
                set_={"paused_until": later(account_pauses.c.paused_until, until)},
            )
        )

    @_reads
    def paused_accounts(self, conn: Connection, now: datetime) -> dict[str, datetime]:
        """Accounts a 429 paused, with the time the pause ends."""
        rows = (
            conn.execute(select(account_pauses).where(account_pauses.c.paused_until > now))
        ).all()
        return {row.account: row.paused_until for row in rows}

    @_writes
    def postpone(self, conn: Connection, delivery_id: int, until: datetime) -> None:
        """Release a claim without an attempt: the delivery is due again at ``until``."""
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(next_attempt_at=until, claimed_until=None)
        )

    @_writes
    def renew_claims(self, conn: Connection, delivery_ids: Sequence[int], until: datetime) -> None:
        """Extend the claims a live worker still holds, so that only a dead one's expire."""
        if not delivery_ids:
            return
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(list(delivery_ids)))
            .where(deliveries.c.claimed_until.is_not(None))
            .values(claimed_until=until)
        )

    @_reads
    def backlog(self, conn: Connection, now: datetime) -> tuple[int, int]:
        """(open deliveries, of which due now)."""
        row = (
            conn.execute(
                select(
                    func.count(),
                    func.count().filter(deliveries.c.next_attempt_at <= now),
                ).where(deliveries.c.state.in_(OPEN_STATES))
            )
        ).one()
        return int(row[0]), int(row[1])


def _event_rows(
    carrier: str,
    tracking_number: str,
    tracked: Sequence[TrackingEvent],
    webhook_id: str,
    received_at: Any,
    sql: _DriverSql,
) -> list[tuple[Any, ...]]:
    """One row per distinct event (a payload may repeat one), in ``_DriverSql.event`` order."""
    rows: dict[str, tuple[Any, ...]] = {}
    for tracking_event in tracked:
        identity = event_identity(carrier, tracking_number, tracking_event)
        rows.setdefault(
            identity,
            (
                identity,
                carrier,
                tracking_number,
                sql.time(tracking_event.occurred_at),
                tracking_event.status.value,
                tracking_event.carrier_status,
                tracking_event.description,
                tracking_event.city,
                tracking_event.state,
                webhook_id,
                received_at,
            ),
        )
    return list(rows.values())


class _DriverSql:
    """The hot paths (ingest, and each delivery's history and attempt) as driver SQL:
    SQLAlchemy Core spends far more time building and caching a statement than SQLite
    spends running it. Plain SQL that both dialects read alike; only the parameter style
    and the time format differ."""

    def __init__(self, dialect: str) -> None:
        self.is_sqlite = dialect == "sqlite"

        def q(statement: str) -> str:
            return statement if self.is_sqlite else statement.replace("?", "%s")

        self.shipment = q(
            "SELECT order_id, invoice_number, account, tracking_url, carrier FROM shipments"
            " WHERE tracking_number = ?"
        )
        self.new_shipment = q(
            "INSERT INTO shipments (tracking_number, carrier, tracking_url, first_seen_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.tracking_url = q(
            "UPDATE shipments SET tracking_url = ?, updated_at = ? WHERE tracking_number = ?"
        )
        self.carrier = q("UPDATE shipments SET carrier = ? WHERE tracking_number = ?")
        self.event = q(
            "INSERT INTO events (identity, carrier, tracking_number, occurred_at, status,"
            " carrier_status, description, city, state, webhook_id, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.delivery = q(
            "INSERT INTO deliveries (order_id, invoice_number, account, state, queued_at,"
            " next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING"
        )
        self.webhook = q(
            "INSERT INTO webhooks (id, carrier, received_at, body, state, new_events,"
            " duplicate_events) VALUES (?, ?, ?, ?, 'accepted', ?, ?)"
        )
        self.history = q(
            "SELECT e.id, e.occurred_at, e.status, e.carrier_status, e.description, e.city,"
            " e.state FROM events e JOIN shipments s ON s.tracking_number = e.tracking_number"
            " WHERE s.order_id = ? AND s.invoice_number = ? ORDER BY e.occurred_at, e.id"
        )
        self.event_ids = q(
            "SELECT e.id FROM events e JOIN shipments s ON s.tracking_number = e.tracking_number"
            " WHERE s.order_id = ? AND s.invoice_number = ?"
        )
        self.invoice_checked = q(
            "SELECT 1 FROM invoice_checks WHERE order_id = ? AND invoice_number = ?"
        )
        self.check_invoice = q(
            "INSERT INTO invoice_checks (order_id, invoice_number, checked_at, patched)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
        )
        self.attempt = q(
            "INSERT INTO attempts (delivery_id, attempt, started_at, duration_ms, status_code,"
            " response_body, error) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        # Optional values (a body only when one was sent, a receipt only on success) keep
        # what the row had when they are NULL.
        self.attempted = q(
            "UPDATE deliveries SET state = ?, attempt_count = ?, claimed_until = NULL,"
            " last_status = ?, last_error = ?, body = COALESCE(CAST(? AS TEXT), body),"
            " covered_event_id = CASE WHEN CAST(? AS TEXT) IS NULL THEN covered_event_id"
            " ELSE ? END, next_attempt_at = COALESCE(?, next_attempt_at),"
            " delivered_at = COALESCE(?, delivered_at), receipt = COALESCE(?, receipt),"
            " vtex_date = COALESCE(?, vtex_date) WHERE id = ?"
        )

    def time(self, value: datetime) -> Any:
        """A time as ``schema.UTCDateTime`` stores it: UTC, SQLite's text without offset."""
        utc = value.astimezone(UTC)
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f") if self.is_sqlite else utc

    def read_time(self, value: Any) -> datetime:
        """A stored time back as an aware UTC datetime."""
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        assert isinstance(parsed, datetime)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@functools.cache
def _driver_sql(dialect: str) -> _DriverSql:
    return _DriverSql(dialect)


def _notify_work(conn: Connection) -> None:
    """Wake every relay's worker once this transaction commits (PostgreSQL)."""
    conn.exec_driver_sql(f"NOTIFY {WORK_CHANNEL}")


def _quarantined(row: Any) -> QuarantinedWebhook:
    return QuarantinedWebhook(row.id, row.carrier, row.received_at, row.body, row.error)


def _first_bytes(text: str | None, limit: int) -> str | None:
    """At most ``limit`` bytes of ``text`` as UTF-8, never splitting a character; a NUL
    (which PostgreSQL's text refuses) is kept as U+FFFD."""
    if not text:
        return None
    return text.encode()[:limit].decode(errors="ignore").replace("\x00", "\ufffd")

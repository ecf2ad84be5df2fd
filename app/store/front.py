"""The store's front: one async :class:`Store` whose methods the rest of the relay calls.

Each method hands one function of a ``Connection`` to the engine: a write runs in a
transaction on the writer thread (grouped with other writes into one commit), a read on a
reader thread. The SQL lives by concern in ``webhooks``, ``shipments``, ``deliveries``,
``orders`` and ``reads``; this module only wires them to the engine.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection

from app.normalize.model import ShipmentUpdate
from app.store import deliveries, orders, reads, shipments, webhooks
from app.store.console_front import ConsoleStore
from app.store.engine import Database
from app.store.records import (
    ActiveInvoice,
    AttemptRecord,
    DeliveryJob,
    DeliveryView,
    IngestResult,
    InvoiceHistory,
    InvoiceShipment,
    OrderNotification,
    QuarantinedWebhook,
    QueueSnapshot,
    Registration,
    ShipmentView,
)
from app.store.schema import insert_into, meta, migrate
from app.store.upkeep_front import UpkeepStore

RECORD_LINGER_SECONDS = 0.02
"""How long an attempt's record may wait for others to share its commit: the VTEX call is
over and the worker's slot free, so nobody waits on it but its claim (see
``Database.write_in_batch``)."""

P = ParamSpec("P")
R = TypeVar("R")


class SqlStore:
    """The relay's database; create with :meth:`open`, close with :meth:`close`."""

    def __init__(self, db: Database, coalesce: timedelta = timedelta(0)) -> None:
        self._db = db
        self._coalesce = coalesce
        # One object for every webhook, so that a commit group accepts them together.
        self._accept = functools.partial(webhooks.accept, coalesce=coalesce)
        self._record = functools.partial(deliveries.record_attempts, coalesce=coalesce)
        self._pauses: dict[str, datetime] = {}

    @classmethod
    def open(cls, url: str, coalesce: timedelta = timedelta(0)) -> SqlStore:
        """``coalesce``: how long a delivery queued by new events waits for more to join it."""
        return cls(Database(url), coalesce)

    def console(self) -> ConsoleStore:
        """The console's reads and actions on the same database (SPEC §10)."""
        return ConsoleStore(self._db)

    def upkeep(self) -> UpkeepStore:
        """Retention, space, backups and fleet-wide periodic tasks (SPEC §11)."""
        return UpkeepStore(self._db)

    def watch_for_work(self, on_work: Callable[[], None]) -> Callable[[], None]:
        """See :meth:`Database.watch_for_work`; returns a function that stops watching."""
        return self._db.watch_for_work(on_work)

    def describe(self) -> str:
        """The database URL without its password, for logs."""
        return self._db.url.render_as_string(hide_password=True)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._db.close)

    async def _write(
        self, work: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``work(conn, *args)`` in a write transaction, committed before this returns."""
        return await self._db.write(lambda conn: work(conn, *args, **kwargs))

    async def _read(
        self, work: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``work(conn, *args)`` on a reader connection."""
        return await self._db.read(lambda conn: work(conn, *args, **kwargs))

    # -- schema and health ---------------------------------------------------

    async def migrate(self) -> int:
        """Create missing tables; return the schema version (see ``schema.migrate``)."""
        return await self._write(migrate)

    async def ping(self) -> None:
        await self._read(_ping)

    def write_problem(self) -> str | None:
        """Why writes fail now (the disk is full, the file read-only), if they do."""
        return self._db.write_problem

    async def probe_write(self) -> None:
        """Write one small row: while writes fail, this finds out when they work again."""
        await self._write(_note_probe, datetime.now(UTC).isoformat())

    # -- webhooks ------------------------------------------------------------

    async def record_webhook(
        self, carrier: str, body: bytes, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult:
        """Store a verified webhook and its new events; answer once committed.

        Known events count as duplicates. Shipments the payload registers are registered;
        every invoice that gained events gets a delivery queued.
        """
        arrival = webhooks.arrival(
            webhooks.new_webhook_id(), carrier, updates, now, body, self._db.dialect
        )
        return await self._db.write_in_batch(self._accept, arrival)

    async def quarantine_webhook(self, carrier: str, body: bytes, error: str, now: datetime) -> str:
        """Keep a verified webhook its adapter could not read, with the reason."""
        return await self._write(webhooks.quarantine, carrier, body, error, now)

    async def quarantined(
        self, carrier: str | None = None, limit: int = 1000, webhook_id: str | None = None
    ) -> list[QuarantinedWebhook]:
        """Quarantined webhooks, oldest first (of a carrier, or the one ``webhook_id``)."""
        return await self._read(webhooks.quarantined, carrier, limit, webhook_id)

    async def release_from_quarantine(
        self, webhook_id: str, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult | None:
        """Store what a re-run of a quarantined webhook read; None if it was not quarantined."""
        return await self._write(webhooks.release, webhook_id, updates, now, self._coalesce)

    async def keep_in_quarantine(self, webhook_id: str, error: str) -> None:
        """Record why a re-run of a quarantined webhook failed again."""
        await self._write(webhooks.keep_in_quarantine, webhook_id, error)

    async def discard_quarantined(self, webhook_id: str) -> QuarantinedWebhook | None:
        """Delete one quarantined webhook and return it; None if none such is quarantined."""
        return await self._write(webhooks.discard_one, webhook_id)

    async def discard_quarantine(self, carrier: str) -> list[str]:
        """Delete every quarantined webhook of ``carrier``; return their ids."""
        return await self._write(webhooks.discard_all, carrier)

    # -- shipments -----------------------------------------------------------

    async def register_shipment(
        self,
        tracking_number: str,
        order_id: str,
        invoice_number: str,
        carrier: str | None,
        account: str | None,
        now: datetime,
    ) -> Registration:
        """Map a tracking number to a VTEX invoice; events already held get delivered."""
        return await self._write(
            shipments.register, tracking_number, order_id, invoice_number, carrier, account, now
        )

    async def get_shipment(self, tracking_number: str) -> ShipmentView | None:
        """The shipment, its events, the last body sent to VTEX and its deliveries."""
        return await self._read(reads.shipment, tracking_number)

    # -- deliveries ----------------------------------------------------------

    async def claim_due_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[DeliveryJob]:
        """Take up to ``limit`` open deliveries that are due and not held by a live claim,
        each with its invoice's history; learn which accounts are paused."""
        claimed = await self._write(deliveries.claim_due, now, lease_until, limit)
        self._pauses = claimed.pauses
        return claimed.jobs

    def account_paused_until(self, account: str | None, now: datetime) -> datetime | None:
        """When the account's 429 pause ends, if it is paused at ``now``: as the last claim
        found the fleet's pauses, and as this process recorded them since."""
        until = self._pauses.get(account or "")
        return until if until is not None and until > now else None

    async def invoice_history(self, order_id: str, invoice_number: str) -> InvoiceHistory:
        """Every event of every shipment registered to the invoice, oldest first."""
        return await self._read(deliveries.invoice_history, order_id, invoice_number)

    async def invoice_shipments(self, order_id: str, invoice_number: str) -> list[InvoiceShipment]:
        """The shipments registered to an invoice, the numbers VTEX knows first."""
        return await self._read(deliveries.invoice_shipments, order_id, invoice_number)

    async def record_attempt(
        self,
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
        invoice_checked_by: str | None = None,
    ) -> None:
        """Store one attempt and its delivery's new state, releasing the claim; attempts
        recorded at the same time share a commit (see ``deliveries.record_attempts``)."""
        outcome = deliveries.Outcome(
            state,
            next_attempt_at,
            body,
            covered_event_ids,
            receipt,
            pause_account_until,
            invoice_checked_by,
        )
        if pause_account_until is not None:  # held from now on, not once committed
            account = job.account or ""
            known = self._pauses.get(account, pause_account_until)
            self._pauses = {**self._pauses, account: max(known, pause_account_until)}
        recorded = deliveries.AttemptToRecord(job, attempt, outcome, now)
        await self._db.write_in_batch(self._record, recorded, linger=RECORD_LINGER_SECONDS)

    async def note_invoice_checked(
        self, order_id: str, invoice_number: str, checked_by: str, now: datetime
    ) -> None:
        """Remember that the invoice's VTEX package carries its tracking number, as
        ``checked_by`` showed (one of ``CHECKED_BY``): its first PUT needs no check."""
        await self._write(
            deliveries.note_invoice_checked, order_id, invoice_number, checked_by, now
        )

    async def postpone(self, delivery_id: int, until: datetime) -> None:
        """Release a claim without an attempt: the delivery is due again at ``until``."""
        await self._write(deliveries.postpone, delivery_id, until)

    async def renew_claims(self, delivery_ids: Sequence[int], until: datetime) -> None:
        """Extend the claims a live worker still holds, so that only a dead one's expire."""
        await self._write(deliveries.renew_claims, delivery_ids, until)

    async def retry_delivery(self, delivery_id: int, now: datetime) -> int | None:
        """Put a delivery back in line now; return the id of the one that will run."""
        return await self._write(deliveries.retry, delivery_id, now)

    async def queue_delivery_now(
        self, order_id: str, invoice_number: str, account: str | None, now: datetime
    ) -> int:
        """Queue a delivery of the invoice's whole tracking, due now (reconciliation)."""
        request = deliveries.QueueRequest(order_id, invoice_number, account, now, now)
        queued: set[Any] = await self._write(deliveries.queue, [request])
        return len(queued)

    # -- VTEX orders ---------------------------------------------------------

    async def queue_order_notification(
        self, order_id: str, account: str | None, now: datetime
    ) -> None:
        """Remember to read an invoiced order (again, if it was notified before)."""
        await self._write(orders.queue_notification, order_id, account, now)

    async def claim_order_notifications(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[OrderNotification]:
        """Take up to ``limit`` due notifications not held by a live claim."""
        return await self._write(orders.claim_notifications, now, lease_until, limit)

    async def finish_order_notification(self, notification: OrderNotification) -> None:
        """Done with it, unless the order was notified again meanwhile."""
        await self._write(orders.finish_notification, notification)

    async def retry_order_notification(
        self, notification: OrderNotification, at: datetime, error: str
    ) -> None:
        """Read the order again at ``at``, noting why this time failed."""
        await self._write(orders.retry_notification, notification, at, error)

    async def active_invoices(self, since: datetime) -> list[ActiveInvoice]:
        """Delivered invoices with an event received since ``since`` (reconciliation)."""
        return await self._read(orders.active_invoices, since)

    # -- read models ---------------------------------------------------------

    async def queue_snapshot(self, now: datetime) -> QueueSnapshot:
        """Open deliveries, the oldest one's age, dead deliveries and quarantined webhooks."""
        return await self._read(reads.queue_snapshot, now)

    async def backlog(self, now: datetime) -> tuple[int, int]:
        """(open deliveries, of which due now)."""
        return await self._read(reads.backlog, now)

    async def paused_accounts(self, now: datetime) -> dict[str, datetime]:
        """Accounts a 429 paused, with the time the pause ends."""
        return await self._read(reads.paused_accounts, now)

    async def list_deliveries(self, state: str | None, limit: int) -> list[DeliveryView]:
        """Newest deliveries first, in ``state`` when given, with their attempts."""
        return await self._read(reads.deliveries_in, state, limit)

    async def get_delivery(self, delivery_id: int) -> DeliveryView | None:
        return await self._read(reads.delivery, delivery_id)


def _ping(conn: Connection) -> None:
    conn.scalar(select(1))


def _note_probe(conn: Connection, at: str) -> None:
    values = {"key": "write_probe", "value": at}
    conn.execute(
        insert_into(conn, meta)
        .values(values)
        .on_conflict_do_update(index_elements=[meta.c.key], set_={"value": at})
    )

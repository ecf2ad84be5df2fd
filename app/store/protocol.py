"""What the relay asks of its store: the :class:`Store` protocol.

``front.SqlStore`` is the implementation on SQLite and PostgreSQL; the tests have an
in-memory one (``tests/support/memory_store.py``) so that the worker's and the intake's
decisions can be tested without a database. Each method's contract is the docstring of its
``SqlStore`` counterpart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from app.normalize.model import ShipmentUpdate
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


class Store(Protocol):
    """The relay's database, as every caller uses it."""

    def watch_for_work(self, on_work: Callable[[], None]) -> Callable[[], None]:
        """See :meth:`Database.watch_for_work`; returns a function that stops watching."""
        ...

    def describe(self) -> str:
        """The database URL without its password, for logs."""
        ...

    async def close(self) -> None: ...

    async def migrate(self) -> int:
        """Create missing tables; return the schema version (see ``schema.migrate``)."""
        ...

    async def ping(self) -> None: ...

    async def record_webhook(
        self, carrier: str, body: bytes, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult:
        """Store a verified webhook and its new events; answer once committed."""
        ...

    async def quarantine_webhook(self, carrier: str, body: bytes, error: str, now: datetime) -> str:
        """Keep a verified webhook its adapter could not read, with the reason."""
        ...

    async def quarantined(
        self, carrier: str | None = None, limit: int = 1000, webhook_id: str | None = None
    ) -> list[QuarantinedWebhook]:
        """Quarantined webhooks, oldest first (of a carrier, or the one ``webhook_id``)."""
        ...

    async def release_from_quarantine(
        self, webhook_id: str, updates: Sequence[ShipmentUpdate], now: datetime
    ) -> IngestResult | None:
        """Store what a re-run of a quarantined webhook read; None if it was not quarantined."""
        ...

    async def keep_in_quarantine(self, webhook_id: str, error: str) -> None:
        """Record why a re-run of a quarantined webhook failed again."""
        ...

    async def discard_quarantined(self, webhook_id: str) -> QuarantinedWebhook | None:
        """Delete one quarantined webhook and return it; None if none such is quarantined."""
        ...

    async def discard_quarantine(self, carrier: str) -> list[str]:
        """Delete every quarantined webhook of ``carrier``; return their ids."""
        ...

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
        ...

    async def get_shipment(self, tracking_number: str) -> ShipmentView | None:
        """The shipment, its events, the last body sent to VTEX and its deliveries."""
        ...

    async def claim_due_deliveries(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[DeliveryJob]:
        """Take up to ``limit`` open deliveries that are due and not held by a live claim,
        each with its invoice's history."""
        ...

    def account_paused_until(self, account: str | None, now: datetime) -> datetime | None:
        """When the account's 429 pause ends, if it is paused at ``now``: the store is the
        one place a pause is held (the worker asks it before each attempt)."""
        ...

    async def invoice_history(self, order_id: str, invoice_number: str) -> InvoiceHistory:
        """Every event of every shipment registered to the invoice, oldest first."""
        ...

    async def invoice_shipments(self, order_id: str, invoice_number: str) -> list[InvoiceShipment]:
        """The shipments registered to an invoice, the numbers VTEX knows first."""
        ...

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
        """Store one attempt and its delivery's new state, releasing the claim."""
        ...

    async def note_invoice_checked(
        self, order_id: str, invoice_number: str, checked_by: str, now: datetime
    ) -> None:
        """Remember that the invoice's VTEX package carries its tracking number."""
        ...

    async def postpone(self, delivery_id: int, until: datetime) -> None:
        """Release a claim without an attempt: the delivery is due again at ``until``."""
        ...

    async def renew_claims(self, delivery_ids: Sequence[int], until: datetime) -> None:
        """Extend the claims a live worker still holds, so that only a dead one's expire."""
        ...

    async def retry_delivery(self, delivery_id: int, now: datetime) -> int | None:
        """Put a delivery back in line now; return the id of the one that will run."""
        ...

    async def queue_delivery_now(
        self, order_id: str, invoice_number: str, account: str | None, now: datetime
    ) -> int:
        """Queue a delivery of the invoice's whole tracking, due now (reconciliation)."""
        ...

    async def queue_order_notification(
        self, order_id: str, account: str | None, now: datetime
    ) -> None:
        """Remember to read an invoiced order (again, if it was notified before)."""
        ...

    async def claim_order_notifications(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[OrderNotification]:
        """Take up to ``limit`` due notifications not held by a live claim."""
        ...

    async def finish_order_notification(self, notification: OrderNotification) -> None:
        """Done with it, unless the order was notified again meanwhile."""
        ...

    async def retry_order_notification(
        self, notification: OrderNotification, at: datetime, error: str
    ) -> None:
        """Read the order again at ``at``, noting why this time failed."""
        ...

    async def active_invoices(self, since: datetime) -> list[ActiveInvoice]:
        """Delivered invoices with an event received since ``since`` (reconciliation)."""
        ...

    async def queue_snapshot(self, now: datetime) -> QueueSnapshot:
        """Open deliveries, the oldest one's age, dead deliveries and quarantined webhooks."""
        ...

    async def backlog(self, now: datetime) -> tuple[int, int]:
        """(open deliveries, of which due now)."""
        ...

    async def paused_accounts(self, now: datetime) -> dict[str, datetime]:
        """Accounts a 429 paused, with the time the pause ends."""
        ...

    async def list_deliveries(self, state: str | None, limit: int) -> list[DeliveryView]:
        """Newest deliveries first, in ``state`` when given, with their attempts."""
        ...

    async def get_delivery(self, delivery_id: int) -> DeliveryView | None: ...

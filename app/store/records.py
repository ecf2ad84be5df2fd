"""What the store hands back: plain records, built from rows, owned by nobody else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.normalize.model import TrackingEvent

OPEN_STATES = ("pending", "retrying")
RESPONSE_KEEP_BYTES = 2048
"""How much of VTEX's answer an attempt keeps."""


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
class InvoiceHistory:
    events: tuple[TrackingEvent, ...]
    event_ids: tuple[int, ...]
    checked_by: str | None = None
    """What showed the invoice's VTEX package to carry its tracking number (SPEC §2): Get
    order, the relay's partial invoice PATCH, or the orders hook; None: not checked yet."""

    @property
    def checked(self) -> bool:
        return self.checked_by is not None


NO_HISTORY = InvoiceHistory((), ())


@dataclass(frozen=True)
class DeliveryJob:
    """A claimed delivery: the worker owns it until it records the attempt. ``history`` is
    the invoice's, read when it was claimed."""

    id: int
    order_id: str
    invoice_number: str
    account: str | None
    queued_at: datetime
    attempt_count: int
    tracking_numbers: tuple[str, ...]
    carriers: tuple[str, ...] = ()
    history: InvoiceHistory = NO_HISTORY


@dataclass(frozen=True)
class AttemptRecord:
    started_at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


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


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store holds it, with the webhook that first reported it."""

    id: int
    carrier: str
    event: TrackingEvent
    received_at: datetime
    webhook_id: str


@dataclass(frozen=True)
class RecordedAttempt:
    """One attempt of a delivery, numbered from 1 (the response body cut to 2 KB)."""

    attempt: int
    started_at: datetime
    duration_ms: float
    status_code: int | None
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class Receipt:
    """What VTEX answered a delivered PUT: its ``receipt`` and ``date``."""

    receipt: str
    date: str | None
    order_id: str


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
    receipt: Receipt | None
    delivered_at: datetime | None
    attempts: list[RecordedAttempt] = field(default_factory=list)
    invoice_check: InvoiceCheck | None = None
    """How the invoice's VTEX package was checked before its first PUT (None: not yet)."""


@dataclass(frozen=True)
class InvoiceCheck:
    checked_at: datetime
    checked_by: str


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
    events: list[StoredEvent]
    last_body: dict[str, Any] | None
    deliveries: list[DeliveryView]


def first_bytes(text: str | None, limit: int) -> str | None:
    """At most ``limit`` bytes of ``text`` as UTF-8, never splitting a character; a NUL
    (which PostgreSQL's text refuses) is kept as U+FFFD."""
    if not text:
        return None
    return text.encode()[:limit].decode(errors="ignore").replace("\x00", "\ufffd")

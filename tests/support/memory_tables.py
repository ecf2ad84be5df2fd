"""The :class:`~tests.support.memory_store.MemoryStore`'s tables: one dataclass per row, the
columns the SQL schema has (``app/store/schema.py``), every time in UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from app.normalize.model import TrackingEvent
from app.store import OPEN_STATES, RecordedAttempt

Invoice = tuple[str, str]
"""(orderId, invoice number)"""

NEVER = datetime.min.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """A time as the store keeps it; a naive one is refused, as ``schema.stored_time`` does."""
    if value.utcoffset() is None:
        raise ValueError("naive datetime given to the store; times must be timezone-aware")
    return value.astimezone(UTC)


@dataclass
class Webhook:
    id: str
    carrier: str
    received_at: datetime
    body: bytes
    state: str  # accepted | quarantined | replayed
    error: str | None = None


@dataclass
class Shipment:
    number: str
    carrier: str | None
    url: str | None
    first_seen_at: datetime
    order_id: str | None = None
    invoice_number: str | None = None
    account: str | None = None
    registered_at: datetime | None = None

    @property
    def invoice(self) -> Invoice | None:
        if self.order_id is None or self.invoice_number is None:
            return None
        return self.order_id, self.invoice_number

    @property
    def registration_order(self) -> tuple[datetime, str]:
        return self.registered_at or NEVER, self.number


@dataclass
class Event:
    id: int
    carrier: str
    number: str
    event: TrackingEvent
    """As the adapter read it, ``occurred_at`` in UTC."""
    webhook_id: str
    received_at: datetime

    @property
    def order(self) -> tuple[datetime, int]:
        """Oldest first; ties in insertion order."""
        return self.event.occurred_at, self.id


@dataclass
class Delivery:
    id: int
    order_id: str
    invoice_number: str
    account: str | None
    queued_at: datetime
    next_attempt_at: datetime
    state: str = "pending"  # pending | retrying | delivered | dead
    claimed_until: datetime | None = None
    attempt_count: int = 0
    covered_event_id: int | None = None
    body: str | None = None
    """The last body sent, as JSON text (so that what is stored is what JSON can carry)."""
    last_status: int | None = None
    last_error: str | None = None
    receipt: str | None = None
    vtex_date: str | None = None
    delivered_at: datetime | None = None
    attempts: list[RecordedAttempt] = field(default_factory=list)

    @property
    def invoice(self) -> Invoice:
        return self.order_id, self.invoice_number

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass
class Notification:
    order_id: str
    account: str | None
    received_at: datetime
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    attempts: int = 0
    last_error: str | None = None


class Request(NamedTuple):
    """A delivery of the invoice wanted, due at ``due`` (``deliveries.QueueRequest``)."""

    order_id: str
    invoice_number: str
    account: str | None
    now: datetime
    due: datetime

    @property
    def invoice(self) -> Invoice:
        return self.order_id, self.invoice_number


@dataclass
class Tables:
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    shipments: dict[str, Shipment] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """alias -> the tracking number whose events it stands for (the first one stays)"""
    events: dict[int, Event] = field(default_factory=dict)
    identities: set[str] = field(default_factory=set)
    deliveries: dict[int, Delivery] = field(default_factory=dict)
    checks: dict[Invoice, tuple[datetime, str]] = field(default_factory=dict)
    """Invoices checked before their first PUT: (checked at, checked by); the first stays."""
    notifications: dict[str, Notification] = field(default_factory=dict)
    pauses: dict[str, datetime] = field(default_factory=dict)
    """account ("" for the default one) -> paused until"""
    last_event_id: int = 0
    last_delivery_id: int = 0

    def shipments_of(self, invoice: Invoice) -> list[Shipment]:
        return [row for row in self.shipments.values() if row.invoice == invoice]

    def events_of(self, invoice: Invoice) -> list[Event]:
        """Every event of every shipment registered to the invoice, oldest first."""
        numbers = {row.number for row in self.shipments_of(invoice)}
        return sorted(
            (e for e in self.events.values() if e.number in numbers), key=lambda e: e.order
        )

    def newest_deliveries(self) -> list[Delivery]:
        return sorted(self.deliveries.values(), key=lambda d: d.id, reverse=True)

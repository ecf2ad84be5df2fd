"""Small builders shared by the integration tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

from app.normalize.model import ShipmentUpdate, Status, TrackingEvent
from app.store import Store

T0 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
BRT = timezone(timedelta(hours=-3))

StoreOpener = Callable[..., Awaitable[Store]]
"""The ``open_store`` fixture: ``await open_store(coalesce=timedelta(0))`` opens a migrated
store of the test's kind (memory, SQLite, PostgreSQL)."""


def event(
    when: datetime,
    description: str = "Objeto em trânsito",
    status: Status = Status.IN_TRANSIT,
    carrier_status: str | None = None,
    city: str = "Curitiba",
    state: str = "PR",
) -> TrackingEvent:
    return TrackingEvent(
        occurred_at=when,
        status=status,
        carrier_status=carrier_status if carrier_status is not None else status.value,
        description=description,
        city=city,
        state=state,
    )


def update(
    tracking_number: str,
    *events: TrackingEvent,
    order_id: str | None = None,
    invoice_number: str | None = None,
) -> ShipmentUpdate:
    return ShipmentUpdate(
        tracking_number=tracking_number,
        events=tuple(events),
        order_id=order_id,
        invoice_number=invoice_number,
    )

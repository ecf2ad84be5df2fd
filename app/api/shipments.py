"""The shipment registry: which VTEX invoice a tracking number belongs to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, field_validator

from app.api.deps import AdminDep, PartsDep, StoreDep
from app.api.views import shipment_json
from app.errors import NotFound
from app.normalize.model import invoice_number_problem

router = APIRouter(tags=["shipments"], dependencies=[AdminDep])

TrackingNumber = Annotated[str, Path(alias="trackingNumber", min_length=1, max_length=128)]


class ShipmentRegistration(BaseModel):
    orderId: str = Field(min_length=1, max_length=128)
    invoiceNumber: str = Field(min_length=1, max_length=128)
    carrier: str | None = Field(default=None, max_length=64)
    account: str | None = Field(default=None, max_length=128)

    @field_validator("invoiceNumber")
    @classmethod
    def _addressable(cls, value: str) -> str:
        problem = invoice_number_problem(value)
        if problem:
            raise ValueError(problem)
        return value


async def _shipment_or_404(store: StoreDep, tracking_number: str) -> dict[str, Any]:
    view = await store.get_shipment(tracking_number)
    if view is None:
        raise NotFound(f"no shipment or events for tracking number {tracking_number!r}")
    return shipment_json(view)


@router.put("/shipments/{trackingNumber}", responses={201: {"description": "registered"}})
async def register_shipment(
    tracking_number: TrackingNumber,
    registration: ShipmentRegistration,
    store: StoreDep,
    parts: PartsDep,
    response: Response,
) -> dict[str, Any]:
    """Register (201) or update (200) the invoice a tracking number belongs to."""
    result = await store.register_shipment(
        tracking_number.strip(),
        registration.orderId,
        registration.invoiceNumber,
        registration.carrier,
        registration.account,
        datetime.now(UTC),
    )
    if result.deliveries_queued:
        parts.wake_worker()
    response.status_code = 201 if result.created else 200
    return await _shipment_or_404(store, tracking_number.strip())


@router.get("/shipments/{trackingNumber}")
async def get_shipment(tracking_number: TrackingNumber, store: StoreDep) -> dict[str, Any]:
    """The shipment, its events, the last VTEX body sent and its deliveries with receipts."""
    return await _shipment_or_404(store, tracking_number)

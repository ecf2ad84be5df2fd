"""The shipment registry: which VTEX invoice a tracking number belongs to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.bodies import body_schema, read_json_body, validated
from app.api.deps import ADMIN_REFUSALS, AdminDep, PartsDep, StoreDep
from app.api.views import shipment_json
from app.errors import InvalidRequest, NotFound
from app.normalize.model import identifier_problem, invoice_number_problem

router = APIRouter(tags=["shipments"], dependencies=[AdminDep], responses=ADMIN_REFUSALS)

TrackingNumber = Annotated[str, Path(alias="trackingNumber", min_length=1, max_length=128)]
MAX_REGISTRATION_BYTES = 16 * 1024


class ShipmentRegistration(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    orderId: str = Field(min_length=1, max_length=128)
    invoiceNumber: str = Field(min_length=1, max_length=128)
    carrier: str | None = Field(default=None, max_length=64)
    account: str | None = Field(default=None, max_length=128)

    @field_validator("orderId", "carrier", "account")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        problem = value is not None and identifier_problem("", value)
        if problem:
            raise ValueError(problem.removeprefix(": "))
        return value

    @field_validator("invoiceNumber")
    @classmethod
    def _addressable(cls, value: str) -> str:
        problem = invoice_number_problem(value)
        if problem:
            raise ValueError(problem.removeprefix("invoiceNumber: "))
        return value


def _tracking_number(value: str) -> str:
    """The path's tracking number, trimmed; 422 when it is not an identifier (SPEC §12)."""
    problem = identifier_problem("trackingNumber", value)
    if problem:
        raise InvalidRequest(problem)
    return value.strip()


async def _shipment_or_404(store: StoreDep, tracking_number: str) -> dict[str, Any]:
    view = await store.get_shipment(tracking_number)
    if view is None:
        raise NotFound(f"no shipment or events for tracking number {tracking_number!r}")
    return shipment_json(view)


@router.put(
    "/shipments/{trackingNumber}",
    responses={
        201: {"description": "registered"},
        400: {"description": "the body is not JSON (invalid_json)"},
        413: {"description": "the body is over 16 KiB"},
        422: {"description": "a field is not valid (e.g. an invoice number with '/')"},
    },
    openapi_extra=body_schema(ShipmentRegistration),
)
async def register_shipment(
    tracking_number: TrackingNumber,
    request: Request,
    store: StoreDep,
    parts: PartsDep,
    response: Response,
) -> dict[str, Any]:
    """Register (201) or update (200) the invoice a tracking number belongs to.

    The body is ``{"orderId", "invoiceNumber", "carrier"?, "account"?}``; it is read only
    once the admin token has been checked.
    """
    number = _tracking_number(tracking_number)
    registration = validated(
        ShipmentRegistration, await read_json_body(request, MAX_REGISTRATION_BYTES)
    )
    result = await store.register_shipment(
        number,
        registration.orderId,
        registration.invoiceNumber,
        registration.carrier,
        registration.account,
        datetime.now(UTC),
    )
    if result.deliveries_queued:
        parts.wake_worker()
    response.status_code = 201 if result.created else 200
    return await _shipment_or_404(store, number)


@router.get(
    "/shipments/{trackingNumber}",
    responses={404: {"description": "no shipment or events for this tracking number"}},
)
async def get_shipment(tracking_number: TrackingNumber, store: StoreDep) -> dict[str, Any]:
    """The shipment, its events, the last VTEX body sent and its deliveries with receipts."""
    return await _shipment_or_404(store, _tracking_number(tracking_number))

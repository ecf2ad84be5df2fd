"""The relay's own webhook format (version 1), for anyone who can send custom webhooks.

::

    {
      "trackingNumber": "BR123456789",
      "orderId": "1172452900788-01",          // optional, registers the shipment
      "invoiceNumber": "000030711",           // optional, with orderId
      "trackingUrl": "https://carrier.example/t/BR123456789",   // optional
      "events": [
        {"time": "2026-11-20T14:03:00-03:00", "status": "in_transit",
         "description": "Left the sorting centre", "city": "Curitiba", "state": "PR"}
      ]
    }

``status`` is one of the relay's statuses (``info_received``, ``in_transit``,
``out_for_delivery``, ``delivered``, ``exception``, ``returned``, ``unknown``);
``city`` and ``state`` may be omitted or null. A ``time`` without an offset is
read in ``RELAY_CARRIER_DEFAULT_TIMEZONE``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.normalize.model import (
    ParseContext,
    PayloadRejected,
    ShipmentUpdate,
    Status,
    TrackingEvent,
    invoice_number_problem,
)
from app.normalize.times import parse_timestamp
from app.problems import describe_problems


class _GenericEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    time: str = Field(min_length=1)
    status: Status
    description: str
    city: str | None = None
    state: str | None = None


class _GenericWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    trackingNumber: str = Field(min_length=1)
    orderId: str | None = Field(default=None, min_length=1)
    invoiceNumber: str | None = Field(default=None, min_length=1)
    trackingUrl: str | None = None
    events: list[_GenericEvent]


def parse(payload: Any, context: ParseContext) -> list[ShipmentUpdate]:
    """Read one generic webhook; the payload is checked field by field."""
    try:
        webhook = _GenericWebhook.model_validate(payload)
    except ValidationError as error:
        raise PayloadRejected(describe_problems(error.errors(), limit=1)) from None
    if (webhook.orderId is None) != (webhook.invoiceNumber is None):
        raise PayloadRejected("orderId and invoiceNumber must be given together")
    problem = webhook.invoiceNumber and invoice_number_problem(webhook.invoiceNumber)
    if problem:
        raise PayloadRejected(problem)
    events = tuple(
        TrackingEvent(
            occurred_at=parse_timestamp(event.time, context.default_zone, field=f"events.{i}.time"),
            status=event.status,
            carrier_status=event.status.value,
            description=event.description,
            city=event.city or "",
            state=event.state or "",
        )
        for i, event in enumerate(webhook.events)
    )
    return [
        ShipmentUpdate(
            tracking_number=webhook.trackingNumber,
            events=events,
            order_id=webhook.orderId,
            invoice_number=webhook.invoiceNumber,
            tracking_url=webhook.trackingUrl,
        )
    ]

"""How the relay's records look in JSON answers (and in the CLI's output)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.store import DeliveryView, QuarantinedWebhook, Receipt, ShipmentView


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def receipt_json(receipt: Receipt | None) -> dict[str, Any] | None:
    """VTEX's receipt as VTEX gave it: ``{date, orderId, receipt}``."""
    if receipt is None:
        return None
    return {"date": receipt.date, "orderId": receipt.order_id, "receipt": receipt.receipt}


def delivery_json(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "orderId": view.order_id,
        "invoiceNumber": view.invoice_number,
        "account": view.account,
        "state": view.state,
        "queuedAt": _iso(view.queued_at),
        "nextAttemptAt": _iso(view.next_attempt_at),
        "deliveredAt": _iso(view.delivered_at),
        "attemptCount": view.attempt_count,
        "lastStatus": view.last_status,
        "lastError": view.last_error,
        "receipt": receipt_json(view.receipt),
        "invoiceCheck": (
            {"checkedBy": view.invoice_check.checked_by, "at": _iso(view.invoice_check.checked_at)}
            if view.invoice_check
            else None
        ),
        "attempts": [
            {
                "attempt": a.attempt,
                "startedAt": _iso(a.started_at),
                "durationMs": round(a.duration_ms, 1),
                "statusCode": a.status_code,
                "responseBody": a.response_body,
                "error": a.error,
            }
            for a in view.attempts
        ],
    }


def shipment_json(view: ShipmentView) -> dict[str, Any]:
    return {
        "trackingNumber": view.tracking_number,
        "orderId": view.order_id,
        "invoiceNumber": view.invoice_number,
        "carrier": view.carrier,
        "account": view.account,
        "trackingUrl": view.tracking_url,
        "registered": view.registered,
        "firstSeenAt": _iso(view.first_seen_at),
        "events": [
            {
                "time": _iso(e.event.occurred_at),
                "status": e.event.status.value,
                "carrierStatus": e.event.carrier_status,
                "description": e.event.description,
                "city": e.event.city,
                "state": e.event.state,
                "carrier": e.carrier,
                "receivedAt": _iso(e.received_at),
                "webhookId": e.webhook_id,
            }
            for e in view.events
        ],
        "lastBody": view.last_body,
        "deliveries": [delivery_json(d) for d in view.deliveries],
    }


def quarantined_json(webhook: QuarantinedWebhook) -> dict[str, Any]:
    return {
        "webhookId": webhook.id,
        "carrier": webhook.carrier,
        "receivedAt": _iso(webhook.received_at),
        "error": webhook.error,
        "bytes": len(webhook.body),
    }

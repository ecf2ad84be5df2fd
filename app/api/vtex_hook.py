"""``POST /vtex/orders-hook``: VTEX's orders hook (SPEC §4), answered within its 5 s."""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.deps import Parts
from app.api.webhooks import read_body
from app.deliver.orders import HOOK_HEADER
from app.errors import BadRequest, Unauthorized

router = APIRouter(tags=["vtex"])
log = structlog.get_logger("relay.orders")

MAX_NOTIFICATION_BYTES = 64 * 1024


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("the notification is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the notification must be a JSON object")
    return payload


@router.post(
    "/vtex/orders-hook",
    responses={
        400: {"description": "not a JSON notification"},
        401: {"description": f"missing or wrong {HOOK_HEADER} (the ping needs none)"},
    },
)
async def orders_hook(request: Request) -> JSONResponse:
    """``{"hookConfig": "ping"}`` gets 200. An ``invoiced`` notification is queued durably
    (its order is read and its packages registered right after); other states are ignored.
    """
    parts: Parts = request.app.state.parts
    payload = _object(await read_body(request, MAX_NOTIFICATION_BYTES))
    if payload.get("hookConfig") == "ping":
        return JSONResponse({"hookConfig": "pong"})
    secret = parts.settings.vtex_hook_secret
    if secret is None:
        raise Unauthorized("orders hook notifications are refused: set RELAY_VTEX_HOOK_SECRET")
    given = request.headers.get(HOOK_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise Unauthorized(f"missing or wrong {HOOK_HEADER} header")
    order_id = payload.get("OrderId")
    state = payload.get("State")
    if not isinstance(order_id, str) or not order_id.strip():
        raise BadRequest("the notification has no OrderId")
    if state != "invoiced":
        return JSONResponse({"orderId": order_id, "ignored": f"state {state!r}"})
    origin = payload.get("Origin")
    account = origin.get("Account") if isinstance(origin, dict) else None
    account = account.strip() if isinstance(account, str) and account.strip() else None
    await parts.store.queue_order_notification(order_id.strip(), account, datetime.now(UTC))
    parts.wake_worker()
    log.info("order.invoiced", orderId=order_id, account=account)
    return JSONResponse({"orderId": order_id, "queued": True})

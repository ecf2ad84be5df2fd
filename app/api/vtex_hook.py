"""``POST /vtex/orders-hook``: VTEX's orders hook (SPEC §4), answered within its 5 s."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from app.api.bodies import read_body, read_json_body
from app.api.deps import Parts
from app.deliver.orders import HOOK_HEADER
from app.deliver.vtex_order import read_notification
from app.errors import InvalidJson, PayloadTooLarge, Unauthorized
from app.json_reader import read_json

router = APIRouter(tags=["vtex"])
log = structlog.get_logger("relay.orders")

MAX_NOTIFICATION_BYTES = 64 * 1024
MAX_PING_BYTES = 256
"""VTEX's ping is ``{"hookConfig": "ping"}``: a caller without the token gets no more read."""


def _has_token(request: Request, secret: SecretStr | None) -> bool:
    given = request.headers.get(HOOK_HEADER)
    return (
        secret is not None
        and given is not None
        and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())
    )


async def _is_ping(request: Request) -> bool:
    """Whether the body is VTEX's ping; a body too long to be one is not read further."""
    try:
        payload = read_json(await read_body(request, MAX_PING_BYTES))
    except (InvalidJson, PayloadTooLarge):
        return False
    return isinstance(payload, dict) and payload.get("hookConfig") == "ping"


@router.post(
    "/vtex/orders-hook",
    responses={
        400: {"description": "not a JSON notification"},
        401: {"description": f"missing or wrong {HOOK_HEADER} (the ping needs none)"},
        422: {"description": "the notification's OrderId or Origin.Account is not an id"},
    },
)
async def orders_hook(request: Request) -> JSONResponse:
    """``{"hookConfig": "ping"}`` gets 200. An ``invoiced`` notification is queued durably
    (its order is read and its packages registered right after); other states are ignored.

    Without the token only a ping (a few bytes) is read; anything else is refused unread.
    """
    parts: Parts = request.app.state.parts
    secret = parts.settings.vtex_hook_secret
    if not _has_token(request, secret):
        if await _is_ping(request):
            return JSONResponse({"hookConfig": "pong"})
        if secret is None:
            raise Unauthorized("orders hook notifications are refused: set RELAY_VTEX_HOOK_SECRET")
        raise Unauthorized(f"missing or wrong {HOOK_HEADER} header")
    payload = await read_json_body(request, MAX_NOTIFICATION_BYTES)
    if isinstance(payload, dict) and payload.get("hookConfig") == "ping":
        return JSONResponse({"hookConfig": "pong"})
    notification = read_notification(payload)
    if notification.state != "invoiced":
        shown = notification.state[:64] or "(none)"
        return JSONResponse({"orderId": notification.order_id, "ignored": f"state {shown!r}"})
    await parts.store.queue_order_notification(
        notification.order_id, notification.account, datetime.now(UTC)
    )
    parts.wake_worker()
    log.info("order.invoiced", orderId=notification.order_id, account=notification.account)
    return JSONResponse({"orderId": notification.order_id, "queued": True})

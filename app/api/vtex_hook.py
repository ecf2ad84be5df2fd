"""``POST /vtex/orders-hook``: VTEX's orders hook (SPEC §4), answered within its 5 s."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from app.api.bodies import InvalidRequest, read_body, read_json_body
from app.api.deps import Parts
from app.deliver.orders import HOOK_HEADER
from app.errors import BadRequest, InvalidJson, PayloadTooLarge, Unauthorized
from app.ingest.json_reader import read_json
from app.normalize.model import identifier_problem

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


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


@router.post(
    "/vtex/orders-hook",
    responses={
        400: {"description": "not a JSON notification"},
        401: {"description": f"missing or wrong {HOOK_HEADER} (the ping needs none)"},
        422: {"description": "the notification's OrderId is not an order id"},
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
    if not isinstance(payload, dict):
        raise BadRequest("the notification must be a JSON object")
    if payload.get("hookConfig") == "ping":
        return JSONResponse({"hookConfig": "pong"})
    order_id = _text(payload.get("OrderId"))
    if order_id is None:
        raise BadRequest("the notification has no OrderId")
    problem = identifier_problem("OrderId", order_id)
    if problem:
        raise InvalidRequest(problem)
    state = payload.get("State")
    if state != "invoiced":
        shown = state if isinstance(state, str) and len(state) <= 64 else "(not a known state)"
        return JSONResponse({"orderId": order_id, "ignored": f"state {shown!r}"})
    origin = payload.get("Origin")
    account = _text(origin.get("Account")) if isinstance(origin, dict) else None
    if account is not None and identifier_problem("Account", account):
        account = None  # not an account name: the default credentials apply
    await parts.store.queue_order_notification(order_id, account, datetime.now(UTC))
    parts.wake_worker()
    log.info("order.invoiced", orderId=order_id, account=account)
    return JSONResponse({"orderId": order_id, "queued": True})

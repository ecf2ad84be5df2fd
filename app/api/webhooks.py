"""``POST /webhooks/{carrier}``: read the body within the limit, hand it to intake."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.bodies import read_body
from app.api.deps import Parts

router = APIRouter(tags=["webhooks"])


class WebhookAccepted(BaseModel):
    webhook_id: str
    events: int
    duplicates: int


class AccessToken(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


@router.post(
    "/webhooks/ups/token",
    response_model=AccessToken,
    responses={
        400: {"description": "grant_type is not client_credentials"},
        401: {"description": "unknown client id or wrong client secret (invalid_client)"},
    },
)
async def ups_token(request: Request) -> JSONResponse:
    """UPS Track Alert's OAuth 2.0 client-credentials token endpoint.

    UPS authenticates with ``RELAY_CARRIERS__UPS__CLIENT_ID`` and ``__SECRET`` (HTTP Basic or
    form fields) and sends the token it gets as ``Authorization: Bearer`` on every webhook.
    """
    parts: Parts = request.app.state.parts
    body = await read_body(request, 16 * 1024)
    headers = {key.lower(): value for key, value in request.headers.items()}
    issued = parts.intake.issue_token("ups", headers, body)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post(
    "/webhooks/{carrier}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={
        401: {"description": "bad or missing signature"},
        404: {"description": "unknown carrier"},
        413: {"description": "body over RELAY_MAX_BODY_BYTES"},
        415: {"description": "not JSON"},
        422: {"description": "the adapter could not read it; kept in quarantine"},
        503: {"description": "the database cannot be reached: nothing was stored, retry"},
    },
)
async def receive_webhook(
    carrier: Annotated[str, Path(description="carrier name, e.g. generic, aftership")],
    request: Request,
) -> JSONResponse:
    """Verify, normalize and durably store a carrier webhook; 202 only after the commit."""
    # The hot path: no dependency injection and no response-model round trip (the model
    # above documents the answer); the JSON is the same.
    parts: Parts = request.app.state.parts
    try:
        parts.intake.carrier(carrier)
        body = await read_body(request, parts.settings.max_body_bytes)
        headers = {key.lower(): value for key, value in request.headers.items()}
        accepted = await parts.intake.accept(
            carrier, headers, body, request.headers.get("content-type"), request.query_params
        )
    except Exception as error:
        parts.metrics.webhook_answered(carrier, error)
        raise
    parts.metrics.webhook_answered(carrier, None)
    parts.metrics.events_stored(carrier, accepted.new_events, accepted.duplicate_events)
    return JSONResponse(
        {
            "webhook_id": accepted.webhook_id,
            "events": accepted.new_events,
            "duplicates": accepted.duplicate_events,
        },
        status_code=202,
    )

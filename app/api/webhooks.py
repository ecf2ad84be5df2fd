"""``POST /webhooks/{carrier}``: read the body within the limit, hand it to intake."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.api.bodies import read_body
from app.api.deps import Parts
from app.api.webhook_route import webhook_answer
from app.ingest.intake import log_accepted

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
) -> Response:
    """Verify, normalize and durably store a carrier webhook; 202 only after the commit."""
    # relay serve answers this in front of the app (webhook_route.WebhookRoute); this route
    # documents it and answers the same way when the app is served without that front.
    answer = await webhook_answer(request.app.state.parts, carrier, request.scope, request.receive)
    if answer.accepted is not None:
        log_accepted(answer.accepted)  # RequestLogMiddleware writes the access line
    return Response(answer.body, answer.status, media_type="application/json")

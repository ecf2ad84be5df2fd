"""``POST /webhooks/{carrier}`` answered as plain ASGI, ahead of the framework.

The webhook is the one request that comes by the thousand a second. Through FastAPI it
paid for routing over every route, dependency solving, a ``Request`` object and the
exception middleware before the endpoint ran: about 60 % of the event loop's time. This
middleware answers it itself, with the same answers (the same intake, metrics, error body
and status as the routes and handlers the rest of the API uses); every other request goes
on to the app. The FastAPI route in ``webhooks.py`` still documents it in ``/openapi.json``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.deps import Parts
from app.api.errors import answer_for
from app.errors import BadRequest, PayloadTooLarge

log = structlog.get_logger("relay.api")

PREFIX = "/webhooks/"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class WebhookRoute:
    """Answers ``POST /webhooks/<carrier>`` (one path segment); passes the rest on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            carrier = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
            parts = getattr(scope["app"].state, "parts", None)
            if carrier and "/" not in carrier and parts is not None:
                status, body, headers = await _receive_webhook(parts, carrier, scope, receive)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            *_JSON_HEADERS,
                            (b"content-length", str(len(body)).encode()),
                            *headers,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


async def _receive_webhook(
    parts: Parts, carrier: str, scope: Scope, receive: Receive
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Verify, normalize and durably store a carrier webhook; 202 only after the commit."""
    try:
        parts.intake.carrier(carrier)
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        body = await _read_body(headers, receive, parts.settings.max_body_bytes)
        query = (
            dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            if scope["query_string"]
            else None
        )
        accepted = await parts.intake.accept(
            carrier, headers, body, headers.get("content-type"), query
        )
    except Exception as error:
        parts.metrics.webhook_answered(carrier, error)
        status, answer, extra_headers = answer_for(error, scope["path"])
        return status, orjson.dumps(answer), extra_headers
    parts.metrics.webhook_answered(carrier, None)
    parts.metrics.events_stored(carrier, accepted.new_events, accepted.duplicate_events)
    answer = {
        "webhook_id": accepted.webhook_id,
        "events": accepted.new_events,
        "duplicates": accepted.duplicate_events,
    }
    return 202, orjson.dumps(answer), []


async def _read_body(headers: dict[str, str], receive: Receive, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` bytes without reading it all."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Nothing was stored and nobody is listening; the sender will retry.
            raise BadRequest("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)

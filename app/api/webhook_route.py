"""``POST /webhooks/{carrier}`` answered as plain ASGI, in front of the framework.

The webhook is the one request that comes by the thousand a second. Through FastAPI it
paid for its middleware (telemetry, body limit, server errors, exceptions), routing over
every route, dependency solving and a ``Request`` object before the endpoint ran: well over
half of the event loop's time. ``relay serve`` puts :class:`WebhookRoute` in front of the
app: it answers webhooks itself, with the same answers (the same intake, metrics, error
bodies, request id and access line as the rest of the API), and passes everything else on.
The FastAPI route in ``webhooks.py`` documents it in ``/openapi.json`` and answers the same
way through :func:`webhook_answer` when the app is served without this front.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
import structlog
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from app.api.bodies import read_received
from app.api.deps import Parts
from app.api.errors import STORE_RETRY_AFTER, answer_for
from app.api.request_log import access_fields, log_access, request_id_from
from app.ingest.intake import Accepted, log_accepted

PREFIX = "/webhooks/"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    accepted: Accepted | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()


class WebhookRoute:
    """Answers ``POST /webhooks/<carrier>`` (one path segment); passes the rest to ``app``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts: Parts | None = getattr(self.app.state, "parts", None)
        if scope["type"] == "http" and scope["method"] == "POST" and parts is not None:
            carrier = _carrier_of(scope["path"])
            if carrier is not None:
                await self._answer(parts, carrier, scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(
        parts: Parts, carrier: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request_id = request_id_from(scope["headers"])
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        answer = Answer(500, b"")
        try:
            answer = await webhook_answer(parts, carrier, scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(answer.body)).encode()),
                        (b"x-request-id", request_id.encode()),
                        *answer.headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            # An accepted webhook's own line ends its request; anything else gets the access
            # line, with the carrier its path named.
            if answer.accepted is not None:
                log_accepted(answer.accepted, **access_fields(scope, answer.status, started))
            else:
                log_access(scope, answer.status, started, carrier=carrier)
            structlog.contextvars.reset_contextvars(**tokens)


def _carrier_of(path: str) -> str | None:
    if not path.startswith(PREFIX):
        return None
    carrier = path[len(PREFIX) :]
    return carrier if carrier and "/" not in carrier else None


async def webhook_answer(parts: Parts, carrier: str, scope: Scope, receive: Receive) -> Answer:
    """Verify, normalize and durably store a carrier webhook; 202 only after the commit."""
    try:
        parts.intake.carrier(carrier)
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        body = await read_received(
            headers.get("content-length"), receive, parts.settings.max_body_bytes
        )
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
        status, refusal = answer_for(error, scope["path"])
        # 503: nothing was stored (the database is away or cannot write): the carrier retries.
        later = ((b"retry-after", STORE_RETRY_AFTER.encode()),) if status == 503 else ()
        return Answer(status, orjson.dumps(refusal), headers=later)
    parts.metrics.webhook_answered(carrier, None)
    parts.metrics.events_stored(carrier, accepted.new_events, accepted.duplicate_events)
    stored = {
        "webhook_id": accepted.webhook_id,
        "events": accepted.new_events,
        "duplicates": accepted.duplicate_events,
    }
    return Answer(202, orjson.dumps(stored), accepted)

"""A request id on every log line of a request, and one access line per request.

Replaces uvicorn's access log (its stdlib record per request was the costliest part of the
webhook path's logging) with a structlog line in the relay's own format. The id comes from
the caller's ``X-Request-ID`` when it is a plausible id, else a fresh one; it is echoed in
the response's ``X-Request-ID``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.safety import SAFETY_HEADERS
from app.ids import unique_hex
from app.logs import redact_query_secrets

log = structlog.get_logger("relay.access")

_PLAUSIBLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
BROWSER_PATHS = ("/console", "/docs")
"""Where a browser is served pages: every answer there has the safety headers."""
SAFETY_HEADER_PAIRS = [
    (name.lower().encode(), value.encode()) for name, value in SAFETY_HEADERS.items()
]
# Probes and scrapes arrive every few seconds from Kubernetes and Prometheus.
QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's ``X-Request-ID`` when it looks like an id, else a new one."""
    for name, value in headers:
        if name == b"x-request-id" and _PLAUSIBLE_ID.fullmatch(value):
            return value.decode()
    return unique_hex()


class RequestLogMiddleware:
    """Pure ASGI (no per-request task or body wrapping): binds ``request_id`` for the
    request's log lines and writes the access line when the response has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        for_browser = scope["path"].startswith(BROWSER_PATHS)
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500  # what the server answers when the app raised before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                if for_browser:
                    headers = with_safety_headers(headers)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_access(scope, status, started)
            structlog.contextvars.reset_contextvars(**tokens)


def with_safety_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with every safety header of a browser's page that they lack (SPEC §10):
    redirects and the framework's own errors under ``/console`` carry them too."""
    present = {name.lower() for name, _ in headers}
    return headers + [pair for pair in SAFETY_HEADER_PAIRS if pair[0] not in present]


def access_fields(scope: Scope, status: int, started: float) -> dict[str, Any]:
    """Method, path (secret query values redacted), status, duration and client."""
    path = scope["path"]
    query = scope["query_string"]
    return {
        "method": scope["method"],
        "path": redact_query_secrets(path + "?" + query.decode("latin-1")) if query else path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        "client": scope["client"][0] if scope.get("client") else None,
    }


def log_access(scope: Scope, status: int, started: float, **more: Any) -> None:
    """The request's access line (debug for probes and scrapes that went well)."""
    fields = access_fields(scope, status, started) | more
    if scope["path"] in QUIET_PATHS and status < 400:
        log.debug("http.request", **fields)
    else:
        log.info("http.request", **fields)

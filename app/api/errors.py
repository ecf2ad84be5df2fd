"""Every error answer is ``{"error": code, "detail": sentence}``; nothing leaks a traceback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import RelayError
from app.problems import describe_problems
from app.store import StoreUnavailable

log = structlog.get_logger("relay.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}
"""Starlette's own refusals (routing, body parsing) with the codes of the README's table."""


def error_response(
    status: int,
    code: str,
    detail: str,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": code, "detail": detail, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def answer_for(error: Exception, path: str) -> tuple[int, dict[str, Any]]:
    """Status and body of the answer to a route that raised ``error``, for the routes
    answered without the framework (called while ``error`` is being handled)."""
    if isinstance(error, RelayError):
        return error.status_code, {"error": error.code, "detail": error.detail, **error.extra}
    if isinstance(error, StoreUnavailable):
        return 503, store_unavailable(error, path)
    log.exception("request.failed", path=path)
    return 500, {"error": "internal_error", "detail": FAILED}


def store_unavailable(error: StoreUnavailable, path: str) -> dict[str, str]:
    """Nothing was committed, so nothing was acknowledged: the sender must retry."""
    log.warning("request.store_unavailable", path=path, reason=str(error))
    return {"error": "unavailable", "detail": f"{error}; nothing was stored, retry later"}


FAILED = "the relay failed to handle this request"
STORE_RETRY_AFTER = "30"
"""Seconds a sender is asked to wait when the database cannot store its request."""


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RelayError)
    async def _relay_error(_request: Request, error: RelayError) -> JSONResponse:
        return error_response(error.status_code, error.code, error.detail, error.extra)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, error: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            store_unavailable(error, request.url.path),
            status_code=503,
            headers={"Retry-After": STORE_RETRY_AFTER},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", describe_problems(error.errors()))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException) -> JSONResponse:
        fallback = "bad_request" if error.status_code < 500 else "internal_error"
        code = _HTTP_CODES.get(error.status_code, fallback)
        return error_response(error.status_code, code, str(error.detail), headers=error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("request.failed", path=request.url.path)
        return error_response(500, "internal_error", FAILED)

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
from app.store.engine import StoreUnavailable

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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RelayError)
    async def _relay_error(_request: Request, error: RelayError) -> JSONResponse:
        return error_response(error.status_code, error.code, error.detail, error.extra)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(request: Request, error: StoreUnavailable) -> JSONResponse:
        # Nothing was committed, so nothing was acknowledged: the sender must retry.
        log.warning("request.store_unavailable", path=request.url.path, reason=str(error))
        return error_response(503, "unavailable", f"{error}; nothing was stored, retry later")

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
        return error_response(500, "internal_error", "the relay failed to handle this request")

"""Errors the relay answers with: ``{"error": code, "detail": sentence}`` and a status."""

from __future__ import annotations


class RelayError(Exception):
    """An error meant for the client; ``detail`` must never contain a secret."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, **extra: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class BadRequest(RelayError):
    status_code = 400
    code = "bad_request"


class Unauthorized(RelayError):
    status_code = 401
    code = "unauthorized"


class NotFound(RelayError):
    status_code = 404
    code = "not_found"


class Conflict(RelayError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(RelayError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(RelayError):
    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(RelayError):
    status_code = 422
    code = "unprocessable"


class Unavailable(RelayError):
    status_code = 503
    code = "unavailable"

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


class InvalidJson(BadRequest):
    """A body that is not JSON the relay reads (syntax, nesting); ``detail`` says where."""

    code = "invalid_json"


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


class InvalidRequest(Unprocessable):
    """A field, path or query value that is not valid: ``detail`` is ``field: problem``."""

    code = "invalid_request"


class Unavailable(RelayError):
    status_code = 503
    code = "unavailable"


class OAuthError(RelayError):
    """An OAuth 2.0 token request refused (RFC 6749 §5.2): ``error`` is the OAuth code."""

    def __init__(self, code: str, detail: str, status_code: int = 400) -> None:
        super().__init__(detail, error_description=detail)
        self.code = code
        self.status_code = status_code

"""Webhook authentication schemes, as pure functions of (secret, headers, raw body, now).

Each verifier returns ``None`` when the request is authentic and raises
:class:`SignatureInvalid` otherwise. Comparisons are constant-time, on the raw
body bytes; error messages never contain the secret or the signature value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime

STANDARD_WEBHOOKS_TOLERANCE_SECONDS = 5 * 60


class SignatureInvalid(Exception):
    """The request is not authentic; the message says why, never the secret."""


Verifier = Callable[[str, Mapping[str, str], bytes, datetime], None]


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureInvalid(f"missing {name} header")
    return value


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    if not key:
        # An empty key is one anyone can sign with.
        raise SignatureInvalid("no secret configured for this carrier")
    return hmac.new(key, message, hashlib.sha256).digest()


def standard_webhooks_key(secret: str) -> bytes:
    """The signing key of a Standard Webhooks secret: ``whsec_<base64>`` or plain text."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass
    return secret.encode()


def sign_standard_webhooks(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for a message (used by tests and by ``relay``'s docs)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = _hmac_sha256(standard_webhooks_key(secret), signed)
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhooks(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> None:
    """Standard Webhooks (standardwebhooks.com): ``webhook-id``, ``-timestamp``, ``-signature``.

    The signature list is space separated (``v1,<base64> v1,<base64>``) so senders
    can rotate secrets; any matching ``v1`` entry is accepted. The timestamp must be
    within five minutes of ``now``, either way.
    """
    msg_id = _header(headers, "webhook-id")
    raw_timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureInvalid("webhook-timestamp is not an integer") from None
    if abs(now.timestamp() - timestamp) > STANDARD_WEBHOOKS_TOLERANCE_SECONDS:
        raise SignatureInvalid("webhook-timestamp is more than 5 minutes away from now")
    expected = sign_standard_webhooks(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureInvalid("webhook-signature does not match")


def verify_aftership(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """AfterShip: ``aftership-hmac-sha256`` = base64(HMAC-SHA256(raw body, secret))."""
    received = _header(headers, "aftership-hmac-sha256").strip()
    expected = base64.b64encode(_hmac_sha256(secret.encode(), body)).decode()
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise SignatureInvalid("aftership-hmac-sha256 does not match")


def verify_easypost(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """EasyPost: ``X-Hmac-Signature: hmac-sha256-hex=<hex>``, keyed with NFKD(secret)."""
    received = _header(headers, "x-hmac-signature").strip()
    key = unicodedata.normalize("NFKD", secret).encode()
    expected = "hmac-sha256-hex=" + _hmac_sha256(key, body).hex()
    if not hmac.compare_digest(received.lower().encode(), expected.encode()):
        raise SignatureInvalid("X-Hmac-Signature does not match")

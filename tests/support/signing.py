"""How each carrier signs its webhooks, written from the carriers' docs (not from app/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import unicodedata
import uuid


def standard_webhooks_headers(
    secret: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks: HMAC-SHA256 of ``id.timestamp.body``; ``whsec_`` secrets are base64."""
    msg_id = "msg_" + uuid.uuid4().hex
    ts = int(time.time()) if timestamp is None else timestamp
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def aftership_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "aftership-hmac-sha256": base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def easypost_headers(secret: str, body: bytes) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", secret).encode()
    return {
        "x-hmac-signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "content-type": "application/json",
    }

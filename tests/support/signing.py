"""How each carrier signs its webhooks, written from the carriers' docs (not from app/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


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


def shippo_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Shippo's opt-in HMAC: ``t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"shippo-auth-signature": f"t={ts},v1={digest}", "content-type": "application/json"}


def seventeen_track_headers(secret: str, body: bytes) -> dict[str, str]:
    """17TRACK: ``sign`` = hex SHA-256 of ``<body>/<security key>``."""
    sign = hashlib.sha256(body + b"/" + secret.encode()).hexdigest()
    return {"sign": sign, "content-type": "application/json"}


def melhor_envio_headers(secret: str, body: bytes) -> dict[str, str]:
    """Melhor Envio: ``X-ME-Signature`` = base64 HMAC-SHA256 of the body (app client secret)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"x-me-signature": base64.b64encode(digest).decode(), "content-type": "application/json"}


def fedex_headers(secret: str, body: bytes) -> dict[str, str]:
    """FedEx AIV: ``fdx-signature`` = base64 HMAC-SHA256 of the body, keyed with the webhook's
    security token (the Java code on FedEx's validation page; standard base64, padded)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"fdx-signature": base64.b64encode(digest).decode(), "content-type": "application/json"}


def bearer_headers(secret: str, body: bytes) -> dict[str, str]:
    """A fixed credential (Intelipost, DHL, and UPS's issued token) as a Bearer token."""
    return {"authorization": f"Bearer {secret}", "content-type": "application/json"}


def basic_headers(secret: str, body: bytes, user: str = "carrier") -> dict[str, str]:
    """A fixed credential as the password of HTTP Basic."""
    pair = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"authorization": f"Basic {pair}", "content-type": "application/json"}


def hex_hmac_headers(header: str) -> Callable[[str, bytes], dict[str, str]]:
    """A declared carrier's ``hmac-sha256`` scheme with hex encoding in ``header``."""

    def sign(secret: str, body: bytes) -> dict[str, str]:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {header: digest, "content-type": "application/json"}

    return sign


class ShipEngineSigner:
    """A ShipEngine key pair: ``public_pem`` for the relay, ``headers`` signs like ShipEngine
    (RSA-SHA256, PKCS#1 v1.5, over ``<timestamp>.<body>``)."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def headers(self, _secret: str, body: bytes) -> dict[str, str]:
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = self._key.sign(
            f"{timestamp}.".encode() + body, padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "x-shipengine-rsa-sha256-key-id": "ShipEngine-test-key",
            "x-shipengine-rsa-sha256-signature": base64.b64encode(signature).decode(),
            "x-shipengine-timestamp": timestamp,
            "content-type": "application/json",
        }

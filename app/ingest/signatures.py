"""Webhook authentication schemes, as pure functions of (secret, headers, raw body, now).

Each verifier returns ``None`` when the request is authentic and raises
:class:`SignatureInvalid` otherwise. Comparisons are constant-time, on the raw
body bytes; error messages never contain the secret or the signature value.
``secret`` is the carrier's configured credential: a shared secret, a static token,
the OAuth client secret (UPS) or a PEM public key (ShipEngine).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
    return hmac.digest(key, message, "sha256")  # one-shot: OpenSSL's, no HMAC object


def _within_tolerance(timestamp: float, now: datetime, header: str) -> None:
    """Replay protection: ``timestamp`` (unix seconds) within five minutes of ``now``."""
    try:
        skew = abs(now.timestamp() - float(timestamp))
    except OverflowError:
        skew = math.inf
    if not skew <= STANDARD_WEBHOOKS_TOLERANCE_SECONDS:  # also refuses NaN
        raise SignatureInvalid(f"{header} is more than 5 minutes away from now")


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
    _within_tolerance(timestamp, now, "webhook-timestamp")
    expected = sign_standard_webhooks(secret, msg_id, timestamp, body).encode()
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureInvalid("webhook-signature does not match")


def verify_easypost(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """EasyPost: ``X-Hmac-Signature: hmac-sha256-hex=<hex>``, keyed with NFKD(secret)."""
    received = _header(headers, "x-hmac-signature").strip()
    key = unicodedata.normalize("NFKD", secret).encode()
    expected = "hmac-sha256-hex=" + _hmac_sha256(key, body).hex()
    if not hmac.compare_digest(received.lower().encode(), expected.encode()):
        raise SignatureInvalid("X-Hmac-Signature does not match")


# --- HMAC of the body, in a header ------------------------------------------------------

Encoding = Literal["hex", "base64"]


def hmac_sha256_verifier(header: str, encoding: Encoding = "hex", prefix: str = "") -> Verifier:
    """A verifier of ``<header>: <prefix><hex or base64 of HMAC-SHA256(secret, raw body)>``.

    Hex is compared case-insensitively; the prefix (``sha256=``...) must be present.
    """
    name = header.lower()

    def verify(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        received = _header(headers, name).strip()
        digest = _hmac_sha256(secret.encode(), body)
        expected = prefix + (
            digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
        )
        if encoding == "hex":
            received, expected = received.lower(), expected.lower()
        if not hmac.compare_digest(received.encode(), expected.encode()):
            raise SignatureInvalid(f"{header} does not match")

    return verify


verify_aftership = hmac_sha256_verifier("aftership-hmac-sha256", "base64")
"""AfterShip: ``aftership-hmac-sha256`` = base64(HMAC-SHA256(raw body, secret))."""

verify_melhor_envio = hmac_sha256_verifier("X-ME-Signature", "base64")
"""Melhor Envio: ``X-ME-Signature`` = base64(HMAC-SHA256(raw body, app client secret))."""


_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


def verify_fedex(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """FedEx AIV: ``fdx-signature`` = base64(HMAC-SHA256(key=security token, msg=raw body)).

    That is what the Java code of FedEx's validation page computes; its prose ("SHA256(
    security token + payload)", "hex encoding") contradicts the code and is not followed.
    The base64 alphabet and padding are not documented, so the value is compared as the
    32 bytes it encodes: standard or URL-safe alphabet, padded or not (each spelling of the
    same MAC, so nothing weaker gets through).
    """
    received = _header(headers, "fdx-signature").strip()
    expected = _hmac_sha256(secret.encode(), body)
    padded = received.translate(_URL_SAFE_TO_STANDARD) + "=" * (-len(received) % 4)
    try:
        presented = base64.b64decode(padded, validate=True)
    except ValueError:  # binascii.Error or non-ASCII text
        raise SignatureInvalid("fdx-signature is not base64") from None
    if not hmac.compare_digest(presented, expected):
        raise SignatureInvalid("fdx-signature does not match")


def verify_shippo(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """Shippo: ``Shippo-Auth-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.

    ``t`` must be within five minutes of ``now``. (Shippo's other option, a ``?token=``
    in the URL, is checked by the intake: see :attr:`Carrier.url_token`.)
    """
    fields = dict(
        part.strip().split("=", 1)
        for part in _header(headers, "shippo-auth-signature").split(",")
        if "=" in part
    )
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        raise SignatureInvalid("Shippo-Auth-Signature has no integer t=") from None
    _within_tolerance(timestamp, now, "Shippo-Auth-Signature t")
    expected = _hmac_sha256(secret.encode(), f"{timestamp}.".encode() + body).hex()
    if not hmac.compare_digest(fields.get("v1", "").strip().lower().encode(), expected.encode()):
        raise SignatureInvalid("Shippo-Auth-Signature does not match")


def verify_17track(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """17TRACK: ``sign`` = hex SHA-256 of ``<raw body>/<security key>`` (a plain hash, no HMAC)."""
    received = _header(headers, "sign").strip().lower()
    if not secret:
        raise SignatureInvalid("no secret configured for this carrier")
    expected = hashlib.sha256(body + b"/" + secret.encode()).hexdigest()
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise SignatureInvalid("sign does not match")


# --- fixed credentials ------------------------------------------------------------------


def presented_credential(headers: Mapping[str, str]) -> tuple[str | None, str]:
    """(user, secret) from ``Authorization: Bearer <secret>`` or HTTP Basic; raises if neither."""
    value = _header(headers, "authorization").strip()
    scheme, _, credential = value.partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        return None, credential
    if scheme.lower() == "basic" and credential:
        try:
            decoded = base64.b64decode(credential, validate=True).decode()
        except ValueError:  # binascii.Error, non-ASCII text, undecodable bytes
            raise SignatureInvalid("Authorization Basic credentials are not base64") from None
        user, colon, password = decoded.partition(":")
        if colon:
            return user, password
        raise SignatureInvalid("Authorization Basic credentials have no password")
    raise SignatureInvalid("Authorization must be Bearer or Basic")


def verify_static_token(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> None:
    """A fixed credential (Intelipost, DHL): ``Bearer <secret>``, or Basic with it as password."""
    if not secret:
        raise SignatureInvalid("no secret configured for this carrier")
    _, presented = presented_credential(headers)
    if not hmac.compare_digest(presented.encode(), secret.encode()):
        raise SignatureInvalid("Authorization credential does not match")


# --- UPS: tokens the relay issues itself (OAuth 2.0 client credentials) -----------------

UPS_TOKEN_LIFETIME_SECONDS = 3600


def _ups_token_mac(client_secret: str, expires: int) -> str:
    key = _hmac_sha256(client_secret.encode(), b"relay ups access token key")
    mac = hmac.new(key, str(expires).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_ups_token(client_secret: str, now: datetime) -> tuple[str, int]:
    """An access token for UPS and its lifetime in seconds.

    Stateless: ``<expiry>.<MAC of the expiry keyed by the client secret>``, so every
    replica can check it and rotating the secret revokes every token.
    """
    expires = int(now.timestamp()) + UPS_TOKEN_LIFETIME_SECONDS
    return f"{expires}.{_ups_token_mac(client_secret, expires)}", UPS_TOKEN_LIFETIME_SECONDS


def verify_ups(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """UPS Track Alert: ``Authorization: Bearer <token from POST /webhooks/ups/token>``."""
    user, token = presented_credential(headers)
    if user is not None:
        raise SignatureInvalid("Authorization must be a Bearer token from /webhooks/ups/token")
    raw_expiry, _, mac = token.partition(".")
    if not (raw_expiry.isascii() and raw_expiry.isdigit() and len(raw_expiry) <= 12):
        raise SignatureInvalid("the Bearer token was not issued by this relay's token endpoint")
    if not hmac.compare_digest(mac.encode(), _ups_token_mac(secret, int(raw_expiry)).encode()):
        raise SignatureInvalid("the Bearer token was not issued by this relay's token endpoint")
    if int(raw_expiry) <= now.timestamp():
        raise SignatureInvalid("the Bearer token has expired; UPS should fetch a new one")


# --- ShipEngine: RSA-SHA256 with a configured public key --------------------------------


_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


@lru_cache(maxsize=8)
def load_rsa_public_keys(pem: str) -> tuple[rsa.RSAPublicKey, ...]:
    """The RSA public keys of a PEM text (several blocks while a key rotates).

    ``ValueError`` when there is none or a block is not an RSA public key.
    """
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks:
        raise ValueError("no PEM block (-----BEGIN PUBLIC KEY----- ...) found")
    keys = []
    for block in blocks:
        key = serialization.load_pem_public_key(block.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the PEM key is not an RSA public key")
        keys.append(key)
    return tuple(keys)


def _unix_or_iso_seconds(value: str, header: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureInvalid(f"{header} is not a timestamp") from None
    if parsed.utcoffset() is None:
        raise SignatureInvalid(f"{header} has no time zone")
    return parsed.timestamp()


def shipengine_signed_bytes(timestamp: str, body: bytes) -> bytes:
    """What ShipEngine signs: ``<x-shipengine-timestamp>.<raw body>``."""
    return f"{timestamp}.".encode() + body


def verify_shipengine(secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
    """ShipEngine / ShipStation API: RSA-SHA256 (PKCS#1 v1.5) of the timestamp and raw body.

    Headers ``x-shipengine-rsa-sha256-key-id``, ``-signature`` (base64) and
    ``x-shipengine-timestamp`` (within five minutes either way). ``secret`` is the PEM
    public key, or several PEM blocks while ShipEngine rotates its key.
    """
    _header(headers, "x-shipengine-rsa-sha256-key-id")
    raw_signature = _header(headers, "x-shipengine-rsa-sha256-signature").strip()
    timestamp = _header(headers, "x-shipengine-timestamp").strip()
    _within_tolerance(
        _unix_or_iso_seconds(timestamp, "x-shipengine-timestamp"), now, "x-shipengine-timestamp"
    )
    try:
        # Standard base64; some senders were seen using the URL-safe alphabet.
        signature = base64.b64decode(raw_signature, altchars=b"-_", validate=True)
    except ValueError:  # binascii.Error or non-ASCII text
        raise SignatureInvalid("x-shipengine-rsa-sha256-signature is not base64") from None
    try:
        keys = load_rsa_public_keys(secret)
    except ValueError:
        raise SignatureInvalid(
            "the configured ShipEngine public key is not a PEM RSA key"
        ) from None
    signed = shipengine_signed_bytes(timestamp, body)
    for key in keys:
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return
    raise SignatureInvalid("x-shipengine-rsa-sha256-signature does not match")

"""Carrier webhook authentication: Melhor Envio, Shippo, 17TRACK, static tokens, UPS, ShipEngine.

Every expected signature is computed here with hashlib/hmac/base64 (and, for ShipEngine, an
RSA key pair made by the test), never with the helpers under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from app.ingest.signatures import (
    SignatureInvalid,
    hmac_sha256_verifier,
    issue_ups_token,
    load_rsa_public_keys,
    presented_credential,
    shipengine_signed_bytes,
    verify_17track,
    verify_melhor_envio,
    verify_shipengine,
    verify_shippo,
    verify_static_token,
    verify_ups,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNIX_NOW = int(NOW.timestamp())
BODY = b'{"trackingNumber":"QB204815537BR","events":[]}'
SECRET = "s3gr3d0-do-relay-9f1c"

Verifier = Callable[[str, dict[str, str], bytes, datetime], None]


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _basic(user_and_password: str) -> str:
    return "Basic " + _b64(user_and_password.encode())


# --- hmac_sha256_verifier ---------------------------------------------------------------


def test_hex_verifier_with_a_prefix_accepts_the_hmac_of_the_raw_body() -> None:
    verify = hmac_sha256_verifier("X-Hub-Signature-256", "hex", prefix="sha256=")
    digest = _hmac(SECRET.encode(), BODY).hex()

    verify(SECRET, {"x-hub-signature-256": f"sha256={digest}"}, BODY, NOW)
    verify(SECRET, {"x-hub-signature-256": f"  sha256={digest}\t"}, BODY, NOW)
    # Hex is case-insensitive.
    verify(SECRET, {"x-hub-signature-256": f"sha256={digest.upper()}"}, BODY, NOW)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_hmac(SECRET.encode(), BODY).hex(), id="prefix-missing"),
        pytest.param("sha1=" + _hmac(SECRET.encode(), BODY).hex(), id="other-prefix"),
        pytest.param("sha256=" + _hmac(b"outro-segredo", BODY).hex(), id="other-secret"),
        pytest.param("sha256=" + _hmac(SECRET.encode(), BODY + b" ").hex(), id="other-body"),
        pytest.param("sha256=" + _b64(_hmac(SECRET.encode(), BODY)), id="base64-not-hex"),
        pytest.param("sha256=", id="prefix-only"),
    ],
)
def test_hex_verifier_with_a_prefix_rejects_a_bad_signature(value: str) -> None:
    verify = hmac_sha256_verifier("X-Hub-Signature-256", "hex", prefix="sha256=")

    with pytest.raises(SignatureInvalid, match="X-Hub-Signature-256 does not match"):
        verify(SECRET, {"x-hub-signature-256": value}, BODY, NOW)


def test_base64_verifier_accepts_the_base64_hmac_of_the_raw_body() -> None:
    verify = hmac_sha256_verifier("X-Signature", "base64")

    verify(SECRET, {"x-signature": _b64(_hmac(SECRET.encode(), BODY))}, BODY, NOW)


def test_base64_verifier_with_a_prefix() -> None:
    verify = hmac_sha256_verifier("X-Signature", "base64", prefix="sha256=")
    good = _b64(_hmac(SECRET.encode(), BODY))

    verify(SECRET, {"x-signature": f"sha256={good}"}, BODY, NOW)
    for bad in (good, f"sha256={_hmac(SECRET.encode(), BODY).hex()}"):
        with pytest.raises(SignatureInvalid, match="X-Signature does not match"):
            verify(SECRET, {"x-signature": bad}, BODY, NOW)


def test_base64_verifier_is_case_sensitive() -> None:
    verify = hmac_sha256_verifier("X-Signature", "base64")
    good = _b64(_hmac(SECRET.encode(), BODY))
    assert good.swapcase() != good

    with pytest.raises(SignatureInvalid, match="does not match"):
        verify(SECRET, {"x-signature": good.swapcase()}, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"x-signature": ""}, {"X-Signature": "abc"}])
def test_hmac_verifier_looks_the_header_up_by_its_lower_case_name(
    headers: dict[str, str],
) -> None:
    verify = hmac_sha256_verifier("X-Signature", "base64")

    with pytest.raises(SignatureInvalid, match="missing x-signature header"):
        verify(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_hmac_verifier_with_an_empty_secret_accepts_nothing(encoding: str) -> None:
    verify = hmac_sha256_verifier("X-Signature", encoding)  # type: ignore[arg-type]
    digest = _hmac(b"", BODY)
    value = digest.hex() if encoding == "hex" else _b64(digest)

    with pytest.raises(SignatureInvalid):
        verify("", {"x-signature": value}, BODY, NOW)


# --- Melhor Envio -----------------------------------------------------------------------


def _melhor_envio_headers(secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return {"x-me-signature": _b64(_hmac(secret.encode(), body))}


def test_melhor_envio_accepts_the_base64_hmac_of_the_raw_body() -> None:
    verify_melhor_envio(SECRET, _melhor_envio_headers(), BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "headers", "body"),
    [
        pytest.param("outro-segredo", _melhor_envio_headers(), BODY, id="other-secret"),
        pytest.param(SECRET, _melhor_envio_headers(), BODY.replace(b",", b", "), id="reformatted"),
        # Some third-party code sends hex: wrong per Melhor Envio's docs and sample header.
        pytest.param(
            SECRET,
            {"x-me-signature": _hmac(SECRET.encode(), BODY).hex()},
            BODY,
            id="hex-not-base64",
        ),
    ],
)
def test_melhor_envio_rejects_a_bad_signature(
    secret: str, headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(SignatureInvalid, match="X-ME-Signature does not match"):
        verify_melhor_envio(secret, headers, body, NOW)


@pytest.mark.parametrize("headers", [{}, {"x-me-signature": ""}])
def test_melhor_envio_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing x-me-signature"):
        verify_melhor_envio(SECRET, headers, BODY, NOW)


def test_melhor_envio_published_header_has_the_shape_we_compare(reference_dir: Path) -> None:
    folder = reference_dir / "carriers/melhor-envio"
    headers = json.loads((folder / "webhook-request-headers-doc-sample.json").read_text())
    body = (folder / "webhook-order.posted-doc-sample.json").read_bytes()
    published = headers["x-me-signature"]

    # A base64 HMAC-SHA256: 32 bytes, and the same text length as the values we compute.
    assert len(base64.b64decode(published, validate=True)) == hashlib.sha256().digest_size
    assert len(published) == len(_melhor_envio_headers()["x-me-signature"])
    # We do not know the docs' secret, but the sample reaches the comparison (lower-case
    # header names as published), and fails it rather than being rejected as missing.
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_melhor_envio(SECRET, headers, body, NOW)


# --- Shippo -----------------------------------------------------------------------------


def _shippo_signature(t: int | str, secret: str = SECRET, body: bytes = BODY) -> str:
    return _hmac(secret.encode(), f"{t}.".encode() + body).hex()


def _shippo_headers(at: datetime = NOW, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    t = int(at.timestamp())
    return {"shippo-auth-signature": f"t={t},v1={_shippo_signature(t, secret, body)}"}


def test_shippo_accepts_an_hmac_of_timestamp_and_body() -> None:
    verify_shippo(SECRET, _shippo_headers(), BODY, NOW)
    spaced = f"t={UNIX_NOW}, v1={_shippo_signature(UNIX_NOW)}"
    verify_shippo(SECRET, {"shippo-auth-signature": spaced}, BODY, NOW)


@pytest.mark.parametrize("seconds", [-300, -1, 0, 1, 300])
def test_shippo_accepts_timestamps_within_five_minutes(seconds: int) -> None:
    headers = _shippo_headers(at=NOW + timedelta(seconds=seconds))

    verify_shippo(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("seconds", [-301, 301, -86400, 86400])
def test_shippo_rejects_a_stale_or_future_timestamp(seconds: int) -> None:
    headers = _shippo_headers(at=NOW + timedelta(seconds=seconds))

    with pytest.raises(SignatureInvalid, match="Shippo-Auth-Signature t"):
        verify_shippo(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    "t", ["soon", "1772366400.5", "", "0x69a42900", pytest.param("9" * 400, id="huge")]
)
def test_shippo_rejects_a_timestamp_that_is_not_a_usable_integer(t: str) -> None:
    headers = {"shippo-auth-signature": f"t={t},v1={_shippo_signature(t)}"}

    with pytest.raises(SignatureInvalid, match="Shippo-Auth-Signature"):
        verify_shippo(SECRET, headers, BODY, NOW)


def test_shippo_rejects_a_header_without_t() -> None:
    headers = {"shippo-auth-signature": f"v1={_shippo_signature(UNIX_NOW)}"}

    with pytest.raises(SignatureInvalid, match="no integer t="):
        verify_shippo(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"t={UNIX_NOW}", id="no-v1"),
        pytest.param(f"t={UNIX_NOW},v1=", id="empty-v1"),
        pytest.param(f"t={UNIX_NOW},v0={_shippo_signature(UNIX_NOW)}", id="other-version"),
        pytest.param(f"t={UNIX_NOW},v1={_shippo_signature(UNIX_NOW - 1)}", id="t-changed"),
        pytest.param(
            f"t={UNIX_NOW},v1={_hmac(SECRET.encode(), BODY).hex()}", id="body-only-signed"
        ),
    ],
)
def test_shippo_rejects_a_missing_or_wrong_v1(value: str) -> None:
    with pytest.raises(SignatureInvalid, match="Shippo-Auth-Signature does not match"):
        verify_shippo(SECRET, {"shippo-auth-signature": value}, BODY, NOW)


def test_shippo_rejects_a_tampered_body() -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_shippo(SECRET, _shippo_headers(), BODY + b" ", NOW)


def test_shippo_rejects_another_secret() -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_shippo("outro-segredo", _shippo_headers(), BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"shippo-auth-signature": ""}])
def test_shippo_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing shippo-auth-signature"):
        verify_shippo(SECRET, headers, BODY, NOW)


def test_shippo_with_an_empty_secret_accepts_nothing() -> None:
    with pytest.raises(SignatureInvalid):
        verify_shippo("", _shippo_headers(secret=""), BODY, NOW)


# --- 17TRACK ----------------------------------------------------------------------------


def _17track_sign(key: str = SECRET, body: bytes = BODY) -> str:
    return hashlib.sha256(body + b"/" + key.encode()).hexdigest()


def test_17track_accepts_the_sha256_of_body_slash_key() -> None:
    verify_17track(SECRET, {"sign": _17track_sign()}, BODY, NOW)


def test_17track_accepts_upper_case_hex() -> None:
    verify_17track(SECRET, {"sign": _17track_sign().upper()}, BODY, NOW)


@pytest.mark.parametrize(
    ("key", "sign"),
    [
        pytest.param("outra-chave", _17track_sign(), id="other-key"),
        pytest.param(SECRET, _17track_sign(body=BODY + b" "), id="other-body"),
        pytest.param(SECRET, _hmac(SECRET.encode(), BODY).hex(), id="hmac-not-plain-hash"),
        pytest.param(
            SECRET, hashlib.sha256(SECRET.encode() + b"/" + BODY).hexdigest(), id="key-first"
        ),
    ],
)
def test_17track_rejects_a_bad_sign(key: str, sign: str) -> None:
    with pytest.raises(SignatureInvalid, match="sign does not match"):
        verify_17track(key, {"sign": sign}, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"sign": ""}])
def test_17track_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing sign"):
        verify_17track(SECRET, headers, BODY, NOW)


def test_17track_with_an_empty_key_accepts_nothing() -> None:
    with pytest.raises(SignatureInvalid):
        verify_17track("", {"sign": _17track_sign(key="")}, BODY, NOW)


# --- static token (Intelipost, DHL) -----------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(f"Bearer {SECRET}", id="bearer"),
        pytest.param(f"bearer {SECRET}", id="bearer-lower-case-scheme"),
        pytest.param(f"  Bearer {SECRET}  ", id="bearer-padded"),
        pytest.param(_basic(f"intelipost:{SECRET}"), id="basic"),
        pytest.param(_basic(f"dhl-push:{SECRET}"), id="basic-other-user"),
        pytest.param(_basic(f":{SECRET}"), id="basic-empty-user"),
    ],
)
def test_static_token_accepts_bearer_or_basic_with_the_secret_as_password(
    authorization: str,
) -> None:
    verify_static_token(SECRET, {"authorization": authorization}, BODY, NOW)


def test_static_token_password_may_contain_a_colon() -> None:
    secret = "abc:def"

    verify_static_token(secret, {"authorization": _basic(f"user:{secret}")}, BODY, NOW)
    assert presented_credential({"authorization": _basic(f"user:{secret}")}) == ("user", secret)


def test_presented_credential_returns_user_and_secret() -> None:
    assert presented_credential({"authorization": f"Bearer {SECRET}"}) == (None, SECRET)
    assert presented_credential({"authorization": _basic(f"ups:{SECRET}")}) == ("ups", SECRET)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer outro-token", id="bearer-wrong"),
        pytest.param(f"Bearer {SECRET}x", id="bearer-longer"),
        pytest.param(f"Bearer {SECRET[:-1]}", id="bearer-shorter"),
        pytest.param(_basic("intelipost:outro-token"), id="basic-wrong-password"),
        pytest.param(_basic(f"{SECRET}:outro-token"), id="basic-secret-as-user"),
    ],
)
def test_static_token_rejects_a_wrong_token(authorization: str) -> None:
    with pytest.raises(SignatureInvalid, match="credential does not match"):
        verify_static_token(SECRET, {"authorization": authorization}, BODY, NOW)


def test_static_token_rejects_basic_without_a_colon() -> None:
    with pytest.raises(SignatureInvalid, match="no password"):
        verify_static_token(SECRET, {"authorization": _basic(SECRET)}, BODY, NOW)


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param("not*base64!", id="bad-alphabet"),
        pytest.param("abc", id="bad-padding"),
        pytest.param(_b64(b"\xff\xfe:" + SECRET.encode()), id="not-utf8"),
        # Starlette decodes header bytes as latin-1, so such text does reach us.
        pytest.param("\u00e9t\u00e9", id="non-ascii"),
    ],
)
def test_static_token_rejects_basic_credentials_that_are_not_base64(credential: str) -> None:
    with pytest.raises(SignatureInvalid, match="not base64"):
        verify_static_token(SECRET, {"authorization": f"Basic {credential}"}, BODY, NOW)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(f"Token {SECRET}", id="token-scheme"),
        pytest.param(f"Digest username={SECRET}", id="digest"),
        pytest.param(SECRET, id="no-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Basic", id="basic-without-credentials"),
    ],
)
def test_static_token_rejects_another_scheme(authorization: str) -> None:
    with pytest.raises(SignatureInvalid, match="Bearer or Basic"):
        verify_static_token(SECRET, {"authorization": authorization}, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"authorization": ""}])
def test_static_token_requires_the_authorization_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing authorization"):
        verify_static_token(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"authorization": "Bearer "}, id="bearer-empty"),
        pytest.param({"authorization": _basic("user:")}, id="basic-empty-password"),
        pytest.param({"authorization": f"Bearer {SECRET}"}, id="bearer-anything"),
        pytest.param({}, id="no-header"),
    ],
)
def test_static_token_with_an_empty_secret_rejects_everything(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid):
        verify_static_token("", headers, BODY, NOW)


# --- UPS: tokens issued by the relay ----------------------------------------------------

UPS_LIFETIME = 3600


def _ups_token(secret: str, expires: int) -> str:
    """The relay's stateless token, rebuilt independently: ``<expiry>.<b64url MAC>``."""
    key = _hmac(secret.encode(), b"relay ups access token key")
    mac = base64.urlsafe_b64encode(_hmac(key, str(expires).encode())).decode().rstrip("=")
    return f"{expires}.{mac}"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_ups_token_is_the_expiry_and_its_mac() -> None:
    token, lifetime = issue_ups_token(SECRET, NOW)

    assert lifetime == UPS_LIFETIME
    assert token == _ups_token(SECRET, UNIX_NOW + UPS_LIFETIME)


@pytest.mark.parametrize("seconds", [0, 1, 1800, UPS_LIFETIME - 1])
def test_ups_token_verifies_until_it_expires(seconds: int) -> None:
    token, _ = issue_ups_token(SECRET, NOW)

    verify_ups(SECRET, _bearer(token), BODY, NOW + timedelta(seconds=seconds))


@pytest.mark.parametrize("seconds", [UPS_LIFETIME, UPS_LIFETIME + 1, 86400])
def test_ups_token_is_refused_once_expired(seconds: int) -> None:
    token, _ = issue_ups_token(SECRET, NOW)

    with pytest.raises(SignatureInvalid, match="expired"):
        verify_ups(SECRET, _bearer(token), BODY, NOW + timedelta(seconds=seconds))


def test_ups_token_issued_at_a_fractional_second() -> None:
    issued_at = NOW + timedelta(milliseconds=700)
    token, lifetime = issue_ups_token(SECRET, issued_at)

    verify_ups(SECRET, _bearer(token), BODY, issued_at + timedelta(seconds=lifetime - 1))
    with pytest.raises(SignatureInvalid, match="expired"):
        verify_ups(SECRET, _bearer(token), BODY, issued_at + timedelta(seconds=lifetime))


def test_ups_token_for_another_secret_is_refused() -> None:
    token, _ = issue_ups_token("outro-segredo", NOW)

    with pytest.raises(SignatureInvalid, match="not issued by this relay"):
        verify_ups(SECRET, _bearer(token), BODY, NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda e, m: f"{e + 86400}.{m}", id="expiry-extended"),
        pytest.param(lambda e, m: f"{e - 1}.{m}", id="expiry-shortened"),
        pytest.param(lambda e, m: f"{e}.{m[:-1]}", id="mac-truncated"),
        pytest.param(lambda e, m: f"{e}.", id="mac-empty"),
        pytest.param(lambda e, m: f"{e}", id="no-dot"),
        pytest.param(lambda e, m: f"-{e}.{m}", id="negative-expiry"),
        pytest.param(lambda e, m: f"{e}.0.{m}", id="fractional-expiry"),
        pytest.param(lambda e, m: f"soon.{m}", id="expiry-not-a-number"),
        # Starlette decodes header bytes as latin-1; "²".isdigit() is True, int("²") fails.
        pytest.param(lambda e, m: f"\u00b2.{m}", id="superscript-digit"),
        pytest.param(lambda e, m: f"{'9' * 5000}.{m}", id="expiry-too-long-for-int"),
    ],
)
def test_ups_token_tampered_is_refused(tamper: Callable[[int, str], str]) -> None:
    token, _ = issue_ups_token(SECRET, NOW)
    raw_expiry, _, mac = token.partition(".")

    with pytest.raises(SignatureInvalid, match="not issued by this relay"):
        verify_ups(SECRET, _bearer(tamper(int(raw_expiry), mac)), BODY, NOW)


@pytest.mark.parametrize("password", ["the-issued-token", "the-client-secret"])
def test_ups_refuses_basic_instead_of_bearer(password: str) -> None:
    token, _ = issue_ups_token(SECRET, NOW)
    presented = token if password == "the-issued-token" else SECRET

    with pytest.raises(SignatureInvalid, match="Bearer token"):
        verify_ups(SECRET, {"authorization": _basic(f"ups-client:{presented}")}, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"authorization": ""}])
def test_ups_requires_the_authorization_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing authorization"):
        verify_ups(SECRET, headers, BODY, NOW)


def test_ups_with_an_empty_secret_accepts_nothing() -> None:
    with pytest.raises(SignatureInvalid):
        verify_ups("", _bearer(_ups_token("", UNIX_NOW + UPS_LIFETIME)), BODY, NOW)


# --- ShipEngine: RSA-SHA256 -------------------------------------------------------------

_SHIPENGINE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


SHIPENGINE_PEM = _public_pem(_SHIPENGINE_KEY)
EC_PEM = _public_pem(ec.generate_private_key(ec.SECP256R1()))
PRIVATE_PEM = _SHIPENGINE_KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
).decode()


def _rsa_sign(message: bytes, key: rsa.RSAPrivateKey = _SHIPENGINE_KEY) -> str:
    return _b64(key.sign(message, padding.PKCS1v15(), hashes.SHA256()))


def _shipengine_headers(
    timestamp: str = str(UNIX_NOW),
    body: bytes = BODY,
    key: rsa.RSAPrivateKey = _SHIPENGINE_KEY,
) -> dict[str, str]:
    return {
        "x-shipengine-rsa-sha256-key-id": "se-key-2026-01",
        "x-shipengine-rsa-sha256-signature": _rsa_sign(timestamp.encode() + b"." + body, key),
        "x-shipengine-timestamp": timestamp,
    }


def test_shipengine_signs_the_timestamp_a_dot_and_the_raw_body() -> None:
    assert shipengine_signed_bytes("1772366400", BODY) == b"1772366400." + BODY


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param(str(UNIX_NOW), id="unix-seconds"),
        pytest.param("2026-03-01T12:00:00Z", id="iso-z"),
        pytest.param("2026-03-01T12:00:00.123Z", id="iso-z-milliseconds"),
        pytest.param("2026-03-01T09:00:00-03:00", id="iso-offset"),
    ],
)
def test_shipengine_accepts_a_good_signature(timestamp: str) -> None:
    verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(timestamp), BODY, NOW)


def test_shipengine_accepts_a_signature_in_the_url_safe_base64_alphabet() -> None:
    headers = _shipengine_headers()
    raw = base64.b64decode(headers["x-shipengine-rsa-sha256-signature"])
    headers["x-shipengine-rsa-sha256-signature"] = base64.urlsafe_b64encode(raw).decode()

    verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


@pytest.mark.parametrize("seconds", [-300, 300])
def test_shipengine_accepts_timestamps_within_five_minutes(seconds: int) -> None:
    at = NOW + timedelta(seconds=seconds)
    for timestamp in (str(int(at.timestamp())), at.strftime("%Y-%m-%dT%H:%M:%SZ")):
        verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(timestamp), BODY, NOW)


@pytest.mark.parametrize("seconds", [-301, 301, -86400, 86400])
@pytest.mark.parametrize("form", ["unix", "iso"])
def test_shipengine_rejects_a_timestamp_out_of_tolerance(seconds: int, form: str) -> None:
    at = NOW + timedelta(seconds=seconds)
    timestamp = str(int(at.timestamp())) if form == "unix" else at.strftime("%Y-%m-%dT%H:%M:%SZ")

    with pytest.raises(SignatureInvalid, match="more than 5 minutes"):
        verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(timestamp), BODY, NOW)


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        pytest.param("2026-03-01T12:00:00", "no time zone", id="iso-without-zone"),
        pytest.param("soon", "not a timestamp", id="text"),
        # NaN is never "more than 5 minutes away" of anything: it must not pass the window.
        pytest.param("nan", "x-shipengine-timestamp", id="nan"),
    ],
)
def test_shipengine_rejects_a_timestamp_that_is_not_one(timestamp: str, reason: str) -> None:
    # Correctly signed, so only the timestamp check can refuse it.
    with pytest.raises(SignatureInvalid, match=reason):
        verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(timestamp), BODY, NOW)


def test_shipengine_rejects_another_key() -> None:
    with pytest.raises(SignatureInvalid, match="signature does not match"):
        verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(key=_OTHER_RSA_KEY), BODY, NOW)


def test_shipengine_rejects_a_tampered_body() -> None:
    with pytest.raises(SignatureInvalid, match="signature does not match"):
        verify_shipengine(SHIPENGINE_PEM, _shipengine_headers(), BODY + b" ", NOW)


def test_shipengine_rejects_a_changed_timestamp() -> None:
    headers = {**_shipengine_headers(), "x-shipengine-timestamp": str(UNIX_NOW + 1)}

    with pytest.raises(SignatureInvalid, match="signature does not match"):
        verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


def test_shipengine_rejects_a_signature_of_the_body_alone() -> None:
    headers = {**_shipengine_headers(), "x-shipengine-rsa-sha256-signature": _rsa_sign(BODY)}

    with pytest.raises(SignatureInvalid, match="signature does not match"):
        verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


def test_shipengine_rejects_a_pss_signature() -> None:
    pss = _SHIPENGINE_KEY.sign(
        shipengine_signed_bytes(str(UNIX_NOW), BODY),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH),
        hashes.SHA256(),
    )
    headers = {**_shipengine_headers(), "x-shipengine-rsa-sha256-signature": _b64(pss)}

    with pytest.raises(SignatureInvalid, match="signature does not match"):
        verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "x-shipengine-rsa-sha256-key-id",
        "x-shipengine-rsa-sha256-signature",
        "x-shipengine-timestamp",
    ],
)
@pytest.mark.parametrize("absent", ["removed", "empty"])
def test_shipengine_requires_each_header(header: str, absent: str) -> None:
    headers = _shipengine_headers()
    if absent == "removed":
        del headers[header]
    else:
        headers[header] = ""

    with pytest.raises(SignatureInvalid, match=f"missing {header}"):
        verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("not*base64!", id="bad-alphabet"),
        pytest.param("abc", id="bad-padding"),
        pytest.param("\u00e9t\u00e9", id="non-ascii"),
    ],
)
def test_shipengine_rejects_a_signature_that_is_not_base64(signature: str) -> None:
    headers = {**_shipengine_headers(), "x-shipengine-rsa-sha256-signature": signature}

    # Blamed on the request, not on the configured key (which is fine here).
    with pytest.raises(SignatureInvalid, match="signature is not base64"):
        verify_shipengine(SHIPENGINE_PEM, headers, BODY, NOW)


@pytest.mark.parametrize(
    "configured",
    [
        pytest.param("", id="empty"),
        pytest.param(SECRET, id="shared-secret"),
        pytest.param("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----", id="bad"),
        pytest.param(EC_PEM, id="ec-key"),
        pytest.param(PRIVATE_PEM, id="private-key"),
    ],
)
def test_shipengine_with_a_configured_key_that_is_not_a_pem_rsa_key(configured: str) -> None:
    with pytest.raises(SignatureInvalid, match="public key is not a PEM RSA key"):
        verify_shipengine(configured, _shipengine_headers(), BODY, NOW)


def test_load_rsa_public_keys_reads_a_pem_with_surrounding_whitespace() -> None:
    (key,) = load_rsa_public_keys(f"\n  {SHIPENGINE_PEM}\n\n")

    assert key.public_numbers() == _SHIPENGINE_KEY.public_key().public_numbers()


def test_load_rsa_public_keys_rejects_an_ec_key() -> None:
    with pytest.raises(ValueError, match="not an RSA public key"):
        load_rsa_public_keys(EC_PEM)


def test_shipengine_accepts_a_signature_by_any_configured_key_during_rotation() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    verify_shipengine(other_pem + SHIPENGINE_PEM, _shipengine_headers(), BODY, NOW)
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_shipengine(other_pem, _shipengine_headers(), BODY, NOW)


# --- what a rejection may say -----------------------------------------------------------

_WRONG_HEX = "ab" * 32
_WRONG_B64 = _b64(b"f" * 32)
_WRONG_TOKEN = "token-errado-7c1d"
_UPS_GOOD = _ups_token(SECRET, UNIX_NOW + UPS_LIFETIME)
_UPS_OTHER = _ups_token("outro-segredo", UNIX_NOW + UPS_LIFETIME)
_UPS_EXPIRED = _ups_token(SECRET, UNIX_NOW - 1)
_SHIPENGINE_OTHER = _shipengine_headers(key=_OTHER_RSA_KEY)
_SHIPENGINE_GOOD = _shipengine_headers()
_PEM_BODY = "".join(SHIPENGINE_PEM.splitlines()[1:-1])

# The values a leaky message could reveal: the right signatures for BODY under SECRET...
_EXPECTED = (
    _b64(_hmac(SECRET.encode(), BODY)),
    _hmac(SECRET.encode(), BODY).hex(),
    _shippo_signature(UNIX_NOW),
    _17track_sign(),
    _UPS_GOOD,
    _UPS_GOOD.partition(".")[2],
    _SHIPENGINE_GOOD["x-shipengine-rsa-sha256-signature"],
)

LEAKS = [
    # (verifier, configured secret, headers, ...what the request presented)
    pytest.param(
        hmac_sha256_verifier("X-Sig", "hex", "sha256="),
        SECRET,
        {"x-sig": f"sha256={_WRONG_HEX}"},
        (_WRONG_HEX,),
        id="hmac-hex",
    ),
    pytest.param(
        hmac_sha256_verifier("X-Sig", "base64"),
        SECRET,
        {"x-sig": _WRONG_B64},
        (_WRONG_B64,),
        id="hmac-base64",
    ),
    pytest.param(
        verify_melhor_envio,
        SECRET,
        {"x-me-signature": _WRONG_B64},
        (_WRONG_B64,),
        id="melhor-envio-wrong",
    ),
    pytest.param(verify_melhor_envio, SECRET, {}, (), id="melhor-envio-missing"),
    pytest.param(
        verify_shippo,
        SECRET,
        {"shippo-auth-signature": f"t={UNIX_NOW},v1={_WRONG_HEX}"},
        (_WRONG_HEX,),
        id="shippo-wrong",
    ),
    pytest.param(
        verify_shippo,
        SECRET,
        {"shippo-auth-signature": f"t={UNIX_NOW - 3600},v1={_shippo_signature(UNIX_NOW - 3600)}"},
        (_shippo_signature(UNIX_NOW - 3600),),
        id="shippo-stale",
    ),
    pytest.param(
        verify_shippo,
        SECRET,
        {"shippo-auth-signature": f"t=soon,v1={_WRONG_HEX}"},
        (_WRONG_HEX, "soon"),
        id="shippo-bad-t",
    ),
    pytest.param(verify_17track, SECRET, {"sign": _WRONG_HEX}, (_WRONG_HEX,), id="17track-wrong"),
    pytest.param(verify_17track, SECRET, {}, (), id="17track-missing"),
    pytest.param(
        verify_static_token,
        SECRET,
        {"authorization": f"Bearer {_WRONG_TOKEN}"},
        (_WRONG_TOKEN,),
        id="static-bearer-wrong",
    ),
    pytest.param(
        verify_static_token,
        SECRET,
        {"authorization": _basic(f"intelipost:{_WRONG_TOKEN}")},
        (_WRONG_TOKEN, _basic(f"intelipost:{_WRONG_TOKEN}").removeprefix("Basic ")),
        id="static-basic-wrong",
    ),
    pytest.param(
        verify_static_token,
        SECRET,
        {"authorization": _basic(_WRONG_TOKEN)},
        (_WRONG_TOKEN, _basic(_WRONG_TOKEN).removeprefix("Basic ")),
        id="static-basic-no-colon",
    ),
    pytest.param(
        verify_static_token,
        SECRET,
        {"authorization": f"Token {_WRONG_TOKEN}"},
        (_WRONG_TOKEN,),
        id="static-other-scheme",
    ),
    pytest.param(
        verify_static_token,
        SECRET,
        {"authorization": f"Basic {_WRONG_TOKEN}!"},
        (_WRONG_TOKEN,),
        id="static-basic-not-base64",
    ),
    pytest.param(verify_static_token, SECRET, {}, (), id="static-missing"),
    pytest.param(
        verify_ups, SECRET, _bearer(_UPS_OTHER), (_UPS_OTHER, _UPS_OTHER[11:]), id="ups-other"
    ),
    pytest.param(
        verify_ups,
        SECRET,
        _bearer(_UPS_EXPIRED),
        (_UPS_EXPIRED, _UPS_EXPIRED[11:]),
        id="ups-expired",
    ),
    pytest.param(
        verify_ups,
        SECRET,
        {"authorization": _basic(f"ups:{_UPS_GOOD}")},
        (_basic(f"ups:{_UPS_GOOD}").removeprefix("Basic "),),
        id="ups-basic",
    ),
    pytest.param(verify_ups, SECRET, {}, (), id="ups-missing"),
    pytest.param(
        verify_shipengine,
        SHIPENGINE_PEM,
        _SHIPENGINE_OTHER,
        (_SHIPENGINE_OTHER["x-shipengine-rsa-sha256-signature"],),
        id="shipengine-other-key",
    ),
    pytest.param(
        verify_shipengine,
        SHIPENGINE_PEM,
        {**_SHIPENGINE_GOOD, "x-shipengine-rsa-sha256-signature": f"{_WRONG_B64}!"},
        (_WRONG_B64,),
        id="shipengine-not-base64",
    ),
    pytest.param(
        verify_shipengine,
        SHIPENGINE_PEM,
        _shipengine_headers(str(UNIX_NOW - 3600)),
        (_shipengine_headers(str(UNIX_NOW - 3600))["x-shipengine-rsa-sha256-signature"],),
        id="shipengine-stale",
    ),
    pytest.param(
        verify_shipengine,
        f"-----BEGIN PUBLIC KEY-----\n{SECRET}\n-----END PUBLIC KEY-----",
        _SHIPENGINE_GOOD,
        (_SHIPENGINE_GOOD["x-shipengine-rsa-sha256-signature"],),
        id="shipengine-bad-pem",
    ),
]


@pytest.mark.parametrize(("verify", "secret", "headers", "presented"), LEAKS)
def test_rejection_message_never_contains_the_secret_or_a_presented_value(
    verify: Verifier, secret: str, headers: dict[str, str], presented: tuple[str, ...]
) -> None:
    with pytest.raises(SignatureInvalid) as rejected:
        verify(secret, headers, BODY, NOW)

    message = str(rejected.value)
    assert message
    for leak in (secret, SECRET, _PEM_BODY, *presented, *_EXPECTED):
        assert leak not in message

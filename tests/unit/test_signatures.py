"""Webhook authentication: Standard Webhooks (generic), AfterShip, EasyPost and FedEx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.ingest.signatures import (
    SignatureInvalid,
    sign_standard_webhooks,
    verify_aftership,
    verify_easypost,
    verify_fedex,
    verify_standard_webhooks,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BODY = b'{"trackingNumber":"QB204815537BR","events":[]}'
SECRET = "s3gr3d0-do-relay-9f1c"


def _b64_hmac(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


# --- Standard Webhooks ------------------------------------------------------------------


def standard_headers(
    secret: str = SECRET, body: bytes = BODY, at: datetime = NOW, msg_id: str = "msg_2Xk9"
) -> dict[str, str]:
    timestamp = int(at.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard_webhooks(secret, msg_id, timestamp, body),
    }


def test_standard_webhooks_published_test_vector() -> None:
    # The specification's own example (standardwebhooks.com), computed independently of us.
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signed_at = datetime.fromtimestamp(1614265330, UTC)

    verify_standard_webhooks(secret, headers, b'{"test": 2432232314}', signed_at)
    with pytest.raises(SignatureInvalid):
        verify_standard_webhooks(secret, headers, b'{"test": 2432232315}', signed_at)


def test_standard_webhooks_signature_is_hmac_of_id_timestamp_and_body() -> None:
    expected = "v1," + _b64_hmac(SECRET.encode(), b"msg_2Xk9.1772366400." + BODY)

    assert sign_standard_webhooks(SECRET, "msg_2Xk9", 1772366400, BODY) == expected
    verify_standard_webhooks(SECRET, standard_headers(), BODY, NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b + b" "), id="body-changed"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_other"}, b), id="id-changed"),
        pytest.param(
            lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
            id="timestamp-changed",
        ),
        pytest.param(
            lambda h, b: (
                {**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")},
                b,
            ),
            id="other-version",
        ),
        pytest.param(lambda h, b: ({**h, "webhook-signature": "v1,"}, b), id="empty-signature"),
    ],
)
def test_standard_webhooks_rejects_a_tampered_request(
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(standard_headers(), BODY)

    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_standard_webhooks(SECRET, headers, body, NOW)


def test_standard_webhooks_rejects_another_secret() -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_standard_webhooks("outro-segredo", standard_headers(), BODY, NOW)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
@pytest.mark.parametrize("absent", ["removed", "empty"])
def test_standard_webhooks_requires_each_header(header: str, absent: str) -> None:
    headers = standard_headers()
    if absent == "removed":
        del headers[header]
    else:
        headers[header] = ""

    with pytest.raises(SignatureInvalid, match=f"missing {header}"):
        verify_standard_webhooks(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("seconds", [-300, -1, 0, 1, 300])
def test_standard_webhooks_accepts_timestamps_within_five_minutes(seconds: int) -> None:
    headers = standard_headers(at=NOW + timedelta(seconds=seconds))

    verify_standard_webhooks(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("seconds", [-301, 301, -86400, 86400])
def test_standard_webhooks_rejects_timestamps_outside_five_minutes(seconds: int) -> None:
    headers = standard_headers(at=NOW + timedelta(seconds=seconds))

    with pytest.raises(SignatureInvalid, match="webhook-timestamp"):
        verify_standard_webhooks(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize("timestamp", ["soon", "1772366400.5", "0x69a42900"])
def test_standard_webhooks_rejects_a_timestamp_that_is_not_an_integer(timestamp: str) -> None:
    headers = {**standard_headers(), "webhook-timestamp": timestamp}

    with pytest.raises(SignatureInvalid, match="webhook-timestamp"):
        verify_standard_webhooks(SECRET, headers, BODY, NOW)


def test_standard_webhooks_accepts_any_of_several_signatures_during_rotation() -> None:
    good = standard_headers()["webhook-signature"]
    stale = standard_headers(secret="segredo-antigo")["webhook-signature"]

    for signatures in (f"{stale} {good}", f"{good} {stale}", f"v1a,abc {stale}  {good}"):
        headers = {**standard_headers(), "webhook-signature": signatures}
        verify_standard_webhooks(SECRET, headers, BODY, NOW)
    with pytest.raises(SignatureInvalid):
        verify_standard_webhooks(
            SECRET, {**standard_headers(), "webhook-signature": f"{stale} {stale}"}, BODY, NOW
        )


def test_standard_webhooks_whsec_secret_is_base64_key_material() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(NOW.timestamp()))}
    signed = f"msg_1.{headers['webhook-timestamp']}.".encode() + BODY

    verify_standard_webhooks(
        secret, {**headers, "webhook-signature": "v1," + _b64_hmac(key, signed)}, BODY, NOW
    )
    # Keyed with the text of the secret instead of its decoded bytes: not accepted.
    with pytest.raises(SignatureInvalid):
        verify_standard_webhooks(
            secret,
            {**headers, "webhook-signature": "v1," + _b64_hmac(secret.encode(), signed)},
            BODY,
            NOW,
        )


# --- AfterShip --------------------------------------------------------------------------


def test_aftership_accepts_base64_hmac_of_the_raw_body() -> None:
    headers = {"aftership-hmac-sha256": _b64_hmac(SECRET.encode(), BODY)}

    verify_aftership(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        pytest.param("outro-segredo", BODY, id="other-secret"),
        # The same JSON re-serialized is other bytes: the check is on the raw body.
        pytest.param(SECRET, BODY.replace(b",", b", "), id="reformatted-body"),
    ],
)
def test_aftership_rejects_a_bad_signature(secret: str, body: bytes) -> None:
    headers = {"aftership-hmac-sha256": _b64_hmac(SECRET.encode(), BODY)}

    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_aftership(secret, headers, body, NOW)


@pytest.mark.parametrize("headers", [{}, {"aftership-hmac-sha256": ""}])
def test_aftership_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing aftership-hmac-sha256"):
        verify_aftership(SECRET, headers, BODY, NOW)


# --- EasyPost ---------------------------------------------------------------------------

EASYPOST_VECTOR = "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"


def test_easypost_published_test_vector(reference_dir: Path) -> None:
    body = (
        reference_dir / "carriers/easypost/event-tracker-updated-in-transit.raw.json"
    ).read_bytes()

    verify_easypost("s\u00e9cret", {"x-hmac-signature": EASYPOST_VECTOR}, body, NOW)
    with pytest.raises(SignatureInvalid):
        verify_easypost("s\u00e9cret", {"x-hmac-signature": EASYPOST_VECTOR}, body + b"\n", NOW)


def _easypost_header(secret: str, body: bytes) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", secret).encode()
    return {"x-hmac-signature": "hmac-sha256-hex=" + hmac.new(key, body, "sha256").hexdigest()}


def test_easypost_secret_is_nfkd_normalized() -> None:
    nfc, nfd = "s\u00e9cret", "se\u0301cret"
    assert nfc != nfd
    headers = _easypost_header(nfc, BODY)

    verify_easypost(nfc, headers, BODY, NOW)
    verify_easypost(nfd, headers, BODY, NOW)
    # Without the normalization the NFC form would key the HMAC differently.
    raw_nfc = hmac.new(nfc.encode(), BODY, "sha256").hexdigest()
    with pytest.raises(SignatureInvalid):
        verify_easypost(nfc, {"x-hmac-signature": f"hmac-sha256-hex={raw_nfc}"}, BODY, NOW)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(_easypost_header("outro-segredo", BODY), id="other-secret"),
        pytest.param(_easypost_header(SECRET, BODY + b" "), id="other-body"),
        pytest.param(
            {"x-hmac-signature": _easypost_header(SECRET, BODY)["x-hmac-signature"][16:]},
            id="no-prefix",
        ),
    ],
)
def test_easypost_rejects_a_bad_signature(header: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="does not match"):
        verify_easypost(SECRET, header, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"x-hmac-signature": ""}])
def test_easypost_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing x-hmac-signature"):
        verify_easypost(SECRET, headers, BODY, NOW)


# --- FedEx -------------------------------------------------------------------------------

# A security token as FedEx requires it: 26-100 characters, upper, lower and a digit.
FEDEX_TOKEN = "Relay7FedexSecurityToken2026xQ"


def _fedex_mac(secret: str = FEDEX_TOKEN, body: bytes = BODY) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def test_fedex_accepts_base64_hmac_of_the_raw_body_keyed_with_the_token() -> None:
    # The Java code of FedEx's validation page: Base64(HmacSHA256(token, payload)).
    signature = base64.b64encode(_fedex_mac()).decode()

    verify_fedex(FEDEX_TOKEN, {"fdx-signature": signature}, BODY, NOW)
    verify_fedex(FEDEX_TOKEN, {"fdx-signature": f" {signature}\n"}, BODY, NOW)


# A body whose MAC in base64 has a "+" or "/", which the URL-safe alphabet spells "-" or "_".
SIGNED_BODY = next(
    body
    for body in (BODY + b" " * n for n in range(200))
    if {"+", "/"} & set(base64.b64encode(_fedex_mac(body=body)).decode())
)


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(lambda mac: base64.urlsafe_b64encode(mac).decode(), id="url-safe"),
        pytest.param(lambda mac: base64.b64encode(mac).decode().rstrip("="), id="unpadded"),
        pytest.param(
            lambda mac: base64.urlsafe_b64encode(mac).decode().rstrip("="), id="url-safe-unpadded"
        ),
    ],
)
def test_fedex_accepts_other_spellings_of_the_same_mac(spelling: Callable[[bytes], str]) -> None:
    # FedEx does not say which base64 alphabet it uses or whether it pads: each spells the
    # same 32 bytes, so accepting them lets no weaker signature through.
    signature = spelling(_fedex_mac(body=SIGNED_BODY))
    assert signature != base64.b64encode(_fedex_mac(body=SIGNED_BODY)).decode()

    verify_fedex(FEDEX_TOKEN, {"fdx-signature": signature}, SIGNED_BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "headers", "body"),
    [
        pytest.param(
            "Another7SecurityTokenForFedex",
            {"fdx-signature": base64.b64encode(_fedex_mac()).decode()},
            BODY,
            id="other-token",
        ),
        pytest.param(
            FEDEX_TOKEN,
            {"fdx-signature": base64.b64encode(_fedex_mac()).decode()},
            BODY.replace(b",", b", "),
            id="reformatted-body",
        ),
        # The docs' prose says "hex encoding": FedEx's own code sends base64.
        pytest.param(FEDEX_TOKEN, {"fdx-signature": _fedex_mac().hex()}, BODY, id="hex"),
        # The docs' formula line, "SHA256(security token + payload)": no HMAC, not accepted.
        pytest.param(
            FEDEX_TOKEN,
            {
                "fdx-signature": base64.b64encode(
                    hashlib.sha256(FEDEX_TOKEN.encode() + BODY).digest()
                ).decode()
            },
            BODY,
            id="plain-hash-of-token-and-body",
        ),
        pytest.param(
            FEDEX_TOKEN,
            {"fdx-signature": base64.b64encode(_fedex_mac()[:16]).decode()},
            BODY,
            id="truncated",
        ),
    ],
)
def test_fedex_rejects_a_bad_signature(secret: str, headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(SignatureInvalid, match="fdx-signature does not match"):
        verify_fedex(secret, headers, body, NOW)


@pytest.mark.parametrize("value", ["not base64!", "é" * 44, base64.b64encode(b"x").decode() + "A"])
def test_fedex_rejects_a_signature_that_is_not_base64(value: str) -> None:
    with pytest.raises(SignatureInvalid, match="fdx-signature is not base64"):
        verify_fedex(FEDEX_TOKEN, {"fdx-signature": value}, BODY, NOW)


@pytest.mark.parametrize("headers", [{}, {"fdx-signature": ""}, {"x-fedex-signature": "abc="}])
def test_fedex_requires_the_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid, match="missing fdx-signature"):
        verify_fedex(FEDEX_TOKEN, headers, BODY, NOW)


# --- what a rejection may say -----------------------------------------------------------

Verifier = Callable[[str, dict[str, str], bytes, datetime], None]
_FORGED = base64.b64encode(b"f" * 32).decode()
# The values a leaky message could reveal: the right signatures for BODY under SECRET.
_EXPECTED = (
    standard_headers()["webhook-signature"].removeprefix("v1,"),
    _b64_hmac(SECRET.encode(), BODY),
    _easypost_header(SECRET, BODY)["x-hmac-signature"].removeprefix("hmac-sha256-hex="),
)
FAILURES: list[tuple[Verifier, dict[str, str]]] = [
    (verify_standard_webhooks, {**standard_headers(), "webhook-signature": "v1," + _FORGED}),
    (verify_standard_webhooks, standard_headers(at=NOW - timedelta(hours=1))),
    (verify_standard_webhooks, {"webhook-id": "msg_1", "webhook-signature": "v1," + _FORGED}),
    (verify_aftership, {"aftership-hmac-sha256": _FORGED}),
    (verify_aftership, {}),
    (verify_easypost, {"x-hmac-signature": "hmac-sha256-hex=" + "ab" * 32}),
    (verify_easypost, {}),
    (verify_fedex, {"fdx-signature": _FORGED}),
    (verify_fedex, {"fdx-signature": _FORGED + "!"}),
    (verify_fedex, {}),
]


@pytest.mark.parametrize(("verify", "headers"), FAILURES)
def test_rejection_message_never_contains_the_secret_or_a_signature(
    verify: Verifier, headers: dict[str, str]
) -> None:
    with pytest.raises(SignatureInvalid) as rejected:
        verify(SECRET, headers, BODY, NOW)

    message = str(rejected.value)
    assert message
    for leak in (SECRET, _FORGED, "ab" * 32, *_EXPECTED):
        assert leak not in message


# --- an empty secret authenticates nobody -----------------------------------------------

_EMPTY_KEY_STANDARD = {
    "webhook-id": "msg_2Xk9",
    "webhook-timestamp": str(int(NOW.timestamp())),
    "webhook-signature": "v1,"
    + _b64_hmac(b"", f"msg_2Xk9.{int(NOW.timestamp())}.".encode() + BODY),
}
_EMPTY_KEY_SIGNED: list[tuple[Verifier, str, dict[str, str]]] = [
    (verify_standard_webhooks, "", _EMPTY_KEY_STANDARD),
    (verify_standard_webhooks, "whsec_", _EMPTY_KEY_STANDARD),
    (verify_aftership, "", {"aftership-hmac-sha256": _b64_hmac(b"", BODY)}),
    (verify_easypost, "", _easypost_header("", BODY)),
    (verify_fedex, "", {"fdx-signature": _b64_hmac(b"", BODY)}),
]


@pytest.mark.parametrize(
    ("verify", "secret", "headers"),
    _EMPTY_KEY_SIGNED,
    ids=[
        "standard-empty",
        "standard-whsec-empty",
        "aftership-empty",
        "easypost-empty",
        "fedex-empty",
    ],
)
def test_an_empty_secret_accepts_no_signature(
    verify: Verifier, secret: str, headers: dict[str, str]
) -> None:
    # A blank RELAY_CARRIERS__<NAME>__SECRET= (a common .env slip) must not turn into an
    # HMAC key that anyone can use: the request is refused, whatever it carries.
    with pytest.raises(SignatureInvalid):
        verify(secret, headers, BODY, NOW)

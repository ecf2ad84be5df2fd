"""Property tests at the HTTP edge: whatever arrives, every carrier answers 202 or a 4xx JSON error.

The app is served by uvicorn on loopback (in a thread) over a real SQLite file, with the
worker off; hypothesis throws arbitrary JSON and arbitrary bytes at every carrier, built-in
and declared.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.ingest.carriers import BUILT_IN
from app.settings import Settings
from tests.support.served_app import served_app

DECLARED_FILE = Path(__file__).parent.parent / "fixtures" / "declared" / "carriers.yaml"
DECLARED = ["rapidez"]
CARRIERS = sorted(BUILT_IN) + DECLARED

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=6)
    ),
    max_leaves=25,
)
EXAMPLES = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@contextlib.contextmanager
def relay_client(
    database_url: str, relay_settings: dict[str, Any] | None = None, **carrier_settings: Any
) -> Iterator[httpx.Client]:
    """The relay app served on loopback, every carrier configured with ``carrier_settings``
    (and any other setting in ``relay_settings``)."""
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        worker=False,
        carriers={name: carrier_settings for name in CARRIERS},
        carriers_file=DECLARED_FILE,
        **(relay_settings or {}),
    )
    with (
        served_app(settings) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        yield client


@pytest.fixture
def unsigned_client(database_url: str) -> Iterator[httpx.Client]:
    """Every carrier accepts unsigned webhooks, so every body reaches its adapter (on SQLite
    and on PostgreSQL, whose column widths SQLite does not enforce)."""
    with relay_client(database_url, allow_unsigned=True) as client:
        yield client


def assert_clear_answer(response: Any, carrier: str) -> None:
    assert response.status_code < 500, (carrier, response.status_code, response.text)
    answer = response.json()
    if response.status_code == 202:
        assert isinstance(answer["events"], int), answer
        assert isinstance(answer["duplicates"], int), answer
    else:
        assert 400 <= response.status_code < 500, answer
        assert isinstance(answer["error"], str), answer
        assert isinstance(answer["detail"], str), answer
        assert answer["detail"], answer


def test_any_json_to_any_carrier_is_202_or_a_4xx_json_error(unsigned_client: httpx.Client) -> None:
    @EXAMPLES
    @given(carrier=st.sampled_from(CARRIERS), payload=json_values)
    def check(carrier: str, payload: Any) -> None:
        response = unsigned_client.post(
            f"/webhooks/{carrier}",
            content=json.dumps(payload).encode(),
            headers={"content-type": "application/json"},
        )
        assert_clear_answer(response, carrier)
        if response.status_code != 202:
            assert response.status_code in (400, 415, 422), response.text

    check()


def test_any_bytes_to_any_carrier_is_202_or_a_4xx_json_error(unsigned_client: httpx.Client) -> None:
    @EXAMPLES
    @given(
        carrier=st.sampled_from(CARRIERS),
        body=st.binary(max_size=200),
        content_type=st.sampled_from(["application/json", "text/plain", "", "application/x+json"]),
    )
    def check(carrier: str, body: bytes, content_type: str) -> None:
        headers = {"content-type": content_type} if content_type else {}
        response = unsigned_client.post(f"/webhooks/{carrier}", content=body, headers=headers)
        assert_clear_answer(response, carrier)

    check()


# Printable ASCII without surrounding blanks: what an HTTP client can send as a header value.
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip
)


def test_forged_credentials_get_401_from_every_carrier(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/relay.db"  # nothing reaches the database
    """With secrets configured, arbitrary values in every scheme's headers are refused."""
    names = [
        "authorization",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "aftership-hmac-sha256",
        "x-hmac-signature",
        "shippo-auth-signature",
        "sign",
        "x-me-signature",
        "x-rapidez-signature",
        "x-shipengine-rsa-sha256-key-id",
        "x-shipengine-rsa-sha256-signature",
        "x-shipengine-timestamp",
        "fdx-signature",
    ]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    with relay_client(database_url, secret="configured-secret-value", public_key=pem) as client:

        @EXAMPLES
        @given(
            carrier=st.sampled_from(CARRIERS),
            headers=st.dictionaries(st.sampled_from(names), header_values, max_size=5),
            body=st.binary(max_size=100),
            token=st.none() | header_values,
        )
        def check(carrier: str, headers: dict[str, str], body: bytes, token: str | None) -> None:
            params = {"token": token} if token is not None else None
            response = client.post(
                f"/webhooks/{carrier}", content=body, headers=headers, params=params
            )
            assert response.status_code == 401, (carrier, headers, response.text)
            assert response.json()["error"] == "unauthorized"
            assert "configured-secret-value" not in response.text

        check()


def test_identifiers_too_long_for_an_id_are_refused_or_dropped_not_a_500(
    unsigned_client: httpx.Client,
) -> None:
    long = "X" * 129
    fixtures = Path(__file__).parent.parent / "fixtures"
    tracking = json.loads((fixtures / "generic" / "in_transit.json").read_bytes())
    tracking["trackingNumber"] = long
    label = json.loads((fixtures / "melhor_envio" / "delivered.json").read_bytes())
    label["data"]["protocol"] = "ORD-" + long  # an alias: dropped, the label still read

    refused = unsigned_client.post("/webhooks/generic", json=tracking)
    accepted = unsigned_client.post("/webhooks/melhor_envio", json=label)

    assert refused.status_code == 422, refused.text
    assert "longer than 128 characters" in refused.json()["detail"]
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["events"] > 0

"""Hostile input found by hand (issue 11), each a 500 or a wrong answer before: now a clear
4xx JSON error, or a webhook kept with U+FFFD in place of what could not be stored.

The app is served on loopback over a real SQLite file and a real PostgreSQL schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_webhook_properties import relay_client
from tests.support.signing import easypost_headers, standard_webhooks_headers

SECRET = "carrier-secret"
ADMIN = {"Authorization": "Bearer admin-token"}
HOOK_SECRET = "hook-secret"
FIXTURES = Path(__file__).parent.parent / "fixtures"
DOCUMENTED_CODES = {
    "bad_request",
    "invalid_json",
    "invalid_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "payload_too_large",
    "unsupported_media_type",
    "unprocessable",
    "unavailable",
}


@pytest.fixture
def client(database_url: str) -> Iterator[httpx.Client]:
    relay_settings = {"admin_token": "admin-token", "vtex_hook_secret": HOOK_SECRET}
    with relay_client(database_url, relay_settings, secret=SECRET) as served:
        yield served


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def fixture(carrier: str, name: str) -> Any:
    return json.loads((FIXTURES / carrier / f"{name}.json").read_bytes())


def signed_generic(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post(
        "/webhooks/generic", content=body, headers=standard_webhooks_headers(SECRET, body)
    )


def signed_easypost(client: httpx.Client, body: bytes) -> httpx.Response:
    return client.post("/webhooks/easypost", content=body, headers=easypost_headers(SECRET, body))


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    assert answer["error"] in DOCUMENTED_CODES, answer
    assert answer["detail"], answer
    return answer


@pytest.mark.parametrize("depth", [5_000, 60_000])
def test_a_deep_body_to_the_orders_hook_without_its_token_is_401_unread(
    client: httpx.Client, depth: int
) -> None:
    refused = client.post("/vtex/orders-hook", content=nested(depth))

    assert_json_error(refused, 401)


def test_a_deep_body_to_the_orders_hook_with_its_token_is_400(client: httpx.Client) -> None:
    answer = assert_json_error(
        client.post(
            "/vtex/orders-hook",
            content=nested(5_000),
            headers={"X-Relay-Hook-Token": HOOK_SECRET},
        ),
        400,
    )
    assert answer["error"] == "invalid_json"
    assert "nested more than" in answer["detail"]


def test_the_orders_hook_ping_still_needs_no_token(client: httpx.Client) -> None:
    pong = client.post("/vtex/orders-hook", json={"hookConfig": "ping"})

    assert (pong.status_code, pong.json()) == (200, {"hookConfig": "pong"})


@pytest.mark.parametrize("send", [signed_generic, signed_easypost], ids=["generic", "easypost"])
@pytest.mark.parametrize("depth", [1_100, 60_000])
def test_a_deep_signed_webhook_is_415(client: httpx.Client, send: Any, depth: int) -> None:
    body = b"[" * depth + b"]" * depth

    answer = assert_json_error(send(client, body), 415)
    assert "nested more than" in answer["detail"]


def test_a_lone_surrogate_in_a_description_is_kept_as_u_fffd(client: httpx.Client) -> None:
    payload = fixture("generic", "in_transit")
    payload["events"][0]["description"] = "Objeto \udfff em trânsito\x00"
    body = json.dumps(payload).encode()  # ensure_ascii: "\udfff" and "\u0000" escapes

    accepted = signed_generic(client, body)

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["events"] == len(payload["events"])
    shipment = client.get(f"/shipments/{payload['trackingNumber']}", headers=ADMIN).json()
    descriptions = [event["description"] for event in shipment["events"]]
    assert "Objeto \ufffd em trânsito\ufffd" in descriptions


def test_a_lone_surrogate_in_an_easypost_message_is_kept_as_u_fffd(client: httpx.Client) -> None:
    payload = fixture("easypost", "in_transit")
    for detail in payload["result"]["tracking_details"]:
        detail["message"] = detail["description"] = "Saiu \ud800"

    accepted = signed_easypost(client, json.dumps(payload).encode())

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["events"] > 0


def test_a_lone_surrogate_in_a_tracking_number_is_quarantined_422(client: httpx.Client) -> None:
    payload = fixture("easypost", "in_transit")
    payload["result"]["tracking_code"] = "LY5188\udfff02147BR"

    answer = assert_json_error(signed_easypost(client, json.dumps(payload).encode()), 422)

    assert "tracking number: contains U+FFFD" in answer["detail"]
    held = client.get("/admin/quarantine", headers=ADMIN).json()["webhooks"]
    assert [webhook["webhookId"] for webhook in held] == [answer["webhook_id"]]


def test_a_nul_in_a_tracking_number_is_quarantined_not_stored(client: httpx.Client) -> None:
    payload = fixture("generic", "in_transit")
    payload["trackingNumber"] = "BR\x00123"

    answer = assert_json_error(signed_generic(client, json.dumps(payload).encode()), 422)

    # The reader keeps every NUL as U+FFFD (PostgreSQL cannot store one); no id holds either.
    assert "tracking number: contains U+FFFD at position 3" in answer["detail"]


@pytest.mark.parametrize("path", ["%ff%fe%00", "BR%0A123", "%E2%80%8B", "%20"])
def test_a_tracking_number_that_is_not_printable_text_is_422(
    client: httpx.Client, path: str
) -> None:
    body = {"orderId": "1172452900788-01", "invoiceNumber": "000030711"}

    registered = client.put(f"/shipments/{path}", json=body, headers=ADMIN)
    looked_up = client.get(f"/shipments/{path}", headers=ADMIN)

    assert_json_error(registered, 422)
    assert_json_error(looked_up, 422)


@pytest.mark.parametrize(
    ("field", "value"),
    [("orderId", "1172452900788\x00-01"), ("invoiceNumber", "NF\x07"), ("account", "st\x01ore")],
)
def test_a_registration_field_that_is_not_printable_text_is_422(
    client: httpx.Client, field: str, value: str
) -> None:
    body = {"orderId": "1172452900788-01", "invoiceNumber": "000030711", field: value}

    answer = assert_json_error(client.put("/shipments/BR1", json=body, headers=ADMIN), 422)

    assert answer["detail"].startswith(f"{field}: contains U+")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[" * 5000, b"", b'{"orderId": 1}'],
    ids=["syntax", "deep", "empty", "type"],
)
def test_registration_checks_the_token_before_reading_the_body(
    client: httpx.Client, body: bytes
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = client.put(
            "/shipments/BR1", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert_json_error(refused, 401)


@pytest.mark.parametrize(
    ("body", "status", "code", "detail"),
    [
        (b"{not json", 400, "invalid_json", "line 1 column 2"),
        (b"", 400, "invalid_json", "empty"),
        (b"[1]", 422, "invalid_request", "body: must be a JSON object"),
        (b'{"orderId": 1}', 422, "invalid_request", "orderId: must be text"),
        (b'{"orderId": "A"}', 422, "invalid_request", "invoiceNumber: is required"),
    ],
)
def test_registration_errors_name_the_field_in_the_senders_terms(
    client: httpx.Client, body: bytes, status: int, code: str, detail: str
) -> None:
    answer = assert_json_error(
        client.put(
            "/shipments/BR1", content=body, headers={**ADMIN, "content-type": "application/json"}
        ),
        status,
    )

    assert answer["error"] == code
    assert detail in answer["detail"]
    assert "decode" not in answer["detail"]
    assert "Input should" not in answer["detail"]


@pytest.mark.parametrize("payload", [[1, 2], "text", None, {"trackingNumber": ["x"]}])
def test_adapter_errors_name_no_internal_class(client: httpx.Client, payload: Any) -> None:
    answer = assert_json_error(signed_generic(client, json.dumps(payload).encode()), 422)

    assert "_Generic" not in answer["detail"]
    assert "Input should" not in answer["detail"]
    assert answer["detail"].startswith("generic payload could not be read: ")


def test_a_long_unknown_carrier_name_is_404_with_a_short_detail(client: httpx.Client) -> None:
    answer = assert_json_error(client.post(f"/webhooks/{'x' * 5000}", content=b"{}"), 404)

    assert len(answer["detail"]) < 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/quarantine?carrier=%00"),
        ("POST", "/admin/quarantine/replay?carrier=gen%00eric"),
        ("DELETE", "/admin/quarantine/wh_%00"),
        ("POST", "/admin/deliveries/99999999999999999999999/retry"),
    ],
)
def test_admin_values_that_cannot_reach_a_query_are_422(
    client: httpx.Client, method: str, path: str
) -> None:
    answer = assert_json_error(client.request(method, path, headers=ADMIN), 422)

    assert answer["error"] == "invalid_request"


def test_a_time_of_thousands_of_digits_is_quarantined_not_a_500(client: httpx.Client) -> None:
    payload = fixture("intelipost", "in_transit")
    payload["history"]["event_date"] = "9" * 5000
    payload["history"].pop("event_date_iso", None)

    answer = assert_json_error(
        client.post(
            "/webhooks/intelipost", json=payload, headers={"Authorization": f"Bearer {SECRET}"}
        ),
        422,
    )

    assert "history.event_date" in answer["detail"]

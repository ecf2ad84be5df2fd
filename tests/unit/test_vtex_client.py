"""The VTEX tracking PUT client, with the transport mocked by respx."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from app.deliver.vtex_client import VtexAnswer, VtexClient, parse_retry_after, tracking_path
from app.settings import VtexTarget

pytestmark = pytest.mark.anyio

HOST = "https://teststore.vtexcommercestable.com.br"
APP_KEY = "vtexappkey-teststore-ABCDEF"
APP_TOKEN = "app-token-SECRET-0123456789"
TARGET = VtexTarget(HOST, APP_KEY, APP_TOKEN)
BODY = {
    "isDelivered": False,
    "deliveredDate": None,
    "events": [
        {
            "city": "São Paulo",
            "state": "SP",
            "description": "Saiu para entrega",
            "date": "2026-04-10",
        }
    ],
}
RECEIPT = {
    "date": "2026-04-10T12:00:03.1234567+00:00",
    "orderId": "1172452900788-01",
    "receipt": "6f2a1c0e4b6d4f0f9b1b0f7c1c1d2e3f",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def vtex() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=HOST, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client() -> AsyncIterator[VtexClient]:
    async with httpx.AsyncClient() as http:
        yield VtexClient(http)


async def put(
    client: VtexClient, order_id: str = "1172452900788-01", invoice: str = "000030711"
) -> VtexAnswer:
    return await client.put_tracking(TARGET, order_id, invoice, BODY)


async def test_put_sends_headers_json_body_and_path(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    route = vtex.put("/api/oms/pvt/orders/1172452900788-01/invoice/000030711/tracking").respond(
        200, json=RECEIPT
    )

    answer = await put(client)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "PUT"
    assert request.headers["X-VTEX-API-AppKey"] == APP_KEY
    assert request.headers["X-VTEX-API-AppToken"] == APP_TOKEN
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == BODY
    assert answer.status_code == 200
    assert answer.json == RECEIPT
    assert json.loads(answer.body or "") == RECEIPT
    assert answer.error is None
    assert answer.retry_after is None
    assert answer.duration_ms >= 0


@pytest.mark.parametrize(
    ("order_id", "invoice", "path"),
    [
        ("1172452900788-01", "000030711", "/api/oms/pvt/orders/1172452900788-01/invoice/000030711"),
        ("A B/1", "NF 7", "/api/oms/pvt/orders/A%20B%2F1/invoice/NF%207"),
        ("v1?x=1#f", "50%", "/api/oms/pvt/orders/v1%3Fx%3D1%23f/invoice/50%25"),
        ("pedido-ç", "nº1", "/api/oms/pvt/orders/pedido-%C3%A7/invoice/n%C2%BA1"),
    ],
)
async def test_path_components_are_percent_encoded(
    vtex: respx.MockRouter, client: VtexClient, order_id: str, invoice: str, path: str
) -> None:
    route = vtex.route(method="PUT").respond(200, json=RECEIPT)

    await put(client, order_id, invoice)

    assert tracking_path(order_id, invoice) == path + "/tracking"
    assert route.calls.last.request.url.raw_path.decode() == path + "/tracking"


async def test_an_error_status_is_reported_with_its_body(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    vtex.route(method="PUT").respond(400, json={"error": {"message": "Invoice not found"}})

    answer = await put(client)

    assert answer.status_code == 400
    assert answer.error == "HTTP 400"
    assert "Invoice not found" in (answer.body or "")
    assert answer.json == {"error": {"message": "Invoice not found"}}


async def test_a_non_json_answer_keeps_its_text(vtex: respx.MockRouter, client: VtexClient) -> None:
    vtex.route(method="PUT").respond(502, text="<html>Bad gateway</html>")

    answer = await put(client)

    assert answer.status_code == 502
    assert answer.json is None
    assert answer.body == "<html>Bad gateway</html>"


async def test_retry_after_in_seconds(vtex: respx.MockRouter, client: VtexClient) -> None:
    vtex.route(method="PUT").respond(429, headers={"Retry-After": "120"}, json={})

    answer = await put(client)

    assert answer.status_code == 429
    assert answer.retry_after == timedelta(seconds=120)


async def test_retry_after_as_an_http_date_in_the_past_means_now(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    vtex.route(method="PUT").respond(
        503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, json={}
    )

    answer = await put(client)

    assert answer.retry_after == timedelta(0)


async def test_retry_after_as_a_far_http_date_is_capped_at_a_day(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    vtex.route(method="PUT").respond(
        503, headers={"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}, json={}
    )

    answer = await put(client)

    assert answer.retry_after == timedelta(days=1)


NOW = datetime(2026, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 30 ", timedelta(seconds=30)),
        ("0", timedelta(0)),
        ("Wed, 21 Oct 2026 07:28:00 GMT", timedelta(seconds=60)),
        ("Wed, 21 Oct 2026 04:28:00 -0300", timedelta(seconds=60)),
        ("Wed, 21 Oct 2026 07:00:00 GMT", timedelta(0)),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_network_error_is_reported_not_raised(
    vtex: respx.MockRouter, client: VtexClient, error: httpx.HTTPError
) -> None:
    vtex.route(method="PUT").mock(side_effect=error)

    answer = await put(client)

    assert answer.status_code is None
    assert answer.body is None
    assert answer.json is None
    assert answer.error is not None
    assert type(error).__name__ in answer.error
    assert APP_TOKEN not in answer.error
    assert "SECRET" not in answer.error


async def test_a_refused_connection_is_reported_without_the_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now: a real refusal.
    async with httpx.AsyncClient() as http:
        answer = await VtexClient(http).put_tracking(
            VtexTarget(f"http://127.0.0.1:{port}", APP_KEY, APP_TOKEN), "O", "I", BODY
        )

    assert answer.status_code is None
    assert answer.error is not None
    assert answer.error.startswith("ConnectError")
    assert "SECRET" not in answer.error


async def test_a_header_invalid_token_is_not_echoed_in_the_error(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    token = APP_TOKEN + "\n"
    # What h11 raises for that header (the mocked transport skips h11 itself).
    vtex.route(method="PUT").mock(
        side_effect=httpx.LocalProtocolError(f"Illegal header value {token.encode()!r}")
    )

    answer = await client.put_tracking(VtexTarget(HOST, APP_KEY, token), "O", "I", BODY)

    assert answer.status_code is None
    assert "SECRET" not in (answer.error or "")


async def test_a_non_ascii_token_is_reported_not_raised(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    vtex.route(method="PUT").respond(200, json=RECEIPT)

    answer = await client.put_tracking(VtexTarget(HOST, APP_KEY, "tøken-SECRET"), "O", "I", BODY)

    assert answer.status_code is None
    assert answer.error is not None
    assert "SECRET" not in answer.error


async def test_the_whole_response_body_is_reported(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    # Keeping the first 2 KB is the store's rule (it owns what an attempt keeps).
    vtex.route(method="PUT").respond(500, text="ã" * 5000)

    answer = await put(client)

    assert answer.status_code == 500
    assert answer.body == "ã" * 5000


@pytest.mark.parametrize("value", ["99999999999999999999", "\u00b2"], ids=["huge", "superscript"])
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, NOW)

    assert result is None or timedelta(0) <= result <= timedelta(days=1)


async def test_a_huge_retry_after_is_reported_not_raised(
    vtex: respx.MockRouter, client: VtexClient
) -> None:
    vtex.route(method="PUT").respond(503, headers={"Retry-After": "9" * 20}, json={})

    answer = await put(client)

    assert answer.status_code == 503

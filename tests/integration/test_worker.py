"""The worker against a real local HTTP server playing VTEX (tests/support/vtex_standin.py)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.api.views import receipt_json
from app.deliver.vtex_client import VtexClient
from app.deliver.worker import Worker
from app.normalize.model import Status
from app.settings import Settings
from app.store import DeliveryView, Store
from app.wiring import DeliveryParts
from tests.integration.helpers import BRT, T0, event, update
from tests.support.vtex_standin import Answer, Recorded, VtexStandIn, receipt_for

pytestmark = pytest.mark.anyio

APP_KEY = "vtexappkey-it-KEY"
APP_TOKEN = "vtex-app-token-it-SECRET"
BODY = b"{}"


class Clock:
    """The worker's idea of now; tests move it forward instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def standin() -> Iterator[VtexStandIn]:
    with VtexStandIn() as server:
        yield server


@pytest.fixture
def vtex(standin: VtexStandIn) -> VtexStandIn:
    """The module's stand-in, reset: no requests seen, VTEX's usual receipt."""
    standin.requests.clear()
    standin.answers.clear()
    standin.responder = lambda recorded: receipt_for(recorded.path)
    standin.orders_responder = lambda recorded: receipt_for(recorded.path)
    return standin


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def settings_for(database_url: str, vtex: VtexStandIn) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "vtex_base_url": vtex.url,
            "vtex_app_key": APP_KEY,
            "vtex_app_token": APP_TOKEN,
            "vtex_timezone": "America/Sao_Paulo",
            "vtex_rate_limit": 1000,
        }
        return Settings(_env_file=None, **(values | overrides))

    return build


def worker_for(store: Store, http: httpx.AsyncClient, settings: Settings, clock: Clock) -> Worker:
    return Worker(
        DeliveryParts(store, VtexClient(http), settings, clock=clock, rng=random.Random(7))
    )


def answers(*sequence: Answer) -> Callable[[Recorded], Answer]:
    """A responder giving these answers in turn, then VTEX's usual receipt."""
    queue = list(sequence)
    return lambda recorded: queue.pop(0) if queue else receipt_for(recorded.path)


async def only_delivery(store: Store, tracking_number: str) -> DeliveryView:
    view = await store.get_shipment(tracking_number)
    assert view is not None
    [delivery] = view.deliveries
    return delivery


async def test_a_delivered_put_sends_the_whole_history_and_stores_the_receipt(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    await store.record_webhook(
        "generic",
        BODY,
        [
            update(
                "TRK1",
                # 23:30 in Brasília is already the next day in UTC.
                event(datetime(2026, 4, 10, 23, 30, tzinfo=BRT), "  Em trânsito  ", city="Recife"),
                event(
                    datetime(2026, 4, 9, 13, 5, tzinfo=BRT),
                    "Etiqueta emitida",
                    Status.INFO_RECEIVED,
                    city="",
                    state="",
                ),
            )
        ],
        T0,
    )
    await store.register_shipment("TRK1", "1172452900788-01", "000030711", "generic", None, T0)
    await store.record_webhook(
        "generic",
        BODY,
        [
            update(
                "TRK1",
                event(datetime(2026, 4, 12, 9, 15, tzinfo=BRT), "Entregue", Status.DELIVERED),
            )
        ],
        T0,
    )
    worker = worker_for(store, http, settings_for(), Clock(T0 + timedelta(days=3)))

    await worker.drain()

    [put] = vtex.puts()
    assert put.path == "/api/oms/pvt/orders/1172452900788-01/invoice/000030711/tracking"
    assert put.headers["x-vtex-api-appkey"] == APP_KEY
    assert put.headers["x-vtex-api-apptoken"] == APP_TOKEN
    assert put.headers["accept"] == "application/json"
    assert put.headers["content-type"] == "application/json"
    expected = {
        "isDelivered": True,
        "deliveredDate": "2026-04-12 09:15",
        "events": [
            {"city": "", "state": "", "description": "Etiqueta emitida", "date": "2026-04-09"},
            {"city": "Recife", "state": "PR", "description": "Em trânsito", "date": "2026-04-10"},
            {"city": "Curitiba", "state": "PR", "description": "Entregue", "date": "2026-04-12"},
        ],
    }
    assert put.body == expected

    [(_, answer)] = vtex.tracking_answers()
    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "delivered"
    assert receipt_json(delivery.receipt) == {
        "date": answer.body["date"],
        "orderId": "1172452900788-01",
        "receipt": answer.body["receipt"],
    }
    assert [a.status_code for a in delivery.attempts] == [200]
    assert json.loads(delivery.attempts[0].response_body) == answer.body
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.last_body == expected

    await worker.drain()
    assert len(vtex.puts()) == 1


async def test_a_burst_for_one_invoice_becomes_one_put(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    for number in ("TRK-A", "TRK-B"):
        await store.register_shipment(number, "ORD-1", "INV-1", None, None, T0)
    for minutes, number in enumerate(["TRK-A", "TRK-B", "TRK-A", "TRK-B"]):
        when = T0 + timedelta(minutes=10 - minutes)
        await store.record_webhook("generic", BODY, [update(number, event(when, number))], T0)

    await worker_for(store, http, settings_for(), Clock(T0)).drain()

    [put] = vtex.puts()
    assert [e["description"] for e in put.body["events"]] == ["TRK-B", "TRK-A", "TRK-B", "TRK-A"]


async def test_a_503_is_retried_after_retry_after_and_every_attempt_is_kept(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    vtex.responder = answers(Answer(503, {"error": "busy"}, {"Retry-After": "30"}))
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    clock = Clock(T0)
    worker = worker_for(store, http, settings_for(), clock)

    await worker.drain()

    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "retrying"
    assert delivery.last_status == 503
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at >= T0 + timedelta(seconds=30)

    await worker.drain()
    assert len(vtex.puts()) == 1

    clock.now = T0 + timedelta(seconds=31)
    await worker.drain()

    first, second = vtex.puts()
    assert first.body == second.body
    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "delivered"
    assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 503), (2, 200)]
    assert "busy" in delivery.attempts[0].response_body
    assert delivery.attempts[0].error
    assert delivery.attempts[1].error is None
    assert delivery.receipt is not None


async def test_a_400_past_the_max_delivery_age_is_dead(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    vtex.responder = lambda _: Answer(400, {"error": {"message": "Invoice not found"}})
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    clock = Clock(T0 + timedelta(hours=2))
    worker = worker_for(store, http, settings_for(max_delivery_age="1h"), clock)

    await worker.drain()

    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "dead"
    assert delivery.last_status == 400
    assert delivery.next_attempt_at is None
    assert "Invoice not found" in delivery.attempts[0].response_body

    clock.now += timedelta(days=7)
    await worker.drain()
    assert len(vtex.puts()) == 1


async def test_a_404_within_the_max_delivery_age_takes_the_slow_lane(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    vtex.responder = lambda _: Answer(404, {"error": {"message": "Order not found"}})
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    clock = Clock(T0)

    await worker_for(store, http, settings_for(), clock).drain()

    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "retrying"
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at - T0 == timedelta(seconds=30)


async def test_missing_credentials_record_a_clear_error_and_send_nothing(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )
    settings = settings_for(vtex_app_key=None, vtex_app_token=None)

    await worker_for(store, http, settings, Clock(T0)).drain()

    assert vtex.requests == []
    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "retrying"
    [attempt] = delivery.attempts
    assert attempt.status_code is None
    assert "RELAY_VTEX_APP_KEY" in attempt.error
    assert "RELAY_VTEX_APP_TOKEN" in attempt.error
    # Nothing was sent, so there is no "last body sent" to show.
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.last_body is None


async def test_an_accounts_own_credentials_are_used(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    settings = settings_for(
        vtex_accounts={"storeb": {"app_key": "key-of-b", "app_token": "token-of-b"}}
    )
    await store.register_shipment("TRK1", "O", "I", None, "storeb", T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)

    await worker_for(store, http, settings, Clock(T0)).drain()

    [put] = vtex.puts()
    assert put.headers["x-vtex-api-appkey"] == "key-of-b"
    assert put.headers["x-vtex-api-apptoken"] == "token-of-b"


async def test_path_components_are_percent_encoded(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    await store.register_shipment("TRK1", "A B/1?x#y", "NF 7%", None, None, T0)
    await store.record_webhook("generic", BODY, [update("TRK1", event(T0))], T0)

    await worker_for(store, http, settings_for(), Clock(T0)).drain()

    [put] = vtex.puts()
    assert put.path == "/api/oms/pvt/orders/A%20B%2F1%3Fx%23y/invoice/NF%207%25/tracking"
    assert (await only_delivery(store, "TRK1")).state == "delivered"


async def test_a_token_with_a_trailing_newline_is_sent_without_it(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    # A token read from a file or a Kubernetes Secret often keeps its trailing newline.
    settings = settings_for(vtex_app_token=APP_TOKEN + "\n")
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )

    await worker_for(store, http, settings, Clock(T0)).drain()

    [put] = vtex.puts()
    assert put.headers["x-vtex-api-apptoken"] == APP_TOKEN
    assert (await only_delivery(store, "TRK1")).state == "delivered"


def test_a_token_that_cannot_be_a_header_stops_the_settings_without_echoing_it(
    settings_for: Callable[..., Settings],
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_for(vtex_app_token="tøken-SECRET")

    [problem] = refused.value.errors()
    assert problem["loc"] == ("vtex_app_token",)
    assert "SECRET" not in problem["msg"]


async def test_an_absurd_retry_after_still_records_the_attempt(
    store: Store, http: httpx.AsyncClient, settings_for: Callable[..., Settings], vtex: VtexStandIn
) -> None:
    vtex.responder = answers(Answer(503, {}, {"Retry-After": "300000000000"}))
    await store.record_webhook(
        "generic", BODY, [update("TRK1", event(T0), order_id="O", invoice_number="I")], T0
    )

    await worker_for(store, http, settings_for(), Clock(T0)).drain()

    delivery = await only_delivery(store, "TRK1")
    assert delivery.state == "retrying"
    assert [a.status_code for a in delivery.attempts] == [503]

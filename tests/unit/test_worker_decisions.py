"""The delivery worker's decisions, without a database or a network: the in-memory store,
VTEX behind an ``httpx.MockTransport``, and a clock the tests move (SPEC §2, §3)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from app.api.views import receipt_json
from app.deliver.retry import AUTH_LANE, backoff, slow_lane
from app.deliver.vtex_client import VtexClient
from app.deliver.worker import Worker
from app.normalize.model import ShipmentUpdate, Status, TrackingEvent
from app.settings import Settings
from app.store import DeliveryView
from app.wiring import DeliveryParts
from tests.support.memory_store import MemoryStore
from tests.support.vtex_orders import order, package

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("clean_environment")]

T0 = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
HOST = "https://teststore.vtexcommercestable.com.br"
SEED = 7
ORDERS = "/api/oms/pvt/orders"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    """The worker's idea of now; tests move it forward instead of sleeping."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeVtex:
    """VTEX's OMS behind a mock transport. Get order answers ``orders`` (404 for another
    order), the PATCH 200, and each tracking PUT the next of ``put_answers``, then a receipt.
    ``during_put`` runs while a PUT is in flight (once)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.put_answers: list[httpx.Response] = []
        self.during_put: Callable[[], Awaitable[None]] | None = None

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.requests]

    def puts(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == "PUT"]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        order_id = request.url.path.split("/")[5]
        if request.method == "GET":
            found = self.orders.get(order_id)
            if found is None:
                return httpx.Response(404, json={"error": {"message": "Order not found"}})
            return httpx.Response(200, json=found)
        if request.method == "PATCH":
            return httpx.Response(200, json={"date": "2026-04-10T12:00:00Z"})
        if self.during_put is not None:
            during, self.during_put = self.during_put, None
            await during()
        if self.put_answers:
            return self.put_answers.pop(0)
        receipt = f"receipt-{len(self.puts())}"
        return httpx.Response(
            200, json={"date": "2026-04-10T12:00:01Z", "orderId": order_id, "receipt": receipt}
        )


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "vtex_account": "teststore",
        "vtex_app_key": "vtexappkey-teststore-KEY",
        "vtex_app_token": "app-token-SECRET",
        "vtex_timezone": "America/Sao_Paulo",
        "vtex_rate_limit": 10_000,
    }
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture
def vtex() -> FakeVtex:
    return FakeVtex()


@pytest.fixture
async def http(vtex: FakeVtex) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(vtex.handle)) as client:
        yield client


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def worker(store: MemoryStore, http: httpx.AsyncClient, clock: Clock, **overrides: Any) -> Worker:
    parts = DeliveryParts(
        store, VtexClient(http), settings(**overrides), clock=clock, rng=random.Random(SEED)
    )
    return Worker(parts)


def scan(when: datetime, description: str = "Objeto em trânsito", **fields: Any) -> TrackingEvent:
    values: dict[str, Any] = {
        "status": Status.IN_TRANSIT,
        "carrier_status": "RO",
        "city": "Curitiba",
        "state": "PR",
    }
    return TrackingEvent(occurred_at=when, description=description, **(values | fields))


async def webhook(
    store: MemoryStore, number: str, *events: TrackingEvent, now: datetime = T0, **fields: Any
) -> None:
    await store.record_webhook("generic", b"{}", [ShipmentUpdate(number, events, **fields)], now)


async def only_delivery(store: MemoryStore, order_id: str) -> DeliveryView:
    [delivery] = [d for d in await store.list_deliveries(None, 100) if d.order_id == order_id]
    return delivery


def put_path(order_id: str, invoice_number: str) -> str:
    return f"{ORDERS}/{order_id}/invoice/{invoice_number}/tracking"


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body or {"error": "busy"}, headers=headers)


# -- the first PUT of an invoice ---------------------------------------------------------


async def test_the_first_put_follows_the_check_that_gives_the_package_its_number(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", courier="Correios"))
    url = "https://track.example/TRK1"
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1", tracking_url=url)
    clock = Clock(T0)

    await worker(store, http, clock).drain()

    assert vtex.calls() == [
        ("GET", f"{ORDERS}/O-1"),
        ("PATCH", f"{ORDERS}/O-1/invoice/INV-1"),
        ("PUT", put_path("O-1", "INV-1")),
    ]
    patch = json.loads(vtex.requests[1].content)
    assert patch == {"trackingNumber": "TRK1", "trackingUrl": url, "courier": "Correios"}
    sent = {
        "isDelivered": False,
        "deliveredDate": None,
        "events": [
            {
                "city": "Curitiba",
                "state": "PR",
                "description": "Objeto em trânsito",
                "date": "2026-04-10",
            }
        ],
    }
    assert vtex.puts() == [sent]
    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.delivered_at, delivery.next_attempt_at) == (
        "delivered",
        T0,
        None,
    )
    assert receipt_json(delivery.receipt) == {
        "date": "2026-04-10T12:00:01Z",
        "orderId": "O-1",
        "receipt": "receipt-1",
    }
    assert json.loads(delivery.attempts[0].response_body)["receipt"] == "receipt-1"
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.last_body == sent
    assert (await store.invoice_history("O-1", "INV-1")).checked

    # The invoice was checked once: later deliveries only PUT.
    await webhook(store, "TRK1", scan(T0 + timedelta(hours=1), "Saiu para entrega"))
    await worker(store, http, clock).drain()

    assert vtex.calls()[3:] == [("PUT", put_path("O-1", "INV-1"))]
    assert len(vtex.puts()[1]["events"]) == 2


async def test_a_package_that_has_its_number_is_not_patched(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")

    await worker(store, http, Clock(T0)).drain()

    assert [method for method, _ in vtex.calls()] == ["GET", "PUT"]
    assert (await store.invoice_history("O-1", "INV-1")).checked


async def test_an_order_without_the_invoice_yet_takes_the_slow_lane_without_a_put(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-OTHER", tracking_number="X"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    clock = Clock(T0)
    relay = worker(store, http, clock)

    await relay.drain()

    assert vtex.calls() == [("GET", f"{ORDERS}/O-1")]
    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.next_attempt_at) == ("retrying", T0 + slow_lane(1))
    [attempt] = delivery.attempts
    assert attempt.status_code == 404
    assert attempt.error == "Get order: the order has no invoice INV-1 yet"
    assert not (await store.invoice_history("O-1", "INV-1")).checked
    view = await store.get_shipment("TRK1")
    assert view is not None
    assert view.last_body is None  # nothing was sent

    clock.now = T0 + slow_lane(1) - timedelta(seconds=1)
    await relay.drain()
    assert len(vtex.requests) == 1


# -- retries -------------------------------------------------------------------------------


async def test_a_503_is_retried_no_sooner_than_its_retry_after(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    vtex.put_answers = [answer(503, {"error": "busy"}, **{"Retry-After": "30"})]
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    clock = Clock(T0)
    relay = worker(store, http, clock)

    await relay.drain()

    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.last_status) == ("retrying", 503)
    assert delivery.next_attempt_at == T0 + timedelta(seconds=30)
    clock.now = T0 + timedelta(seconds=29)
    await relay.drain()
    assert len(vtex.puts()) == 1

    clock.now = T0 + timedelta(seconds=30)
    await relay.drain()

    first, second = vtex.puts()
    assert first == second
    # The invoice check passed with the first attempt: the retry does not repeat it.
    assert [method for method, _ in vtex.calls()] == ["GET", "PUT", "PUT"]
    delivery = await only_delivery(store, "O-1")
    assert delivery.state == "delivered"
    assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 503), (2, 200)]
    assert "busy" in delivery.attempts[0].response_body
    assert delivery.receipt is not None


async def test_transient_failures_back_off_exponentially_with_jitter(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    vtex.put_answers = [answer(500), answer(502)]
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    clock = Clock(T0)
    relay = worker(store, http, clock)
    expected = random.Random(SEED)
    first_wait, second_wait = backoff(1, expected), backoff(2, expected)

    await relay.drain()

    delivery = await only_delivery(store, "O-1")
    assert delivery.next_attempt_at == T0 + first_wait
    clock.now = T0 + first_wait
    await relay.drain()
    delivery = await only_delivery(store, "O-1")
    assert delivery.next_attempt_at == clock.now + second_wait
    assert [a.status_code for a in delivery.attempts] == [500, 502]


@pytest.mark.parametrize(
    ("status", "state", "next_after"),
    [(400, "dead", None), (503, "dead", None), (401, "retrying", AUTH_LANE)],
)
async def test_past_the_max_age_a_failure_is_dead_unless_the_key_is_at_fault(
    store: MemoryStore,
    http: httpx.AsyncClient,
    vtex: FakeVtex,
    status: int,
    state: str,
    next_after: timedelta | None,
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    vtex.put_answers = [answer(status) for _ in range(3)]
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    clock = Clock(T0 + timedelta(hours=2))
    relay = worker(store, http, clock, max_delivery_age="1h")

    await relay.drain()

    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.last_status) == (state, status)
    assert delivery.next_attempt_at == (None if next_after is None else clock.now + next_after)
    clock.now += timedelta(days=7)
    await relay.drain()
    assert len(vtex.puts()) == (1 if state == "dead" else 2)


async def test_without_credentials_nothing_is_sent_and_the_delivery_waits(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")

    await worker(store, http, Clock(T0), vtex_app_key=None, vtex_app_token=None).drain()

    assert vtex.requests == []
    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.next_attempt_at) == ("retrying", T0 + AUTH_LANE)
    assert "RELAY_VTEX_APP_KEY" in delivery.attempts[0].error


# -- 429: the account pauses ------------------------------------------------------------


async def test_a_429_pauses_every_delivery_of_its_account_until_it_ends(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    for number, order_id, account in (
        ("TRK1", "O-1", "shop"),
        ("TRK2", "O-2", "shop"),
        ("TRK3", "O-3", "other"),
    ):
        vtex.orders[order_id] = order(order_id, account, package("INV", tracking_number=number))
        await store.register_shipment(number, order_id, "INV", None, account, T0)
        await webhook(store, number, scan(T0))
    vtex.put_answers = [answer(429, **{"Retry-After": "60"})]
    clock = Clock(T0)
    until = T0 + timedelta(seconds=60)
    # One PUT at a time, so that the 429 is known before the next delivery of "shop" starts.
    relay = worker(store, http, clock, vtex_base_url=HOST, vtex_max_concurrency=1)

    await relay.drain()

    assert vtex.calls() == [
        ("GET", f"{ORDERS}/O-1"),
        ("PUT", put_path("O-1", "INV")),
        ("GET", f"{ORDERS}/O-3"),
        ("PUT", put_path("O-3", "INV")),
    ]
    assert await store.paused_accounts(T0) == {"shop": until}
    held = await only_delivery(store, "O-2")
    assert (held.state, held.next_attempt_at, held.attempts) == ("pending", until, [])
    assert (await only_delivery(store, "O-1")).next_attempt_at == until

    clock.now = until
    await relay.drain()

    assert sorted(vtex.calls()[4:]) == [
        ("GET", f"{ORDERS}/O-2"),
        ("PUT", put_path("O-1", "INV")),
        ("PUT", put_path("O-2", "INV")),
    ]
    assert {d.state for d in await store.list_deliveries(None, 10)} == {"delivered"}


# -- what arrives meanwhile ---------------------------------------------------------------


async def test_events_that_arrive_during_the_put_go_out_in_the_next_delivery(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    late = scan(T0 + timedelta(hours=1), "Entregue", status=Status.DELIVERED)
    vtex.during_put = lambda: webhook(store, "TRK1", late)

    await worker(store, http, Clock(T0)).drain()

    first, second = vtex.puts()
    assert [e["description"] for e in first["events"]] == ["Objeto em trânsito"]
    assert [e["description"] for e in second["events"]] == ["Objeto em trânsito", "Entregue"]
    assert (first["isDelivered"], second["isDelivered"]) == (False, True)
    deliveries = await store.list_deliveries(None, 10)
    assert [d.state for d in deliveries] == ["delivered", "delivered"]


async def test_the_next_delivery_waits_the_coalescing_window(
    http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    window = timedelta(seconds=5)
    store = MemoryStore(coalesce=window)
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    clock = Clock(T0 + window)
    vtex.during_put = lambda: webhook(store, "TRK1", scan(T0, "late"), now=clock.now)
    relay = worker(store, http, clock)

    await relay.drain()

    assert len(vtex.puts()) == 1
    assert await store.backlog(clock.now) == (1, 0)
    clock.now += window
    await relay.drain()
    assert len(vtex.puts()[1]["events"]) == 2


async def test_an_invoice_left_without_events_is_dead_without_a_request(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-2", tracking_number="TRK1"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    # Registered to another invoice before the worker ran: INV-1's delivery has nothing left.
    await store.register_shipment("TRK1", "O-1", "INV-2", None, None, T0)

    await worker(store, http, Clock(T0)).drain()

    assert vtex.calls() == [("GET", f"{ORDERS}/O-1"), ("PUT", put_path("O-1", "INV-2"))]
    states = {d.invoice_number: d for d in await store.list_deliveries(None, 10)}
    assert states["INV-2"].state == "delivered"
    assert states["INV-1"].state == "dead"
    assert states["INV-1"].attempts[0].error == "the invoice has no events any more"


async def test_stopping_releases_a_put_vtex_did_not_answer(
    store: MemoryStore, http: httpx.AsyncClient, vtex: FakeVtex
) -> None:
    vtex.orders["O-1"] = order("O-1", "teststore", package("INV-1", tracking_number="TRK1"))
    await webhook(store, "TRK1", scan(T0), order_id="O-1", invoice_number="INV-1")
    in_flight = asyncio.Event()

    async def never_answered() -> None:
        in_flight.set()
        await asyncio.Event().wait()

    vtex.during_put = never_answered
    clock = Clock(T0)
    relay = worker(store, http, clock)

    with anyio.fail_after(10):
        running = asyncio.create_task(relay.run())
        await in_flight.wait()
        clock.now = T0 + timedelta(seconds=3)
        await relay.stop(grace=0.05)
        await running

    delivery = await only_delivery(store, "O-1")
    assert (delivery.state, delivery.attempts) == ("pending", [])
    assert delivery.next_attempt_at == clock.now
    [again] = await store.claim_due_deliveries(clock.now, clock.now + timedelta(seconds=30), 1)
    assert again.attempt_count == 0


# -- concurrency ---------------------------------------------------------------------------


async def test_a_slow_record_does_not_hold_the_slot_of_the_next_put(
    store: MemoryStore, vtex: FakeVtex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RELAY_VTEX_MAX_CONCURRENCY bounds the VTEX calls in flight, not the store's writes:
    with one slot, the second invoice's PUT goes while the first's attempt is being recorded."""
    for n in (1, 2):
        numbered = package(f"INV-{n}", tracking_number=f"TRK{n}")
        vtex.orders[f"O-{n}"] = order(f"O-{n}", "teststore", numbered)
        await webhook(store, f"TRK{n}", scan(T0), order_id=f"O-{n}", invoice_number=f"INV-{n}")
    recording = asyncio.Event()
    both_put = asyncio.Event()
    record = store.record_attempt

    async def slow_record(*args: Any, **kwargs: Any) -> None:
        recording.set()
        with anyio.fail_after(5):
            await both_put.wait()  # the first record waits for the second PUT
        await record(*args, **kwargs)

    async def put_seen(request: httpx.Request) -> httpx.Response:
        answered = await FakeVtex.handle(vtex, request)
        if len(vtex.puts()) == 2:
            both_put.set()
        return answered

    monkeypatch.setattr(store, "record_attempt", slow_record)
    async with httpx.AsyncClient(transport=httpx.MockTransport(put_seen)) as client:
        await worker(store, client, Clock(T0), vtex_max_concurrency=1).drain()

    assert recording.is_set()
    assert [d.state for d in await store.list_deliveries(None, 10)] == ["delivered"] * 2

"""The VTEX stand-in as the README's walk-through runs it (``python -m
tests.support.vtex_standin PORT --order ORDER_ID:INVOICE_NUMBER[:TRACKING_NUMBER]``): Get order
answers the orders it was given, shaped like VTEX's, 404 for any other; the partial-invoice
PATCH and tracking PUTs change the package (``trackingNumber``, ``courierStatus``), so that
the relay's check before a first PUT and ``relay reconcile`` read it as they read VTEX."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.deliver.vtex_client import VtexClient
from app.deliver.vtex_order import package_of_invoice, what_vtex_lacks
from app.deliver.worker import Worker
from app.settings import Settings
from app.store import Store
from app.wiring import DeliveryParts
from tests.integration.helpers import BRT, event, update
from tests.support.vtex_standin import order_option

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"X-VTEX-API-AppKey": "vtexappkey-mystore-ABCDEF", "X-VTEX-API-AppToken": "the-app-token"}
WALK_ORDER, WALK_INVOICE, WALK_TRACKING = "1172452900788-01", "000030711", "BR123456789"
OTHER_ORDER = "1172452900799-01"
ORDERS = (
    f"{WALK_ORDER}:{WALK_INVOICE}",  # no tracking number yet: the relay PATCHes it first
    f"{OTHER_ORDER}:000040001:BR000040001",
    f"{OTHER_ORDER}:000040002",
)


class StandIn:
    """The stand-in process: its base URL, and every line it printed."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("VTEX stand-in on http://"), banner
        self.url = banner.split(" on ", 1)[1].strip()
        self.lines.append(banner)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def answers_printed(self, call: str, count: int, timeout: float = 5.0) -> list[Any]:
        """The bodies of the answers it printed to ``call`` (``"GET /api/..."``), in order,
        once it has printed ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = list(self.lines)
            found = [
                json.loads(lines[i + 2].split(" ", 4)[-1])
                for i, line in enumerate(lines[:-2])
                if line.rstrip("\n") == call
            ]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def printed(self, text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.05)
        return False


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A fresh stand-in process per test (each test changes its orders)."""
    args = [sys.executable, "-m", "tests.support.vtex_standin", "0"]
    for option in ORDERS:
        args += ["--order", option]
    process = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        running = StandIn(process)
    except BaseException:
        process.kill()
        process.communicate(timeout=10)
        raise
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, headers=KEYS) as client:
        yield client


def tracking_body(*descriptions: str, delivered: bool = False) -> dict[str, Any]:
    return {
        "isDelivered": delivered,
        "deliveredDate": "2026-11-22 14:30" if delivered else None,
        "events": [
            {"city": "Curitiba", "state": "PR", "description": text, "date": f"2026-11-2{i}"}
            for i, text in enumerate(descriptions)
        ],
    }


async def test_get_order_answers_the_orders_it_was_given_shaped_like_vtex(
    standin: StandIn, http: httpx.AsyncClient
) -> None:
    walk = await http.get(f"{standin.url}/api/oms/pvt/orders/{WALK_ORDER}")
    assert walk.status_code == 200, walk.text
    body = walk.json()
    assert body["orderId"] == WALK_ORDER
    assert body["status"] == "invoiced"
    [walk_package] = body["packageAttachment"]["packages"]
    assert walk_package["invoiceNumber"] == WALK_INVOICE
    assert walk_package["trackingNumber"] == ""
    assert walk_package["courierStatus"] is None
    assert walk_package["courier"]
    # The relay's own reader sees an order, and the invoice's package without tracking number.
    package = package_of_invoice(body, WALK_INVOICE)
    assert package is not None
    assert package.tracking_number == ""

    other = (await http.get(f"{standin.url}/api/oms/pvt/orders/{OTHER_ORDER}")).json()
    assert [
        (p["invoiceNumber"], p["trackingNumber"]) for p in other["packageAttachment"]["packages"]
    ] == [
        ("000040001", "BR000040001"),
        ("000040002", ""),
    ]
    assert standin.printed(f"serves order {WALK_ORDER}, invoice {WALK_INVOICE} (no tracking")


async def test_an_order_or_invoice_it_was_not_given_answers_404_like_vtex(
    standin: StandIn, http: httpx.AsyncClient
) -> None:
    unknown = await http.get(f"{standin.url}/api/oms/pvt/orders/1172452900000-01")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "OMS004"
    put = await http.put(
        f"{standin.url}/api/oms/pvt/orders/1172452900000-01/invoice/1/tracking",
        json=tracking_body("Objeto postado"),
    )
    assert put.status_code == 404
    other_invoice = await http.put(
        f"{standin.url}/api/oms/pvt/orders/{WALK_ORDER}/invoice/999/tracking",
        json=tracking_body("Objeto postado"),
    )
    assert other_invoice.status_code == 404
    without_keys = await http.get(
        f"{standin.url}/api/oms/pvt/orders/{WALK_ORDER}",
        headers={"X-VTEX-API-AppKey": "", "X-VTEX-API-AppToken": ""},
    )
    assert without_keys.status_code == 401
    assert standin.printed("--order ORDER_ID:INVOICE_NUMBER to serve one")


async def test_patch_and_tracking_puts_become_the_packages_tracking_and_courier_status(
    standin: StandIn, http: httpx.AsyncClient
) -> None:
    order_url = f"{standin.url}/api/oms/pvt/orders/{OTHER_ORDER}"
    patched = await http.patch(
        f"{order_url}/invoice/000040002",
        json={"trackingNumber": "BR000040002", "courier": "Correios"},
    )
    assert patched.status_code == 200, patched.text
    first = tracking_body("Objeto postado", "Objeto em trânsito")
    put = await http.put(f"{order_url}/invoice/000040002/tracking", json=first)
    assert put.status_code == 200, put.text
    assert put.json()["orderId"] == OTHER_ORDER
    assert put.json()["receipt"]

    packages = (await http.get(order_url)).json()["packageAttachment"]["packages"]
    untouched, changed = packages
    assert untouched["courierStatus"] is None
    assert changed["trackingNumber"] == "BR000040002"
    assert changed["courier"] == "Correios"
    status = changed["courierStatus"]
    assert status["finished"] is False
    assert [(d["description"], d["city"], d["state"]) for d in status["data"]] == [
        ("Objeto postado", "Curitiba", "PR"),
        ("Objeto em trânsito", "Curitiba", "PR"),
    ]
    order = (await http.get(order_url)).json()
    package = package_of_invoice(order, "000040002")
    assert package is not None
    assert what_vtex_lacks(package, first) is None
    later = tracking_body("Objeto postado", "Objeto em trânsito", "Entregue", delivered=True)
    assert what_vtex_lacks(package, later) is not None

    assert (
        await http.put(f"{order_url}/invoice/000040002/tracking", json=later)
    ).status_code == 200
    package = package_of_invoice((await http.get(order_url)).json(), "000040002")
    assert package is not None
    assert package.courier_status["finished"] is True
    assert package.courier_status["deliveredDate"] == "2026-11-22 14:30"
    assert what_vtex_lacks(package, later) is None


async def test_the_walk_through_patches_puts_and_reconciles_nothing_missing(
    standin: StandIn, http: httpx.AsyncClient, store: Store, database_url: str
) -> None:
    """The README's walk-through in process: no check skipped, nothing to re-send."""
    now = datetime.now(UTC)
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        vtex_base_url=standin.url,
        vtex_app_key=KEYS["X-VTEX-API-AppKey"],
        vtex_app_token=KEYS["X-VTEX-API-AppToken"],
        vtex_timezone="America/Sao_Paulo",
    )
    await store.register_shipment(WALK_TRACKING, WALK_ORDER, WALK_INVOICE, "generic", None, now)
    when = datetime(2026, 11, 20, 9, 15, tzinfo=BRT)
    await store.record_webhook(
        "generic", b"{}", [update(WALK_TRACKING, event(when, "Objeto em trânsito"))], now
    )
    worker = Worker(
        DeliveryParts(
            store,
            VtexClient(http),
            settings,
            clock=lambda: now + timedelta(minutes=1),
            rng=random.Random(7),
        )
    )

    await worker.drain()

    view = await store.get_shipment(WALK_TRACKING)
    assert view is not None
    [delivery] = view.deliveries
    assert delivery.state == "delivered"
    assert standin.printed(f"PATCH /api/oms/pvt/orders/{WALK_ORDER}/invoice/{WALK_INVOICE}\n")
    order = (await http.get(f"{standin.url}/api/oms/pvt/orders/{WALK_ORDER}")).json()
    package = package_of_invoice(order, WALK_INVOICE)
    assert package is not None
    assert package.tracking_number == WALK_TRACKING
    assert [d["description"] for d in package.courier_status["data"]] == ["Objeto em trânsito"]

    report = await Worker(DeliveryParts(store, VtexClient(http), settings)).reconciler.reconcile()
    assert (report.checked, report.resent, report.unreadable) == (1, 0, 0)

    # What it printed is each answer as it was sent: first no tracking number, at last the
    # tracking number and the events.
    # (the worker's Get order, this test's, reconcile's)
    printed = standin.answers_printed(f"GET /api/oms/pvt/orders/{WALK_ORDER}", count=3)
    first, *_, last = [order["packageAttachment"]["packages"][0] for order in printed]
    assert (first["trackingNumber"], first["courierStatus"]) == ("", None)
    assert last["trackingNumber"] == WALK_TRACKING
    assert last["courierStatus"]["data"][0]["description"] == "Objeto em trânsito"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1172452900788-01:000030711", ("1172452900788-01", "000030711", "")),
        ("1172452900788-01:000030711:BR1", ("1172452900788-01", "000030711", "BR1")),
    ],
)
def test_order_option_reads_order_invoice_and_tracking(
    text: str, expected: tuple[str, str, str]
) -> None:
    assert order_option(text) == expected


@pytest.mark.parametrize("text", ["1172452900788-01", "a:b:c:d", "1172452900788-01::BR1", ":1"])
def test_order_option_refuses_what_is_not_order_and_invoice(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        order_option(text)

"""VTEX orders end to end (issue 7): the orders hook registers packages, an invoice gets its
tracking number before its first PUT, several accounts keep their own keys, reconciliation
re-sends what VTEX lacks, and ``relay vtex subscribe`` configures the hook.

``relay serve`` runs against a VTEX stand-in that keeps orders (tests/support/vtex_orders.py).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.signing import standard_webhooks_headers
from tests.support.vtex_orders import VtexOms, order, package
from tests.support.vtex_standin import Recorded, VtexStandIn
from tests.support.webhook_load import wait_until

pytestmark = pytest.mark.e2e

ADMIN = "admin-orders-e2e"
HOOK_SECRET = "hook-secret-orders-e2e-41b"
GENERIC_SECRET = "generic-secret-orders-e2e"
KEYS = {"key-store-a": "token-store-a", "key-store-b": "token-store-b"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RelayProcess, VtexStandIn, VtexOms]]:
    oms = VtexOms(KEYS)
    with contextlib.ExitStack() as stack:
        vtex = stack.enter_context(VtexStandIn())
        vtex.responder = vtex.orders_responder = oms.respond
        env = {
            "RELAY_VTEX_BASE_URL": vtex.url,
            "RELAY_VTEX_ACCOUNT": "storea",
            "RELAY_VTEX_APP_KEY": "key-store-a",
            "RELAY_VTEX_APP_TOKEN": "token-store-a",
            "RELAY_VTEX_ACCOUNTS__STOREB__APP_KEY": "key-store-b",
            "RELAY_VTEX_ACCOUNTS__STOREB__APP_TOKEN": "token-store-b",
            "RELAY_VTEX_HOOK_SECRET": HOOK_SECRET,
            "RELAY_ADMIN_TOKEN": ADMIN,
            "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
            "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
        }
        if request.param == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        relay = stack.enter_context(RelayProcess(tmp_path_factory.mktemp("relay"), env))
        yield relay, vtex, oms


def new_order() -> str:
    return f"{uuid.uuid4().int % 10**13:013d}-01"


def calls_for(vtex: VtexStandIn, order_id: str) -> list[Recorded]:
    return [r for r in list(vtex.requests) if f"/orders/{order_id}" in r.path]


def post_events(relay: RelayProcess, tracking: str, *descriptions: str, url: str = "") -> Any:
    payload: dict[str, Any] = {
        "trackingNumber": tracking,
        "events": [
            {
                "time": f"2026-11-2{i}T10:00:00-03:00",
                "status": "delivered" if text.startswith("Entregue") else "in_transit",
                "description": text,
                "city": "Recife",
                "state": "PE",
            }
            for i, text in enumerate(descriptions, start=1)
        ],
    }
    if url:
        payload["trackingUrl"] = url
    body = json.dumps(payload).encode()
    answer = relay.client.post(
        "/webhooks/generic", content=body, headers=standard_webhooks_headers(GENERIC_SECRET, body)
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def register(relay: RelayProcess, tracking: str, order_id: str, invoice: str) -> None:
    answer = relay.client.put(
        f"/shipments/{tracking}",
        json={"orderId": order_id, "invoiceNumber": invoice},
        headers=relay.admin(ADMIN),
    )
    assert answer.status_code in (200, 201), answer.text


def shipment(relay: RelayProcess, tracking: str) -> Any:
    return relay.client.get(f"/shipments/{tracking}", headers=relay.admin(ADMIN))


def notification(order_id: str, account: str, state: str = "invoiced") -> dict[str, Any]:
    return {
        "Domain": "Fulfillment",
        "OrderId": order_id,
        "State": state,
        "LastState": "handling",
        "LastChange": "2026-11-28T10:00:00.0000000Z",
        "CurrentChange": "2026-11-28T10:00:01.0000000Z",
        "Origin": {"Account": account, "Key": f"vtexappkey-{account}"},
    }


def test_the_hook_registers_packages_and_their_webhooks_reach_that_accounts_vtex(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, oms = setup
    order_id = new_order()
    tn1, tn2 = f"TB{uuid.uuid4().hex[:8]}", f"TB{uuid.uuid4().hex[:8]}"
    oms.add(order(order_id, "storeb", package("NF1", tn1), package("NF2", tn2), package("NF3")))
    hook = "/vtex/orders-hook"

    ping = relay.client.post(hook, json={"hookConfig": "ping"})
    unsigned = relay.client.post(hook, json=notification(order_id, "storeb"))
    wrong = relay.client.post(
        hook, json=notification(order_id, "storeb"), headers={"X-Relay-Hook-Token": "guess"}
    )
    started = time.monotonic()
    accepted = relay.client.post(
        hook, json=notification(order_id, "storeb"), headers={"X-Relay-Hook-Token": HOOK_SECRET}
    )
    answered_in = time.monotonic() - started

    assert ping.status_code == 200
    assert (unsigned.status_code, wrong.status_code) == (401, 401)
    assert unsigned.json()["error"] == "unauthorized"
    assert HOOK_SECRET not in wrong.text
    assert accepted.status_code == 200, accepted.text
    assert answered_in < 5
    wait_until(lambda: shipment(relay, tn2).status_code == 200, 15, "registration")
    wait_until(lambda: shipment(relay, tn1).json().get("registered"), 15, "registration")
    first, second = shipment(relay, tn1).json(), shipment(relay, tn2).json()
    assert (first["orderId"], first["invoiceNumber"], first["account"]) == (
        order_id,
        "NF1",
        "storeb",
    )
    assert (second["orderId"], second["invoiceNumber"], second["account"]) == (
        order_id,
        "NF2",
        "storeb",
    )

    post_events(relay, tn1, "Objeto postado", "Entregue ao destinatário")

    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/invoice/NF1/")))
    [put] = vtex.puts(f"/orders/{order_id}/invoice/NF1/")
    assert put.headers["x-vtex-api-appkey"] == "key-store-b"
    assert put.headers["x-vtex-api-apptoken"] == "token-store-b"
    methods = [r.method for r in calls_for(vtex, order_id)]
    # The hook's Get order, then the PUT: the hook saw the package's tracking number, so the
    # first PUT needs neither a check nor a PATCH, and the delivery's record says why.
    assert methods == ["GET", "PUT"]
    wait_until(
        lambda: shipment(relay, tn1).json()["deliveries"][0]["state"] == "delivered", 15, "record"
    )
    [delivery] = shipment(relay, tn1).json()["deliveries"]
    assert delivery["invoiceCheck"]["checkedBy"] == "orders hook"
    assert delivery["invoiceCheck"]["at"].endswith("Z")


def test_an_other_state_is_acknowledged_and_ignored(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, _ = setup
    order_id = new_order()

    answer = relay.client.post(
        "/vtex/orders-hook",
        json=notification(order_id, "storea", state="ready-for-handling"),
        headers={"X-Relay-Hook-Token": HOOK_SECRET},
    )

    assert answer.status_code == 200
    time.sleep(0.5)
    assert calls_for(vtex, order_id) == []


def test_a_package_without_tracking_number_gets_the_patch_before_the_first_put(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, oms = setup
    order_id, tracking = new_order(), f"TP{uuid.uuid4().hex[:8]}"
    oms.add(order(order_id, "storea", package("NF9")))
    register(relay, tracking, order_id, "NF9")
    link = f"https://rastreio.example.com.br/{tracking}"

    post_events(relay, tracking, "Objeto postado", url=link)
    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/")))
    post_events(relay, tracking, "Objeto postado", "Objeto em trânsito", url=link)
    vtex.wait_for(lambda v: len(v.puts(f"/orders/{order_id}/")) == 2)

    calls = calls_for(vtex, order_id)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in calls] == [
        ("GET", order_id),
        ("PATCH", "NF9"),
        ("PUT", "tracking"),
        ("PUT", "tracking"),
    ]
    assert calls[1].body == {
        "trackingNumber": tracking,
        "trackingUrl": link,
        "courier": "Transportadora Teste",
    }
    assert calls[1].headers["x-vtex-api-appkey"] == "key-store-a"
    wait_until(
        lambda: all(
            d["state"] == "delivered" for d in shipment(relay, tracking).json()["deliveries"]
        ),
        15,
        "the records",
    )
    checks = {
        d["invoiceCheck"]["checkedBy"] for d in shipment(relay, tracking).json()["deliveries"]
    }
    assert checks == {"partial invoice PATCH"}


def order_not_in_vtex_yet(relay: RelayProcess, vtex: VtexStandIn, invoice: str) -> tuple[str, str]:
    """A registered shipment whose order VTEX does not have yet: the delivery's Get order
    is a 404, nothing is PUT, and the delivery waits on the slow lane."""
    order_id, tracking = new_order(), f"TL{uuid.uuid4().hex[:8]}"
    register(relay, tracking, order_id, invoice)
    post_events(relay, tracking, "Objeto postado")
    wait_until(lambda: calls_for(vtex, order_id), 15, "the Get order")
    wait_until(
        lambda: shipment(relay, tracking).json()["deliveries"][0]["state"] == "retrying",
        15,
        "the retry",
    )
    delivery = shipment(relay, tracking).json()["deliveries"][0]
    assert "Get order" in (delivery["attempts"][0]["error"] or "")
    assert vtex.puts(f"/orders/{order_id}/") == []
    return order_id, tracking


def test_an_order_that_appears_in_vtex_is_delivered_within_a_minute_by_the_slow_lane(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, oms = setup
    order_id, tracking = order_not_in_vtex_yet(relay, vtex, "NF5")

    oms.add(order(order_id, "storea", package("NF5", tracking)))
    appeared = time.monotonic()

    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/")), timeout=60)
    # The slow lane's first wait is about 30 s (SPEC §3), not 10 minutes.
    assert time.monotonic() - appeared < 60


def test_an_invoiced_notification_delivers_an_order_that_was_not_in_vtex_within_seconds(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, oms = setup
    order_id, tracking = order_not_in_vtex_yet(relay, vtex, "NF6")

    oms.add(order(order_id, "storea", package("NF6", tracking)))
    notified = time.monotonic()
    accepted = relay.client.post(
        "/vtex/orders-hook",
        json=notification(order_id, "storea"),
        headers={"X-Relay-Hook-Token": HOOK_SECRET},
    )
    assert accepted.status_code == 200, accepted.text

    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/")), timeout=10)
    assert time.monotonic() - notified < 10  # the slow lane's 30 s were not waited


def test_reconcile_resends_an_invoice_vtex_lacks_events_of_and_leaves_a_matching_one(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, oms = setup
    lacking, matching = new_order(), new_order()
    for order_id in (lacking, matching):
        tracking = f"TR{uuid.uuid4().hex[:8]}"
        oms.add(order(order_id, "storea", package("NF7", tracking)))
        register(relay, tracking, order_id, "NF7")
        post_events(relay, tracking, "Objeto postado", "Objeto em trânsito")
    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{lacking}/") and v.puts(f"/orders/{matching}/")))
    wait_until(
        lambda: oms.orders[lacking]["packageAttachment"]["packages"][0]["courierStatus"],
        15,
        "VTEX keeping the tracking",
    )
    # VTEX lost an event of one invoice.
    oms.orders[lacking]["packageAttachment"]["packages"][0]["courierStatus"]["data"].pop()

    done = relay.command_line("reconcile")

    assert done.returncode == 0, done.stderr
    # Its answer alone on stdout (a script can read it); its log lines go to stderr.
    [answer] = done.stdout.splitlines()
    assert "1 re-sent" in answer
    assert '"event": "reconcile.done"' in done.stderr
    vtex.wait_for(lambda v: len(v.puts(f"/orders/{lacking}/")) == 2)
    assert len(vtex.puts(f"/orders/{matching}/")) == 1
    assert len(vtex.puts(f"/orders/{lacking}/")[-1].body["events"]) == 2


def test_vtex_subscribe_sends_the_documented_hook_configuration_once(
    setup: tuple[RelayProcess, VtexStandIn, VtexOms],
) -> None:
    relay, vtex, _ = setup
    url = "https://relay.example.com/vtex/orders-hook"

    first = relay.command_line("vtex", "subscribe", "--url", url)
    again = relay.command_line("vtex", "subscribe", "--url", url)

    assert first.returncode == 0, first.stderr
    assert "configured" in first.stdout
    assert again.returncode == 0, again.stderr
    assert "already configured" in again.stdout
    posts = [
        r for r in list(vtex.requests) if r.path == "/api/orders/hook/config" and r.method == "POST"
    ]
    [post] = posts
    assert post.headers["x-vtex-api-appkey"] == "key-store-a"
    assert post.body == {
        "filter": {"type": "FromWorkflow", "status": ["invoiced"]},
        "hook": {"url": url, "headers": {"X-Relay-Hook-Token": HOOK_SECRET}},
    }
    assert HOOK_SECRET not in first.stdout + first.stderr + again.stdout + again.stderr

"""Periodic tasks run once per fleet (SPEC §11): with two replicas on one PostgreSQL database,
a reconciliation pass and the orders hook's subscription happen once per interval, not once
per replica; with SQLite's single relay, they simply happen every interval.

Timing rule (as in test_delivery): intervals are short (2 s), and what is asserted is the
spacing between passes the VTEX stand-in saw, with a generous margin below the interval.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayFleet
from tests.support.vtex_orders import VtexOms, order, package
from tests.support.vtex_standin import Recorded, VtexStandIn
from tests.support.webhook_load import event, generic, post_signed, wait_until

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + "ZmxlZXQtdGFza3Mtc2VjcmV0LWZvci1lMmUtdGVzdA=="
KEYS = {"key-fleet": "token-fleet"}
INTERVAL = 2.0
WATCH = 9.0


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RelayFleet, int]]:
    """Relays on one database: two on PostgreSQL, the one SQLite allows."""
    with contextlib.ExitStack() as stack:
        env = {}
        if request.param == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        relays = RelayFleet(tmp_path, env)
        stack.callback(relays.close)
        yield relays, 2 if request.param == "postgresql" else 1


@contextlib.contextmanager
def oms_standin() -> Iterator[tuple[VtexStandIn, VtexOms]]:
    """A VTEX stand-in that keeps orders and the orders hook's configuration."""
    oms = VtexOms(KEYS)
    with VtexStandIn() as vtex:
        vtex.responder = vtex.orders_responder = oms.respond
        yield vtex, oms


def vtex_env(vtex: VtexStandIn) -> dict[str, str]:
    return {
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_ACCOUNT": "fleetstore",
        "RELAY_VTEX_APP_KEY": "key-fleet",
        "RELAY_VTEX_APP_TOKEN": "token-fleet",
        "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
    }


def starts(calls: list[Recorded]) -> list[float]:
    return sorted(call.started for call in calls)


def assert_one_pass_per_interval(times: list[float], what: str) -> None:
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(times) >= 3, f"{what}: only {len(times)} in {WATCH}s"
    # Two replicas each running the task would give gaps near 0; one per interval, ~2 s.
    assert min(gaps) >= INTERVAL * 0.75, f"{what}: passes {gaps} s apart"
    assert len(times) <= WATCH / INTERVAL + 2, f"{what}: {len(times)} passes in {WATCH}s"


def test_a_reconciliation_pass_runs_once_per_interval_across_the_fleet(
    fleet: tuple[RelayFleet, int],
) -> None:
    relays, count = fleet
    with oms_standin() as (vtex, oms):
        order_id, tracking = f"{uuid.uuid4().int % 10**13:013d}-01", f"FL{uuid.uuid4().hex[:8]}"
        oms.add(order(order_id, "fleetstore", package("NF1", tracking)))
        env = vtex_env(vtex) | {"RELAY_RECONCILE_INTERVAL": f"{INTERVAL}s"}
        first, *_ = [relays.start(env) for _ in range(count)]
        payload = generic(tracking, [event(tracking, 1)], order_id, "NF1")
        answer = post_signed(first.client, SECRET, payload)
        assert answer.status_code == 202, answer.text
        vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/")))
        delivered = time.monotonic()

        time.sleep(WATCH)

        gets = [
            r
            for r in list(vtex.requests)
            if r.method == "GET" and r.path.rstrip("/").endswith(f"/orders/{order_id}")
        ]
        # Passes that began after the invoice was delivered (it is active only then; the
        # stand-in stamps requests with this process's monotonic clock).
        passes = [t for t in starts(gets) if t > delivered]
        assert_one_pass_per_interval(passes, "reconciliation passes")


def test_the_orders_hook_is_subscribed_again_once_per_interval_across_the_fleet(
    fleet: tuple[RelayFleet, int],
) -> None:
    relays, count = fleet
    with oms_standin() as (vtex, _):
        env = vtex_env(vtex) | {
            "RELAY_VTEX_HOOK_URL": "https://relay.example.com/vtex/orders-hook",
            "RELAY_VTEX_HOOK_SECRET": "hook-secret-fleet-9d1",
            "RELAY_VTEX_HOOK_REFRESH_INTERVAL": f"{INTERVAL}s",
        }
        relays_started = [relays.start(env) for _ in range(count)]

        def hook_reads() -> list[Recorded]:
            return [
                r
                for r in list(vtex.requests)
                if r.method == "GET" and r.path.endswith("/api/orders/hook/config")
            ]

        wait_until(hook_reads, 15, "the first subscription")
        time.sleep(WATCH)

        assert_one_pass_per_interval(starts(hook_reads()), "subscriptions")
        posts = [r for r in list(vtex.requests) if r.method == "POST" and "hook" in r.path]
        assert len(posts) == 1  # configured once; later passes find it as wanted
        assert posts[0].body["hook"]["url"] == "https://relay.example.com/vtex/orders-hook"
        assert all("hook-secret-fleet-9d1" not in relay.log() for relay in relays_started)

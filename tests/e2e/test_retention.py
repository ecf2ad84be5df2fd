"""Retention end to end (SPEC §11), on both databases, with a retention of seconds:
``relay prune --dry-run`` says what ``relay prune`` then removes and changes nothing; a
pruned invoice's webhooks resent get 202 and VTEX no PUT; the worker prunes by itself."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.vtex_standin import VtexStandIn
from tests.support.webhook_load import event, generic, post_signed, unique, wait_until

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + "cmV0ZW50aW9uLXNlY3JldC1mb3ItZTJlLXRlc3Q="
ADMIN = "admin-retention-e2e"
RETENTION = 6.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            yield {"RELAY_DATABASE_URL": stack.enter_context(postgresql_schema())}
        else:
            yield {}


def relay_env(vtex: VtexStandIn, database: dict[str, str], **more: str) -> dict[str, str]:
    return {
        "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_ACCOUNT": "retentionstore",
        "RELAY_VTEX_APP_KEY": "key",
        "RELAY_VTEX_APP_TOKEN": "token",
        "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
        "RELAY_RETENTION": f"{RETENTION}s",
        **database,
        **more,
    }


def delivered_webhook(relay: RelayProcess, vtex: VtexStandIn) -> dict[str, Any]:
    tracking = unique("RT")
    order_id = f"{uuid.uuid4().int % 10**13:013d}-01"
    payload = generic(tracking, [event(tracking, 1), event(tracking, 2)], order_id, "NF1")
    assert post_signed(relay.client, SECRET, payload).status_code == 202
    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{order_id}/")))
    wait_until(
        lambda: shipment(relay, tracking).json()["deliveries"][0]["state"] == "delivered",
        15,
        "the delivery recorded",
    )
    return payload


def shipment(relay: RelayProcess, tracking: str) -> Any:
    return relay.client.get(f"/shipments/{tracking}", headers=relay.admin(ADMIN))


def prune(relay: RelayProcess, *args: str) -> dict[str, int]:
    done = relay.command_line("prune", *args)
    assert done.returncode == 0, done.stderr
    return {label: int(count) for count, label in re.findall(r"^\s+(\d+) (.+)$", done.stdout, re.M)}


def test_prune_dry_run_reports_what_prune_removes_and_a_resent_webhook_queues_no_put(
    tmp_path: Path, database: dict[str, str]
) -> None:
    with (
        VtexStandIn() as vtex,
        RelayProcess(tmp_path, relay_env(vtex, database)) as relay,
    ):
        old = [delivered_webhook(relay, vtex) for _ in range(3)]
        time.sleep(RETENTION + 0.5)
        young = delivered_webhook(relay, vtex)

        rehearsed = prune(relay, "--dry-run")
        assert all(shipment(relay, p["trackingNumber"]).status_code == 200 for p in old)
        pruned = prune(relay)

        assert pruned == rehearsed
        assert pruned["invoices delivered and older than the retention"] == 3
        assert pruned["events"] == 6
        assert pruned["webhooks no kept event came from"] == 3
        assert all(shipment(relay, p["trackingNumber"]).status_code == 404 for p in old)
        assert shipment(relay, young["trackingNumber"]).status_code == 200
        assert prune(relay, "--dry-run")["invoices delivered and older than the retention"] == 0

        puts_before = len(vtex.puts())
        resent = post_signed(relay.client, SECRET, old[0])
        assert resent.status_code == 202, resent.text
        assert (resent.json()["events"], resent.json()["duplicates"]) == (0, 2)
        time.sleep(1.0)  # a PUT would be due after the 0.1 s coalescing window
        assert len(vtex.puts()) == puts_before


def test_the_worker_prunes_by_itself_every_prune_interval(
    tmp_path: Path, database: dict[str, str]
) -> None:
    with (
        VtexStandIn() as vtex,
        RelayProcess(tmp_path, relay_env(vtex, database, RELAY_PRUNE_INTERVAL="1s")) as relay,
    ):
        payload = delivered_webhook(relay, vtex)

        wait_until(
            lambda: shipment(relay, payload["trackingNumber"]).status_code == 404,
            RETENTION + 15,
            "the worker's prune",
        )

        def pruned_lines() -> list[dict[str, Any]]:
            return [
                r
                for r in relay.log_records()
                if r.get("event") == "prune.done" and r["invoices"] == 1 and r["events"] == 2
            ]

        [line] = wait_until(pruned_lines, 5, "the prune's log line")
        assert line["retention"] == f"{RETENTION:g}s"

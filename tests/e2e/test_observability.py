"""What an operator watches, end to end: ``GET /metrics`` moves as a scenario says, and the log
is one JSON object a line with request ids, delivery receipts, and no secret anywhere.

One relay process (SQLite, then PostgreSQL) runs one scenario against a VTEX stand-in that
accepts some invoices, refuses the key for one (401) and does not know another (404, dead
once RELAY_MAX_DELIVERY_AGE has passed).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayProcess
from tests.support.signing import standard_webhooks_headers
from tests.support.vtex_standin import Answer, Recorded, VtexStandIn, receipt_for
from tests.support.webhook_load import wait_until

pytestmark = pytest.mark.e2e

ADMIN = "admin-token-observability-9d1"
GENERIC_SECRET = "generic-secret-observability-77a"
AFTERSHIP_SECRET = "aftership-secret-observability-5c2"
APP_KEY = "vtexappkey-observability-KEY-31f"
APP_TOKEN = "vtex-app-token-observability-SECRET-c04"
SECRETS = (ADMIN, GENERIC_SECRET, AFTERSHIP_SECRET, APP_KEY, APP_TOKEN)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(relay: RelayProcess) -> Samples:
    answer = relay.client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def order() -> str:
    return f"{uuid.uuid4().int % 10**13:013d}-01"


def generic(tracking: str, order_id: str | None, *statuses: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "trackingNumber": tracking,
        "events": [
            {
                "time": f"2026-11-2{i}T10:00:00-03:00",
                "status": status,
                "description": f"Evento {status}",
                "city": "Recife",
                "state": "PE",
            }
            for i, status in enumerate(statuses, start=1)
        ],
    }
    if order_id:
        payload |= {"orderId": order_id, "invoiceNumber": "NF-77"}
    return payload


@pytest.fixture(params=["sqlite", "postgresql"])
def scenario(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RelayProcess, VtexStandIn, dict[str, str]]]:
    orders = {"refused": order(), "unknown": order()}

    def respond(recorded: Recorded) -> Answer:
        if orders["refused"] in recorded.path:
            return Answer(401, {"error": {"message": "invalid AppKey"}})
        if orders["unknown"] in recorded.path:
            return Answer(404, {"error": {"message": "Order not found"}})
        return receipt_for(recorded.path)

    with contextlib.ExitStack() as stack:
        vtex = stack.enter_context(VtexStandIn())
        vtex.responder = respond
        env = {
            "RELAY_VTEX_BASE_URL": vtex.url,
            "RELAY_VTEX_ACCOUNT": "teststore",
            "RELAY_VTEX_APP_KEY": APP_KEY,
            "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
            "RELAY_ADMIN_TOKEN": ADMIN,
            "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
            "RELAY_CARRIERS__AFTERSHIP__SECRET": AFTERSHIP_SECRET,
            "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
            "RELAY_MAX_DELIVERY_AGE": "1s",
            "RELAY_MAX_BODY_BYTES": "2048",
            "RELAY_LOG_LEVEL": "DEBUG",
        }
        if request.param == "postgresql":
            env["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        yield stack.enter_context(RelayProcess(tmp_path, env)), vtex, orders


def post_generic(relay: RelayProcess, payload: Any, secret: str = GENERIC_SECRET) -> Any:
    body = json.dumps(payload).encode()
    headers = {**standard_webhooks_headers(secret, body), "x-request-id": f"req-{uuid.uuid4().hex}"}
    return relay.client.post("/webhooks/generic", content=body, headers=headers)


def test_metrics_move_as_the_scenario_says_and_the_log_is_clean(
    scenario: tuple[RelayProcess, VtexStandIn, dict[str, str]],
) -> None:
    relay, vtex, orders = scenario
    delivered_order = order()
    before = scrape(relay)

    # Accepted: 2 new events, delivered to VTEX; then the same webhook again: 2 duplicates.
    first = generic(f"OB{uuid.uuid4().hex[:8]}", delivered_order, "in_transit", "delivered")
    assert post_generic(relay, first).status_code == 202
    assert post_generic(relay, first).json()["duplicates"] == 2
    # VTEX refuses the key for one invoice and does not know another.
    refused = generic(f"OR{uuid.uuid4().hex[:8]}", orders["refused"], "in_transit")
    unknown = generic(f"OU{uuid.uuid4().hex[:8]}", orders["unknown"], "in_transit")
    assert post_generic(relay, refused).status_code == 202
    assert post_generic(relay, unknown).status_code == 202
    # Refused answers, one of each kind.
    assert post_generic(relay, first, secret="not-the-secret").status_code == 401
    assert relay.client.post("/webhooks/pigeon", json={}).status_code == 404
    big = generic("OBIG", None, *["in_transit"] * 40)
    assert post_generic(relay, big).status_code == 413
    body = b"not json"
    assert (
        relay.client.post(
            "/webhooks/generic",
            content=body,
            headers=standard_webhooks_headers(GENERIC_SECRET, body),
        ).status_code
        == 415
    )
    assert post_generic(relay, {"trackingNumber": "OQ1", "events": "none"}).status_code == 422

    vtex.wait_for(lambda v: bool(v.puts(f"/orders/{delivered_order}/")))
    wait_until(lambda: moved(before, scrape(relay), "relay_dead_deliveries") == 1, 15, "a dead")
    wait_until(
        lambda: (
            moved(
                before,
                scrape(relay),
                "relay_deliveries_total",
                outcome="credentials_refused",
                status_code="401",
            )
            >= 1
        ),
        15,
        "a 401 counted",
    )
    after = scrape(relay)

    def webhooks(outcome: str, carrier: str = "generic") -> float:
        return moved(before, after, "relay_webhooks_total", carrier=carrier, outcome=outcome)

    assert webhooks("accepted") == 4
    assert webhooks("unauthorized") == 1
    assert webhooks("unknown_carrier", carrier="") == 1
    assert webhooks("too_large") == 1
    assert webhooks("unsupported_media_type") == 1
    assert webhooks("quarantined") == 1
    assert moved(before, after, "relay_events_total", carrier="generic", kind="new") == 4
    assert moved(before, after, "relay_events_total", carrier="generic", kind="duplicate") == 2
    assert (
        moved(before, after, "relay_deliveries_total", outcome="delivered", status_code="200") == 1
    )
    assert moved(before, after, "relay_deliveries_total", outcome="dead", status_code="404") == 1
    assert moved(before, after, "relay_delivery_latency_seconds_count") == 1
    assert moved(before, after, "relay_delivery_latency_seconds_sum") > 0
    assert value(after, "relay_quarantined_webhooks") == 1
    # The refused invoice keeps retrying (401 is never dead): it is the backlog.
    assert value(after, "relay_backlog_deliveries") == 1
    assert value(after, "relay_oldest_pending_age_seconds") > 0
    assert value(after, "relay_dead_deliveries") == 1
    assert value(after, "relay_database_bytes") > 0

    relay.stop()
    lines = relay.log().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    assert records
    log_text = relay.log()
    for secret in SECRETS:
        assert secret not in log_text, "a secret reached the log"

    [delivered] = [
        r for r in records if r["event"] == "delivery.delivered" and r["orderId"] == delivered_order
    ]
    receipt = next(a.body for r, a in vtex.tracking_answers() if delivered_order in r.path)
    assert delivered["invoiceNumber"] == "NF-77"
    assert delivered["receipt"] == receipt["receipt"]
    assert delivered["date"] == receipt["date"]
    assert delivered["carrier"] == "generic"
    assert delivered["attempt"] == 1
    assert delivered["latency_ms"] > 0

    accepted = [r for r in records if r["event"] == "webhook.accepted"]
    assert {r["orderId"] for r in accepted} >= {delivered_order, orders["refused"]}
    for record in accepted:
        # An accepted webhook's line is its request's last: the caller's request id and the
        # access fields, with no access line of its own beside it.
        assert record["request_id"].startswith("req-")
        assert (record["method"], record["path"], record["status"]) == (
            "POST",
            "/webhooks/generic",
            202,
        )
        assert record["duration_ms"] >= 0
        assert record["carrier"] == "generic"
        assert not [
            r
            for r in records
            if r["event"] == "http.request" and r.get("request_id") == record["request_id"]
        ]
    assert not [r for r in records if r.get("logger") == "uvicorn.access"]

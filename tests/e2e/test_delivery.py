"""Delivery semantics end to end (SPEC §3): ``relay serve`` as a process, a local VTEX stand-in
that fails on command, signed generic webhooks posted over HTTP.

Timing rule: no assertion needs the relay to be fast. Waits have deadlines; assertions are about
order and lower bounds (a slow machine only makes gaps longer), never upper bounds.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import patched_relay
from tests.support.databases import postgresql_schema
from tests.support.relay_process import RelayFleet, RelayProcess
from tests.support.signing import standard_webhooks_headers
from tests.support.vtex_standin import Answer, Recorded, VtexStandIn, receipt_for
from tests.support.webhook_load import (
    describe,
    event,
    generic,
    tracking_path,
    unique,
    wait_until,
)

pytestmark = pytest.mark.e2e

ADMIN = "admin-token-delivery"
GENERIC_SECRET = "whsec_" + "ZGVsaXZlcnktc2VjcmV0LWZvci1lMmUtdGVzdHM="
APP_KEY = "vtexappkey-default-KEY"
APP_TOKEN = "vtex-app-token-default"
OTHER_KEY = "vtexappkey-other-KEY"
OTHER_TOKEN = "vtex-app-token-other"


# -- helpers -----------------------------------------------------------------------------


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, standard_webhooks_headers(GENERIC_SECRET, body)


def post(client: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    body, headers = signed(payload)
    return client.post("/webhooks/generic", content=body, headers=headers)


def admin(relay: RelayProcess) -> dict[str, str]:
    return relay.admin(ADMIN)


def descriptions(put: Recorded) -> list[str]:
    return [e["description"] for e in put.body["events"]]


def deliveries(relay: RelayProcess, state: str | None = None) -> list[dict[str, Any]]:
    params = {"limit": "1000"} | ({"state": state} if state else {})
    answer = relay.client.get("/admin/deliveries", params=params, headers=admin(relay))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["deliveries"])


def last_puts(vtex: VtexStandIn) -> dict[str, Recorded]:
    """The newest tracking PUT the stand-in accepted (answered 2xx), per path."""
    answered = vtex.tracking_answers()  # a copy, taken under the stand-in's lock
    newest: dict[str, Recorded] = {}
    for recorded, answer in sorted(answered, key=lambda pair: pair[0].started):
        if recorded.method == "PUT" and 200 <= answer.status < 300:
            newest[recorded.path] = recorded
    return newest


def all_delivered(vtex: VtexStandIn, expected: dict[str, set[str]]) -> bool:
    """Each path's newest accepted PUT carries every description expected for it."""
    newest = last_puts(vtex)
    return all(
        path in newest and wanted <= set(descriptions(newest[path]))
        for path, wanted in expected.items()
    )


def missing(vtex: VtexStandIn, expected: dict[str, set[str]]) -> dict[str, int]:
    newest = last_puts(vtex)
    return {
        path: len(wanted - (set(descriptions(newest[path])) if path in newest else set()))
        for path, wanted in expected.items()
        if path not in newest or not wanted <= set(descriptions(newest[path]))
    }


def assert_no_event_twice(vtex: VtexStandIn) -> None:
    for put in vtex.puts():
        seen = Counter(descriptions(put))
        twice = [d for d, n in seen.items() if n > 1]
        assert not twice, f"{put.path} got events twice in one body: {twice[:5]}"


class Poster:
    """Posts signed generic webhooks from many threads, one HTTP client per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.url, timeout=30)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def post(self, payload: dict[str, Any]) -> httpx.Response | None:
        """The answer, or None when the relay could not be reached."""
        try:
            return post(self._client(), payload)
        except httpx.TransportError:
            return None

    def close(self) -> None:
        for client in self._clients:
            client.close()


class Load(threading.Thread):
    """Posts ``payloads`` one after the other until done or the relay stops answering."""

    def __init__(self, url: str, payloads: list[dict[str, Any]], pause: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.payloads = payloads
        self.pause = pause
        self.poster = Poster(url)
        self.accepted: list[tuple[float, dict[str, Any]]] = []
        self.refused: list[httpx.Response] = []
        self.unreachable = 0

    def run(self) -> None:
        try:
            for payload in self.payloads:
                answer = self.poster.post(payload)
                if answer is None:
                    self.unreachable += 1
                    return
                if answer.status_code == 202:
                    self.accepted.append((time.monotonic(), payload))
                else:
                    self.refused.append(answer)
                if self.pause:
                    time.sleep(self.pause)
        finally:
            self.poster.close()

    def acknowledged(self) -> dict[str, set[str]]:
        """Descriptions of every event in a webhook that got 202, per VTEX tracking path."""
        expected: dict[str, set[str]] = {}
        for _, payload in list(self.accepted):
            path = tracking_path(payload["orderId"], payload["invoiceNumber"])
            expected.setdefault(path, set()).update(e["description"] for e in payload["events"])
        return expected


@pytest.fixture
def vtex() -> Iterator[VtexStandIn]:
    with VtexStandIn() as standin:
        yield standin


@pytest.fixture(params=["sqlite", "postgresql"])
def relays(
    request: pytest.FixtureRequest, tmp_path: Path, vtex: VtexStandIn
) -> Iterator[RelayFleet]:
    """Relays on the test's SQLite file, and on a PostgreSQL schema of the test's own."""
    base = {
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_APP_KEY": APP_KEY,
        "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
        "RELAY_WORKER_POLL_INTERVAL": "0.2s",
        # Short, so that stopping a relay at the end of a test is quick.
        "RELAY_SHUTDOWN_GRACE": "0.2s",
    }
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            base["RELAY_DATABASE_URL"] = stack.enter_context(postgresql_schema())
        started = RelayFleet(tmp_path, base)
        stack.callback(started.close)
        yield started


# -- 1. transient failures back off ------------------------------------------------------


def test_503s_are_retried_with_growing_backoff_until_delivered(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    """Every invoice's first three PUTs get 503, the fourth 200.

    Full jitter makes one invoice's gaps random (a later gap is often shorter than an earlier
    one), so the growth is checked over many invoices: the policy draws gap ``k`` uniformly in
    [0, 2^k s], and a gap can only be longer than its draw (the worker polls, the machine may be
    slow), never shorter. Hence lower bounds that hold with overwhelming probability: the third
    gaps average well above the first ones, some third gap exceeds the first gap's whole range,
    and three retries take far longer on average than three 0.2 s polls would.
    """
    failures = 3
    invoices = 20
    lock = threading.Lock()
    seen: Counter[str] = Counter()

    def fail_first_puts(recorded: Recorded) -> Answer:
        with lock:
            seen[recorded.path] += 1
            count = seen[recorded.path]
        if count <= failures:
            return Answer(503, {"error": "busy, try again", "attempt": count})
        return receipt_for(recorded.path)

    vtex.responder = fail_first_puts
    relay = relays.start()
    expected: dict[str, set[str]] = {}
    for _ in range(invoices):
        tracking, order_id = unique("BO"), f"{unique('')}-01"
        answer = post(
            relay.client, generic(tracking, [event(tracking, 0), event(tracking, 1)], order_id, "7")
        )
        assert answer.status_code == 202, answer.text
        expected[tracking_path(order_id, "7")] = {describe(tracking, 0), describe(tracking, 1)}

    # Gap k is at most 2^k s (plus polling), so 2 + 4 + 8 s and slack bound the wait.
    wait_until(lambda: all_delivered(vtex, expected), 45, "every invoice delivered")

    gaps: list[list[float]] = []
    for path in expected:
        puts = vtex.puts(path)
        answers = [
            answer.status for recorded, answer in vtex.tracking_answers() if recorded.path == path
        ]
        assert answers == [503] * failures + [200], path
        starts = [put.started for put in puts]
        gaps.append([later - earlier for earlier, later in itertools.pairwise(starts)])

    first, third = ([g[k] for g in gaps] for k in (0, 2))
    report = (
        f"mean gaps {[round(statistics.mean(g[k] for g in gaps), 2) for k in range(3)]} s, "
        f"max third gap {max(third):.2f} s"
    )
    assert statistics.mean(first) > 0.3, f"the first retry comes too soon: {report}"
    assert statistics.mean(third) > statistics.mean(first) + 1.0, f"no growth: {report}"
    assert max(third) > 2.5, f"the third gap never left the first gap's range: {report}"
    # A constant 0.2 s retry would spend about 0.6 s on three retries.
    assert statistics.mean(sum(g) for g in gaps) > 3.0, f"retries too fast: {report}"

    # The relay stored every attempt: three 503s with what VTEX said, then the receipt.
    receipts = {
        recorded.path: answer.body
        for recorded, answer in vtex.tracking_answers()
        if answer.status == 200
    }
    recorded_all = wait_until(
        lambda: len(done := deliveries(relay, "delivered")) == invoices and done,
        15,
        "every delivery recorded as delivered",
    )
    stored = {tracking_path(d["orderId"], d["invoiceNumber"]): d for d in recorded_all}
    for path in expected:
        delivery = stored[path]
        assert delivery["state"] == "delivered"
        attempts = delivery["attempts"]
        assert [a["statusCode"] for a in attempts] == [503] * failures + [200]
        assert all("busy" in a["responseBody"] and a["error"] for a in attempts[:failures])
        assert attempts[-1]["error"] is None
        started = [datetime.fromisoformat(a["startedAt"]) for a in attempts]
        assert started == sorted(started)
        assert delivery["receipt"] == receipts[path]


# -- 2. a 429 pauses the account -----------------------------------------------------------


def test_a_429_pauses_every_delivery_to_the_account_until_retry_after(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    retry_after = 3.0
    first_order = f"{unique('')}-01"
    lock = threading.Lock()
    throttled: list[Recorded] = []

    def throttle_once(recorded: Recorded) -> Answer:
        with lock:
            if first_order in recorded.path and not throttled:
                throttled.append(recorded)
                return Answer(
                    429, {"error": "Too Many Requests"}, {"Retry-After": str(int(retry_after))}
                )
        return receipt_for(recorded.path)

    vtex.responder = throttle_once
    relay = relays.start(
        {
            "RELAY_VTEX_ACCOUNTS__OTHER__APP_KEY": OTHER_KEY,
            "RELAY_VTEX_ACCOUNTS__OTHER__APP_TOKEN": OTHER_TOKEN,
            # Deliveries due at once: the other account's PUT comes well inside the pause.
            "RELAY_VTEX_COALESCE_WINDOW": "0s",
        }
    )
    # A shipment of another VTEX account, which the pause must not hold.
    other_tracking, other_order = unique("OT"), f"{unique('')}-01"
    registered = relay.client.put(
        f"/shipments/{other_tracking}",
        json={"orderId": other_order, "invoiceNumber": "9", "account": "other"},
        headers=admin(relay),
    )
    assert registered.status_code == 201, registered.text

    first_tracking = unique("TH")
    answer = post(
        relay.client, generic(first_tracking, [event(first_tracking, 0)], first_order, "1")
    )
    assert answer.status_code == 202, answer.text
    wait_until(
        lambda: vtex.tracking_answers() and throttled and throttled[0].finished, 15, "the 429"
    )
    answered_429 = throttled[0].finished

    # Other invoices of the same account, right after the 429.
    paths = {tracking_path(first_order, "1"): {describe(first_tracking, 0)}}
    for n in range(3):
        tracking, order_id = unique("TH"), f"{unique('')}-01"
        assert (
            post(relay.client, generic(tracking, [event(tracking, n)], order_id, "2")).status_code
            == 202
        )
        paths[tracking_path(order_id, "2")] = {describe(tracking, n)}
    other = {"trackingNumber": other_tracking, "events": [event(other_tracking, 0)]}
    assert post(relay.client, other).status_code == 202

    paths[tracking_path(other_order, "9")] = {describe(other_tracking, 0)}
    wait_until(lambda: all_delivered(vtex, paths), 30, "every invoice delivered after the pause")

    puts = vtex.puts()
    same_account = [
        p for p in puts if p.headers["x-vtex-api-appkey"] == APP_KEY and p is not throttled[0]
    ]
    early = [
        (p.path, round(p.started - answered_429, 3))
        for p in same_account
        if p.started < answered_429 + retry_after
    ]
    assert not early, f"PUTs to the paused account before Retry-After passed (s after 429): {early}"
    assert len(same_account) == 4
    [other_put] = [p for p in puts if p.headers["x-vtex-api-appkey"] == OTHER_KEY]
    assert other_put.started < min(p.started for p in same_account), (
        "the other account's delivery waited for this account's pause"
    )

    throttled_delivery = wait_until(
        lambda: delivery_of(relay, first_order, "delivered"), 15, "the 429'd delivery recorded"
    )
    assert [a["statusCode"] for a in throttled_delivery["attempts"]] == [429, 200]


# -- 3. a 400 takes the slow lane, dies past the max age, and an operator can retry it -------


def bad_invoice_standin(vtex: VtexStandIn, bad_order: str) -> threading.Event:
    """400 for ``bad_order`` until the returned event is set; 200 for everything else."""
    fixed = threading.Event()

    def answer(recorded: Recorded) -> Answer:
        if bad_order in recorded.path and not fixed.is_set():
            return Answer(400, {"error": {"code": "1", "message": "Invoice not found"}})
        return receipt_for(recorded.path)

    vtex.responder = answer
    return fixed


def compact(delivery: dict[str, Any]) -> dict[str, Any]:
    """A delivery without the bulky parts, for failure messages."""
    keep = ("id", "state", "queuedAt", "nextAttemptAt", "attemptCount", "lastStatus")
    return {key: delivery.get(key) for key in keep}


def delivery_of(relay: RelayProcess, order_id: str, state: str | None = None) -> dict[str, Any]:
    found = [d for d in deliveries(relay, state) if d["orderId"] == order_id]
    return found[0] if found else {}


def test_a_400_does_not_hold_up_others_is_dead_past_the_max_age_and_retry_delivers_it(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    bad_tracking, bad_order = unique("BD"), f"{unique('')}-01"
    fixed = bad_invoice_standin(vtex, bad_order)
    relay = relays.start({"RELAY_MAX_DELIVERY_AGE": "3s"})

    answer = post(relay.client, generic(bad_tracking, [event(bad_tracking, 0)], bad_order, "4"))
    assert answer.status_code == 202, answer.text
    wait_until(lambda: vtex.puts(bad_order), 15, "the first PUT of the bad invoice")

    good: dict[str, set[str]] = {}
    for n in range(3):
        tracking, order_id = unique("GD"), f"{unique('')}-01"
        assert (
            post(relay.client, generic(tracking, [event(tracking, n)], order_id, "5")).status_code
            == 202
        )
        good[tracking_path(order_id, "5")] = {describe(tracking, n)}
    wait_until(lambda: all_delivered(vtex, good), 15, "the other invoices delivered")
    assert delivery_of(relay, bad_order)["state"] != "delivered"

    dead = wait_until(
        lambda: delivery_of(relay, bad_order, "dead"),
        3 + 20,
        lambda: (
            "the 400 delivery listed dead once RELAY_MAX_DELIVERY_AGE (3s) has passed; "
            f"it is {compact(delivery_of(relay, bad_order))}"
        ),
        every=0.2,
    )
    assert dead["lastStatus"] == 400
    assert all(a["statusCode"] == 400 for a in dead["attempts"])
    assert "Invoice not found" in dead["attempts"][0]["responseBody"]

    fixed.set()
    retried = relay.client.post(f"/admin/deliveries/{dead['id']}/retry", headers=admin(relay))
    assert retried.status_code == 200, retried.text
    delivered = wait_until(
        lambda: delivery_of(relay, bad_order, "delivered"), 15, "the retried delivery delivered"
    )
    assert delivered["receipt"]["receipt"]
    assert delivered["attempts"][-1]["statusCode"] == 200


def test_an_operator_retry_resends_a_dead_delivery(vtex: VtexStandIn, relays: RelayFleet) -> None:
    """Reaches "dead" through the retry route itself (a waiting delivery made due now, after
    the max age), then retries the dead delivery: it is sent again and delivered."""
    tracking, order_id = unique("RT"), f"{unique('')}-01"
    fixed = bad_invoice_standin(vtex, order_id)
    max_age = 3.0
    relay = relays.start({"RELAY_MAX_DELIVERY_AGE": f"{max_age}s"})
    assert (
        post(relay.client, generic(tracking, [event(tracking, 0)], order_id, "6")).status_code
        == 202
    )
    waiting = wait_until(
        lambda: (d := delivery_of(relay, order_id)).get("state") in ("retrying", "dead") and d,
        15,
        "the 400 delivery retrying",
    )
    old_at = datetime.fromisoformat(waiting["queuedAt"]) + timedelta(seconds=max_age + 0.3)
    time.sleep(max(0.0, (old_at - datetime.now(UTC)).total_seconds()))

    if delivery_of(relay, order_id)["state"] != "dead":
        # A 400 waits in the slow lane (30 s at first) even past the max age: make it due now.
        again = relay.client.post(f"/admin/deliveries/{waiting['id']}/retry", headers=admin(relay))
        assert again.status_code == 200, again.text
        assert again.json()["delivery"]["id"] == waiting["id"]
    dead = wait_until(lambda: delivery_of(relay, order_id, "dead"), 15, "the delivery dead")
    assert [a["statusCode"] for a in dead["attempts"]] == [400] * len(dead["attempts"])

    fixed.set()
    retried = relay.client.post(f"/admin/deliveries/{dead['id']}/retry", headers=admin(relay))
    assert retried.status_code == 200, retried.text
    delivered = wait_until(
        lambda: delivery_of(relay, order_id, "delivered"), 15, "the retried delivery delivered"
    )
    assert [a["statusCode"] for a in delivered["attempts"]][-1] == 200
    assert delivered["receipt"]["receipt"] == vtex.tracking_answers()[-1][1].body["receipt"]
    assert len(vtex.puts(order_id)) == len(delivered["attempts"]) == len(dead["attempts"]) + 1

    done = relay.client.post(f"/admin/deliveries/{delivered['id']}/retry", headers=admin(relay))
    assert done.status_code == 409, done.text
    assert done.json()["error"] == "conflict"
    nothing = relay.client.post("/admin/deliveries/999999/retry", headers=admin(relay))
    assert nothing.status_code == 404, nothing.text


# -- 4. a concurrent burst -----------------------------------------------------------------


def test_a_concurrent_burst_arrives_whole_with_one_put_at_a_time_per_invoice(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    invoices, per_invoice = 10, 20
    vtex.delay = 0.05
    # A window longer than the burst takes to post, even on a slow machine.
    relay = relays.start({"RELAY_VTEX_COALESCE_WINDOW": "3s"})
    shipments = [(unique("BU"), f"{unique('')}-01") for _ in range(invoices)]
    payloads = [
        generic(tracking, [event(tracking, n)], order_id, "8")
        for n in range(per_invoice)
        for tracking, order_id in shipments
    ]
    poster = Poster(relay.url)
    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(poster.post, payloads))
    finally:
        poster.close()
    statuses = Counter(a.status_code if a is not None else None for a in answers)
    assert statuses == {202: invoices * per_invoice}, statuses

    expected = {
        tracking_path(order_id, "8"): {describe(tracking, n) for n in range(per_invoice)}
        for tracking, order_id in shipments
    }
    wait_until(lambda: all_delivered(vtex, expected), 30, "every event of the burst delivered")
    wait_until(
        lambda: not deliveries(relay, "pending") and not deliveries(relay, "retrying"),
        15,
        "no open delivery left",
    )

    counts = {path: len(vtex.puts(path)) for path in expected}
    ratio = sum(counts.values()) / invoices
    for path in expected:
        puts = sorted(vtex.puts(path), key=lambda p: p.started)
        overlapping = [
            (round(a.started, 3), round(a.finished, 3), round(b.started, 3))
            for a, b in itertools.pairwise(puts)
            if b.started < a.finished
        ]
        assert not overlapping, f"overlapping PUTs for {path}: {overlapping}"
        assert len(descriptions(puts[-1])) == per_invoice
    assert_no_event_twice(vtex)
    assert ratio <= 1.2, (
        f"{ratio:.2f} PUTs per invoice on average for a burst (target 1.2); per invoice: "
        f"{sorted(counts.values())}"
    )


# -- 5. kill -9 mid-load, restart ------------------------------------------------------------


def cumulative_load(
    invoices: int, webhooks: int
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Webhooks that each resend a shipment's whole history so far (as carriers do)."""
    shipments = [(unique("KL"), f"{unique('')}-01") for _ in range(invoices)]
    payloads = []
    for k in range(webhooks):
        tracking, order_id = shipments[k % invoices]
        upto = k // invoices
        payloads.append(
            generic(tracking, [event(tracking, n) for n in range(upto + 1)], order_id, "3")
        )
    return shipments, payloads


def test_kill_9_mid_load_loses_no_acknowledged_event_and_sends_none_twice(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    vtex.delay = 0.3  # PUTs are in flight at the kill: their claims must expire first
    relay = relays.start()
    _, payloads = cumulative_load(invoices=30, webhooks=300)
    load = Load(relay.url, payloads, pause=0.01)
    load.start()
    wait_until(
        lambda: len(load.accepted) >= 100 and any(not p.finished for p in vtex.puts()),
        30,
        "100 webhooks accepted and a PUT in flight",
        every=0.01,
    )
    assert relay.stop(signal.SIGKILL) == -signal.SIGKILL
    load.join(timeout=30)
    assert not load.refused, [a.text for a in load.refused[:3]]
    assert len(load.accepted) < len(payloads), "the load ended before the kill"
    acknowledged = load.acknowledged()

    relays.start()
    # Claims held at the kill expire after their lease (about 15 s) before they are re-sent.
    wait_until(
        lambda: all_delivered(vtex, acknowledged),
        40,
        lambda: (
            "every acknowledged event delivered after the restart; events missing per "
            f"invoice: {missing(vtex, acknowledged)}"
        ),
        every=0.2,
    )
    assert_no_event_twice(vtex)


# -- 6. SIGTERM drains ---------------------------------------------------------------------


def test_sigterm_turns_readyz_503_keeps_serving_lets_puts_finish_and_exits_0(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    vtex.delay = 0.5
    relay = relays.start({"RELAY_SHUTDOWN_GRACE": "2s"})
    shipments = [(unique("ST"), f"{unique('')}-01") for _ in range(5)]
    payloads = [
        generic(tracking, [event(tracking, n)], order_id, "2")
        for n in range(100)
        for tracking, order_id in shipments
    ]
    load = Load(relay.url, payloads, pause=0.02)
    load.start()
    in_flight = wait_until(
        lambda: len(load.accepted) >= 10 and [p for p in vtex.puts() if not p.finished],
        15,
        "a PUT in flight",
        every=0.01,
    )
    assert relay.process is not None
    relay.process.send_signal(signal.SIGTERM)

    def readyz() -> httpx.Response:
        try:
            return relay.client.get("/readyz")
        except httpx.TransportError as error:
            raise AssertionError("the listener closed before /readyz turned 503") from error

    not_ready = wait_until(lambda: (r := readyz()).status_code == 503 and r, 10, "/readyz 503")
    assert not_ready.json()["error"] == "not_ready"
    assert "shutting down" in not_ready.json()["detail"]
    assert relay.client.get("/livez").status_code == 200
    late_tracking, late_order = shipments[0]
    late = generic(late_tracking, [event(late_tracking, 999)], late_order, "2")
    late_answer = post(relay.client, late)
    assert late_answer.status_code == 202, late_answer.text

    assert relay.process.wait(timeout=40) == 0
    load.join(timeout=30)
    assert not load.refused, [a.text for a in load.refused[:3]]
    assert in_flight
    assert all(p.finished for p in in_flight)
    answered_first_run = [
        answer.body["receipt"] for _, answer in vtex.tracking_answers() if answer.status == 200
    ]
    records = relay.log_records()
    assert any(r.get("event") == "relay.draining" for r in records)
    assert not [r for r in records if r.get("event") == "worker.released"], "PUTs were cut"

    expected = load.acknowledged()
    expected.setdefault(tracking_path(late_order, "2"), set()).add(describe(late_tracking, 999))
    restarted = relays.start()
    wait_until(
        lambda: all_delivered(vtex, expected),
        40,
        lambda: (
            "every acknowledged event delivered after the restart; events missing per "
            f"invoice: {missing(vtex, expected)}"
        ),
        every=0.2,
    )
    stored = {d["receipt"]["receipt"] for d in deliveries(restarted, "delivered") if d["receipt"]}
    in_flight_receipts = [
        answer.body["receipt"]
        for recorded, answer in vtex.tracking_answers()
        if any(recorded is p for p in in_flight)
    ]
    assert set(in_flight_receipts) <= stored, "a PUT in flight at SIGTERM was not recorded"
    unrecorded = [r for r in answered_first_run if r not in stored]
    assert not unrecorded, f"{len(unrecorded)} PUTs answered before the exit were not recorded"
    assert_no_event_twice(vtex)


def test_sigterm_while_the_worker_is_claiming_leaves_no_delivery_stranded(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    """SIGTERM lands while the worker is inside a claim (made slow on purpose): the claimed
    delivery must be sent and recorded, or released, before the exit; not crash on a closed
    client and stay claimed until its lease runs out.

    If the machine is slow enough that the signal misses the claim, the test passes without
    having tested anything; it cannot fail because of timing.
    """
    claim_delay = 1.5
    patched = {
        "PYTHONPATH": str(patched_relay.ROOT),
        patched_relay.CLAIM_DELAY_VARIABLE: str(claim_delay),
        "RELAY_VTEX_COALESCE_WINDOW": "0s",
    }
    relay = relays.start(patched, command=patched_relay.COMMAND)
    tracking, order_id = unique("CL"), f"{unique('')}-01"
    answer = post(relay.client, generic(tracking, [event(tracking, 0)], order_id, "1"))
    assert answer.status_code == 202, answer.text
    time.sleep(0.3)  # the worker, woken by the webhook, is inside its claim now

    assert relay.stop() == 0
    errors = [r for r in relay.log_records() if r.get("level") in ("error", "critical")]
    assert not errors, f"the shutdown broke a claimed delivery: {errors}"

    restarted = relays.start()
    delivered = wait_until(
        lambda: delivery_of(restarted, order_id, "delivered"), 40, "the delivery after restart"
    )
    assert delivered["attempts"][-1]["statusCode"] == 200


# -- 7. quarantine and replay --------------------------------------------------------------


def test_an_unreadable_webhook_is_quarantined_and_replayed_after_the_adapter_is_fixed(
    vtex: VtexStandIn, relays: RelayFleet
) -> None:
    patched_env = {"PYTHONPATH": str(patched_relay.ROOT)}
    broken = relays.start(
        patched_env | {patched_relay.BREAK_VARIABLE: "1"}, command=patched_relay.COMMAND
    )
    tracking, order_id = unique("QU"), f"{unique('')}-01"
    payload = generic(tracking, [event(tracking, 0), event(tracking, 1)], order_id, "11")

    answer = post(broken.client, payload)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error"] == "unprocessable"
    assert patched_relay.BROKEN_DETAIL in error["detail"]
    webhook_id = error["webhook_id"]
    held = broken.client.get("/admin/quarantine", headers=admin(broken)).json()["webhooks"]
    assert [(w["webhookId"], w["carrier"]) for w in held] == [(webhook_id, "generic")]
    assert patched_relay.BROKEN_DETAIL in held[0]["error"]
    still = broken.client.post("/admin/quarantine/replay", headers=admin(broken))
    assert still.json() == {"replayed": 0, "still_quarantined": 1, "events": 0}
    assert broken.stop() == 0
    assert vtex.puts(order_id) == []

    fixed = relays.start(patched_env, command=patched_relay.COMMAND)
    held = fixed.client.get("/admin/quarantine", headers=admin(fixed)).json()["webhooks"]
    assert [w["webhookId"] for w in held] == [webhook_id]
    replay = fixed.client.post("/admin/quarantine/replay", headers=admin(fixed))
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"replayed": 1, "still_quarantined": 0, "events": 2}

    [put] = wait_until(lambda: vtex.puts(order_id), 15, "the replayed webhook's PUT")
    assert put.path == tracking_path(order_id, "11")
    assert descriptions(put) == [describe(tracking, 0), describe(tracking, 1)]
    assert fixed.client.get("/admin/quarantine", headers=admin(fixed)).json()["webhooks"] == []
    shipment = fixed.client.get(f"/shipments/{tracking}", headers=admin(fixed)).json()
    assert {e["webhookId"] for e in shipment["events"]} == {webhook_id}
    again = fixed.client.post("/admin/quarantine/replay", headers=admin(fixed))
    assert again.json() == {"replayed": 0, "still_quarantined": 0, "events": 0}

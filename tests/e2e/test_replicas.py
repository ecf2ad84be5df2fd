"""Several replicas on one PostgreSQL database (SPEC §3, §8): two ``relay serve`` processes on
the same schema, signed generic webhooks spread across both, a real local server playing VTEX.

PostgreSQL only: every test is skipped, with the reason, when RELAY_TEST_DATABASE_URL is unset.
Timing rule (as in test_delivery): waits have deadlines, assertions are about order and lower
bounds, never about the relay being fast.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import patched_relay
from tests.support.databases import (
    backend_terminator,
    postgresql_schema,
    through,
    upstream,
    with_application_name,
)
from tests.support.relay_process import RelayFleet, RelayProcess
from tests.support.tcp_proxy import TcpProxy
from tests.support.vtex_standin import Recorded, VtexStandIn
from tests.support.webhook_load import (
    SpreadLoad,
    describe,
    descriptions_by_path,
    event,
    foreign_events,
    generic,
    last_bodies,
    missing,
    overlapping_puts,
    post_signed,
    repeated_events,
    tracking_path,
    unique,
    wait_until,
)

pytestmark = pytest.mark.e2e

ADMIN = "admin-token-replicas"
GENERIC_SECRET = "whsec_" + "cmVwbGljYXMtc2VjcmV0LWZvci1lMmUtdGVzdHM="
APP_KEY = "vtexappkey-replicas-KEY"
APP_TOKEN = "vtex-app-token-replicas"
# Claims are leased for max(15 s, 1.5 x RELAY_VTEX_TIMEOUT): a dead replica's (or a claim
# whose outcome could not be recorded) are taken over after that, plus polling and the PUT.
LEASE_SECONDS = 15.0
TAKEOVER_DEADLINE = 45.0


def one_event_each(invoices: int, per_invoice: int, invoice: str) -> list[dict[str, Any]]:
    """``invoices x per_invoice`` webhooks, each carrying one new event of its shipment and
    naming its invoice, round-robin over the shipments."""
    shipments = [(unique("RP"), f"{unique('')}-01") for _ in range(invoices)]
    return [
        generic(tracking, [event(tracking, n)], order_id, invoice)
        for n in range(per_invoice)
        for tracking, order_id in shipments
    ]


@pytest.fixture
def vtex() -> Iterator[VtexStandIn]:
    with VtexStandIn(delay=0.05) as standin:
        yield standin


@pytest.fixture
def schema_url() -> Iterator[str]:
    with postgresql_schema() as url:
        yield url


def replica_settings(database_url: str, vtex: VtexStandIn) -> dict[str, str]:
    """What every replica of a test shares: one database, one VTEX stand-in."""
    return {
        "RELAY_DATABASE_URL": database_url,
        "RELAY_VTEX_BASE_URL": vtex.url,
        "RELAY_VTEX_APP_KEY": APP_KEY,
        "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
        "RELAY_WORKER_POLL_INTERVAL": "0.2s",
        "RELAY_SHUTDOWN_GRACE": "0.2s",
        # Every new event queues a delivery at once: many PUTs per invoice, from both
        # replicas, while more events for the same invoice arrive on both.
        "RELAY_VTEX_COALESCE_WINDOW": "0s",
    }


@pytest.fixture
def replicas(tmp_path: Path, vtex: VtexStandIn, schema_url: str) -> Iterator[RelayFleet]:
    started = RelayFleet(tmp_path, replica_settings(schema_url, vtex))
    try:
        yield started
    finally:
        started.close()


def open_deliveries(relay: RelayProcess) -> list[dict[str, Any]]:
    found = []
    for state in ("pending", "retrying"):
        answer = relay.client.get(
            "/admin/deliveries",
            params={"state": state, "limit": "1000"},
            headers=relay.admin(ADMIN),
        )
        assert answer.status_code == 200, answer.text
        found.extend(answer.json()["deliveries"])
    return found


def wait_for_quiet(
    vtex: VtexStandIn, relay: RelayProcess, expected: dict[str, set[str]], timeout: float
) -> None:
    """Every expected event is in its invoice's body on VTEX and no delivery is open."""
    wait_until(
        lambda: not missing(vtex, expected),
        timeout,
        lambda: f"events missing from VTEX's bodies, per invoice: {missing(vtex, expected)}",
        every=0.2,
    )
    wait_until(
        lambda: not open_deliveries(relay),
        timeout,
        lambda: f"deliveries still open: {len(open_deliveries(relay))}",
        every=0.2,
    )


def assert_sent_once_at_a_time(vtex: VtexStandIn, posted: dict[str, set[str]]) -> None:
    """No invoice had two PUTs in flight at once, and no body repeated or misplaced an event."""
    overlapping = overlapping_puts(vtex)
    assert not overlapping, f"overlapping PUTs (start, finish, next start): {overlapping}"
    assert not repeated_events(vtex), f"events twice in one body: {repeated_events(vtex)}"
    stray = foreign_events(vtex, posted)
    assert not stray, f"events in another invoice's body: {stray}"


def as_sender(name: str) -> dict[str, str]:
    """A replica's own VTEX app token, so that the stand-in can tell which replica sent a PUT."""
    return {"RELAY_VTEX_APP_TOKEN": f"{APP_TOKEN}-{name}"}


def sender(put: Recorded) -> str:
    return put.headers["x-vtex-api-apptoken"].removeprefix(f"{APP_TOKEN}-")


# -- 1. two replicas, one database ---------------------------------------------------------


def test_webhooks_spread_over_two_replicas_reach_the_right_invoice_one_put_at_a_time(
    vtex: VtexStandIn, replicas: RelayFleet
) -> None:
    first, second = replicas.start(as_sender("first")), replicas.start(as_sender("second"))
    payloads = one_event_each(invoices=30, per_invoice=10, invoice="10")
    # Any order will do (VTEX gets each history oldest first); shuffled so that events of one
    # invoice reach both replicas at once, while the other's worker may be sending it.
    random.Random(20261120).shuffle(payloads)
    load = SpreadLoad([first.url, second.url], payloads, GENERIC_SECRET, threads=8).start()
    load.join(timeout=90)

    assert load.statuses() == {202: len(payloads)}, [
        o.answer for o in load.snapshot() if o.status != 202
    ][:3]
    assert Counter(o.url for o in load.accepted()) == {first.url: 150, second.url: 150}
    expected = load.acknowledged()
    assert len(expected) == 30

    wait_for_quiet(vtex, first, expected, timeout=45)
    final = last_bodies(vtex)
    wrong = {
        path: final.get(path)
        for path, wanted in expected.items()
        if final.get(path) != sorted(wanted)
    }
    assert not wrong, f"final bodies that are not exactly the invoice's 10 events: {wrong}"
    assert_sent_once_at_a_time(vtex, expected)
    sent_by = Counter(sender(put) for put in vtex.puts())
    assert set(sent_by) == {"first", "second"}, f"a replica's worker sent nothing: {sent_by}"


def test_an_event_committed_after_a_newer_one_of_the_other_replica_still_reaches_vtex(
    vtex: VtexStandIn, replicas: RelayFleet
) -> None:
    """Event ids come from a sequence: with two writers, a smaller id can commit after a larger
    one. Here replica ``slow`` writes event 1 of an invoice whose delivery the other replica has
    claimed, and holds its transaction open; meanwhile event 2 (a larger id) commits on the
    other replica, whose worker then reads the history (events 0 and 2) and sends it. Event 1
    commits after that read: a delivery must still follow with it, or VTEX never gets it
    although its webhook got a 202.

    The delays are fault injection (tests.support.patched_relay). If the machine is so slow
    that the steps do not interleave as planned, the test passes without having tested the
    race; it cannot fail because of timing.
    """
    patched = {"PYTHONPATH": str(patched_relay.ROOT)}
    slow = replicas.start(
        patched | {patched_relay.INGEST_HOLD_VARIABLE: "4", "RELAY_WORKER": "false"},
        command=patched_relay.COMMAND,
    )
    claimer = replicas.start(
        patched | {patched_relay.HISTORY_DELAY_VARIABLE: "2"}, command=patched_relay.COMMAND
    )
    tracking, order_id = unique("RC"), f"{unique('')}-01"

    def webhook(n: int) -> dict[str, Any]:
        return generic(tracking, [event(tracking, n)], order_id, "40")

    first = post_signed(claimer.client, GENERIC_SECRET, webhook(0))
    assert first.status_code == 202, first.text
    time.sleep(0.3)  # the claimer's worker has claimed the delivery; it reads the history at 2 s
    held: list[httpx.Response] = []
    writer = threading.Thread(
        target=lambda: held.append(post_signed(slow.client, GENERIC_SECRET, webhook(1)))
    )
    writer.start()
    time.sleep(0.5)  # event 1 is written and joined the open delivery; its commit waits 4 s
    newer = post_signed(claimer.client, GENERIC_SECRET, webhook(2))
    assert newer.status_code == 202, newer.text
    writer.join(timeout=30)
    assert held, "the held webhook got no answer"
    assert held[0].status_code == 202, held[0].text

    expected = {
        tracking_path(order_id, "40"): {describe(tracking, n) for n in range(3)},
    }
    wait_for_quiet(vtex, claimer, expected, timeout=20)
    assert_sent_once_at_a_time(vtex, expected)


# -- 2. kill -9 of one replica mid-load ------------------------------------------------------


def test_kill_9_of_one_replica_mid_load_loses_nothing_and_the_other_takes_over(
    vtex: VtexStandIn, replicas: RelayFleet
) -> None:
    vtex.delay = 0.5  # PUTs are in flight at the kill: their claims must expire first
    doomed = replicas.start(as_sender("doomed"))
    survivor = replicas.start(as_sender("survivor"))
    payloads = one_event_each(invoices=30, per_invoice=12, invoice="20")
    load = SpreadLoad(
        [doomed.url, survivor.url], payloads, GENERIC_SECRET, threads=6, pause=0.02
    ).start()

    def doomed_put_just_started() -> list[Recorded]:
        now = time.monotonic()
        return [
            p
            for p in vtex.puts()
            if sender(p) == "doomed" and not p.finished and now - p.started < 0.1
        ]

    in_flight: list[Recorded] = wait_until(
        lambda: len(load.accepted()) >= 100 and doomed_put_just_started(),
        30,
        "100 webhooks accepted and a PUT of the doomed replica just started",
        every=0.01,
    )
    killed_at = time.monotonic()
    assert doomed.stop(signal.SIGKILL) == -signal.SIGKILL
    load.retire(doomed.url)
    load.join(timeout=60)
    # Those PUTs could not have been answered before the kill: their deliveries stay claimed.
    stranded = {p.path for p in in_flight if p.started + vtex.delay > killed_at}
    assert stranded, "the test thread stalled between choosing the PUTs and the kill"

    answered = [o for o in load.snapshot() if o.status is not None]
    refused = [(o.url, o.status, o.answer) for o in answered if o.status != 202]
    assert not refused, f"webhooks refused: {refused[:3]}"
    accepted_after = [o for o in load.accepted() if o.sent > killed_at]
    assert accepted_after, "the load ended before the kill"
    assert {o.url for o in accepted_after} == {survivor.url}
    acknowledged = load.acknowledged()

    # The dead replica's claims expire after their lease; the survivor then sends them.
    wait_for_quiet(vtex, survivor, acknowledged, timeout=TAKEOVER_DEADLINE)
    final = last_bodies(vtex)
    posted = load.posted()
    for path, wanted in acknowledged.items():
        body = set(final[path])
        # Unanswered webhooks (cut by the kill) may or may not have been committed.
        assert wanted <= body <= posted[path], path
    assert_sent_once_at_a_time(vtex, posted)
    for path in stranded:
        taken_over = [p.started - killed_at for p in vtex.puts(path) if p.started > killed_at]
        assert taken_over, f"{path}: the survivor never sent the dead replica's delivery"
        # Claims are renewed every lease/3, so one held at the kill lasts 10 s more at least.
        assert min(taken_over) > LEASE_SECONDS / 3, (
            f"{path}: sent {min(taken_over):.1f}s after the kill, inside the dead claim's lease"
        )
    assert survivor.client.get("/readyz").status_code == 200
    assert survivor.process is not None
    assert survivor.process.poll() is None


# -- 3. the database connections cut mid-load ------------------------------------------------


@dataclass(frozen=True)
class Probe:
    url: str
    at: float
    status: int | None
    answer: Any


class ReadinessWatch(threading.Thread):
    """Polls ``/readyz`` of each relay every ``every`` seconds until stopped."""

    def __init__(self, relays: list[RelayProcess], every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.relays = relays
        self.every = every
        self.probes: list[Probe] = []
        self._done = threading.Event()

    def run(self) -> None:
        clients = [httpx.Client(base_url=r.url, timeout=10) for r in self.relays]
        try:
            while not self._done.is_set():
                for client in clients:
                    try:
                        answer = client.get("/readyz")
                        probe = Probe(
                            str(client.base_url),
                            time.monotonic(),
                            answer.status_code,
                            answer.json(),
                        )
                    except (httpx.TransportError, ValueError) as error:
                        probe = Probe(str(client.base_url), time.monotonic(), None, repr(error))
                    self.probes.append(probe)
                self._done.wait(self.every)
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=15)

    def between(self, start: float, end: float) -> list[Probe]:
        return [p for p in list(self.probes) if start <= p.at <= end]


def ready_once_more(relay: RelayProcess, timeout: float) -> float:
    """Waits for ``/readyz`` to answer 200; returns when it did (``time.monotonic()``)."""

    def ready() -> float | None:
        return time.monotonic() if relay.client.get("/readyz").status_code == 200 else None

    answered: float = wait_until(ready, timeout, f"{relay.url}/readyz 200 again", every=0.1)
    return answered


def says_database(answer: Any) -> bool:
    return (
        isinstance(answer, dict)
        and "database" in answer.get("detail", "")
        and str(answer.get("checks", {}).get("database", "")).startswith("failing")
    )


def test_database_connections_cut_mid_load_the_relays_recover_and_lose_nothing_acknowledged(
    tmp_path: Path, vtex: VtexStandIn, schema_url: str
) -> None:
    """Phase 1 terminates the relays' own backends (found by their application_name) over and
    over for 2 s; phase 2 makes the database unreachable for 2 s (a proxy between the relays and
    PostgreSQL drops every connection and refuses new ones), long enough for /readyz and the
    webhooks to show it. Then both must be back without a restart, and every webhook that got a
    202 before, during or after must reach VTEX."""
    application_name = "relay_test_" + uuid.uuid4().hex[:12]
    with contextlib.ExitStack() as stack:
        proxy = stack.enter_context(TcpProxy(*upstream(schema_url)))
        terminate = stack.enter_context(backend_terminator())
        url = with_application_name(through(schema_url, "127.0.0.1", proxy.port), application_name)
        replicas = RelayFleet(tmp_path, replica_settings(url, vtex))
        stack.callback(replicas.close)
        first, second = replicas.start(), replicas.start()
        processes = [relay.process for relay in (first, second)]

        payloads = one_event_each(invoices=30, per_invoice=10, invoice="30")
        # At most 30 webhooks a second, so that the load goes on past the outage.
        load = SpreadLoad(
            [first.url, second.url], payloads, GENERIC_SECRET, threads=3, pause=0.1
        ).start()
        watch = ReadinessWatch([first, second])
        watch.start()
        wait_until(lambda: len(load.accepted()) >= 30, 30, "30 webhooks accepted", every=0.01)

        # Phase 1: pg_terminate_backend on the relays' connections, again and again.
        terminated = 0
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            terminated += terminate(application_name)
            time.sleep(0.02)
        assert terminated > 0, "no backend of the relays was found to terminate"

        # Phase 2: the database unreachable.
        proxy.cut()
        cut_at = time.monotonic()
        terminate(application_name)
        during: dict[str, httpx.Response] = {}
        refused_payloads = []
        for relay in (first, second):
            tracking, order_id = unique("CUT"), f"{unique('')}-01"
            payload = generic(tracking, [event(tracking, 0)], order_id, "31")
            during[relay.url] = post_signed(relay.client, GENERIC_SECRET, payload)
            refused_payloads.append(payload)
        time.sleep(max(0.0, cut_at + 2.0 - time.monotonic()))
        restored_at = time.monotonic()
        proxy.restore()

        ready_again = {relay.url: ready_once_more(relay, timeout=20) for relay in (first, second)}
        load.join(timeout=60)
        watch.stop()

        # During the outage: 503 naming the database, never a 202 for what was not stored.
        for relay_url, answer in during.items():
            assert answer.status_code == 503, (relay_url, answer.text)
            assert answer.json()["error"] == "unavailable"
            assert "database" in answer.json()["detail"]
        for relay in (first, second):
            seen = [p for p in watch.between(cut_at, restored_at) if p.url == relay.url]
            assert any(p.status == 503 and says_database(p.answer) for p in seen), (
                f"{relay.url}/readyz never showed the outage: {Counter(p.status for p in seen)}"
            )
        lost = [p for p in watch.probes if p.status is None]
        assert not lost, f"/readyz did not answer at all: {lost[:3]}"
        outcomes = load.snapshot()
        unexpected = [(o.status, o.answer) for o in outcomes if o.status not in (202, 503)]
        assert not unexpected, f"webhooks got other than 202 or 503: {unexpected[:3]}"
        assert all(o.answer.get("error") == "unavailable" for o in outcomes if o.status == 503), (
            "a 503 without the unavailable error"
        )

        # Recovered without a restart: once ready again, every webhook is accepted.
        late = [o for o in outcomes if o.sent > ready_again[o.url]]
        assert all(o.status == 202 for o in late), [
            (o.status, o.answer) for o in late if o.status != 202
        ][:3]
        assert all(p is not None and p.poll() is None for p in processes), "a relay exited"
        after = []
        for n, relay in enumerate((first, second, first, second)):
            tracking, order_id = unique("AFT"), f"{unique('')}-01"
            payload = generic(tracking, [event(tracking, n)], order_id, "32")
            answer = post_signed(relay.client, GENERIC_SECRET, payload)
            assert answer.status_code == 202, (relay.url, answer.text)
            after.append(payload)

        acknowledged = load.acknowledged()
        for path, wanted in descriptions_by_path(after).items():
            acknowledged.setdefault(path, set()).update(wanted)
        # A PUT whose outcome could not be stored is sent again once its claim's lease is over.
        wait_for_quiet(vtex, first, acknowledged, timeout=TAKEOVER_DEADLINE)
        # A 503 promises nothing either way (an answer lost in a cut may follow a commit).
        posted = load.posted()
        for path, wanted in descriptions_by_path([*after, *refused_payloads]).items():
            posted.setdefault(path, set()).update(wanted)
        assert_sent_once_at_a_time(vtex, posted)


# -- 4. LISTEN/NOTIFY ------------------------------------------------------------------------


def test_a_replica_that_queues_work_wakes_the_other_replicas_worker(
    vtex: VtexStandIn, replicas: RelayFleet
) -> None:
    # The ingesting replica has no worker; the delivering one polls only every 60 s. Without
    # a notification the PUT would wait for that poll.
    ingest = replicas.start({"RELAY_WORKER": "false"})
    worker = replicas.start({"RELAY_WORKER_POLL_INTERVAL": "60s"})
    time.sleep(1.0)  # let the worker's first (empty) poll pass and its listener connect
    payloads = one_event_each(invoices=3, per_invoice=1, invoice="NF-9")

    posted_at = time.monotonic()
    for payload in payloads:
        assert post_signed(ingest.client, GENERIC_SECRET, payload).status_code == 202

    expected = {
        tracking_path(p["orderId"], "NF-9"): {describe(p["trackingNumber"], 0)} for p in payloads
    }
    wait_until(
        lambda: not missing(vtex, expected),
        20,
        lambda: f"not delivered: {missing(vtex, expected)}",
    )
    first_put = min(put.started for put in vtex.puts())
    assert first_put - posted_at < 30, "the worker waited for its poll: no notification woke it"
    assert worker.client.get("/readyz").status_code == 200

"""Signed generic webhooks posted from several threads across several relays, and what the VTEX
stand-in saw of them: the newest accepted body per invoice, overlapping PUTs, repeated events.

Each event's description names its tracking number and index (``describe``), so a PUT body
shows exactly which events it carries.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.signing import standard_webhooks_headers
from tests.support.vtex_standin import Recorded, VtexStandIn

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def unique(prefix: str) -> str:
    """A tracking number or order id no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:10].upper()}"


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str | Callable[[], str],
    every: float = 0.05,
) -> Any:
    """The first truthy value of ``condition()``; fails naming ``what`` after ``timeout``
    (a callable ``what`` is called then, to describe the state at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {described}")
        time.sleep(every)


def describe(tracking: str, index: int) -> str:
    return f"{tracking} scan {index:03d}"


def event(tracking: str, index: int, status: str = "in_transit") -> dict[str, Any]:
    """Event ``index`` of a shipment, ``index`` minutes after :data:`T0`."""
    return {
        "time": (T0 + timedelta(minutes=index)).isoformat(),
        "status": status,
        "description": describe(tracking, index),
        "city": "Curitiba",
        "state": "PR",
    }


def generic(
    tracking: str, events: list[dict[str, Any]], order_id: str, invoice: str
) -> dict[str, Any]:
    """A generic webhook that also registers the shipment to ``order_id``/``invoice``."""
    return {
        "trackingNumber": tracking,
        "orderId": order_id,
        "invoiceNumber": invoice,
        "events": events,
    }


def tracking_path(order_id: str, invoice: str) -> str:
    return f"/api/oms/pvt/orders/{order_id}/invoice/{invoice}/tracking"


def path_of(payload: dict[str, Any]) -> str:
    return tracking_path(payload["orderId"], payload["invoiceNumber"])


def post_signed(client: httpx.Client, secret: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/generic", content=body, headers=standard_webhooks_headers(secret, body)
    )


@dataclass(frozen=True)
class Outcome:
    """One webhook posted: where, when it was sent and answered (``time.monotonic()``), and the
    status (None: unreachable)."""

    url: str
    payload: dict[str, Any]
    status: int | None
    answer: Any
    sent: float
    at: float


class SpreadLoad:
    """Posts ``payloads`` in order from ``threads`` threads, the n-th to ``targets[n % len]``.

    :meth:`retire` takes a relay out of the rotation (it was killed): later webhooks go to the
    others. Every answer is kept in :attr:`outcomes`; ``pause`` is each thread's rest between
    two posts.
    """

    def __init__(
        self,
        targets: Sequence[str],
        payloads: Sequence[dict[str, Any]],
        secret: str,
        threads: int = 6,
        pause: float = 0.0,
    ) -> None:
        self.targets = list(targets)
        self.payloads = list(payloads)
        self.secret = secret
        self.pause = pause
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._next = itertools.count()
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> SpreadLoad:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"load threads still posting after {timeout}s: {alive}"

    def retire(self, url: str) -> None:
        with self._lock:
            self.targets.remove(url)

    def _run(self) -> None:
        clients: dict[str, httpx.Client] = {}
        try:
            while True:
                with self._lock:
                    index = next(self._next)
                    if index >= len(self.payloads):
                        return
                    url = self.targets[index % len(self.targets)]
                payload = self.payloads[index]
                client = clients.get(url)
                if client is None:
                    client = clients[url] = httpx.Client(base_url=url, timeout=30)
                sent = time.monotonic()
                try:
                    answer = post_signed(client, self.secret, payload)
                    status, body = answer.status_code, _json_or_text(answer)
                except httpx.TransportError as error:
                    status, body = None, repr(error)
                outcome = Outcome(url, payload, status, body, sent, time.monotonic())
                with self._lock:
                    self.outcomes.append(outcome)
                if self.pause:
                    time.sleep(self.pause)
        finally:
            for client in clients.values():
                client.close()

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def accepted(self) -> list[Outcome]:
        return [o for o in self.snapshot() if o.status == 202]

    def statuses(self) -> Counter[int | None]:
        return Counter(o.status for o in self.snapshot())

    def acknowledged(self) -> dict[str, set[str]]:
        """Descriptions of every event of a webhook that got 202, per VTEX tracking path."""
        return descriptions_by_path(o.payload for o in self.accepted())

    def posted(self) -> dict[str, set[str]]:
        """Descriptions of every event posted at all (answered or not), per tracking path."""
        return descriptions_by_path(self.payloads)


def descriptions_by_path(payloads: Any) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for payload in payloads:
        found.setdefault(path_of(payload), set()).update(
            e["description"] for e in payload["events"]
        )
    return found


def _json_or_text(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


# -- what VTEX saw ---------------------------------------------------------------------------


def descriptions(put: Recorded) -> list[str]:
    return [e["description"] for e in put.body["events"]]


def accepted_puts(vtex: VtexStandIn) -> list[Recorded]:
    """Tracking PUTs the stand-in answered 2xx, in the order they started."""
    with vtex._lock:
        answered = list(vtex.answers)
    return sorted(
        (r for r, a in answered if r.method == "PUT" and 200 <= a.status < 300),
        key=lambda r: r.started,
    )


def last_bodies(vtex: VtexStandIn) -> dict[str, list[str]]:
    """The descriptions of the newest accepted PUT per path (the invoice's tracking on VTEX)."""
    return {put.path: descriptions(put) for put in accepted_puts(vtex)}


def missing(vtex: VtexStandIn, expected: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per path, the expected descriptions that VTEX's current body lacks."""
    current = last_bodies(vtex)
    gaps = {path: sorted(wanted - set(current.get(path, []))) for path, wanted in expected.items()}
    return {path: gap for path, gap in gaps.items() if gap}


def overlapping_puts(vtex: VtexStandIn) -> dict[str, list[tuple[float, float, float]]]:
    """Per path, PUTs that started before an earlier PUT of the same path had been answered:
    (earlier start, earlier finish, later start), in stand-in monotonic seconds."""
    by_path: dict[str, list[Recorded]] = {}
    for put in vtex.puts():
        by_path.setdefault(put.path, []).append(put)
    found: dict[str, list[tuple[float, float, float]]] = {}
    for path, puts in by_path.items():
        puts.sort(key=lambda p: p.started)
        busy_until, busy_since = 0.0, 0.0
        for put in puts:
            finished = put.finished or float("inf")  # still unanswered: in flight
            if put.started < busy_until:
                found.setdefault(path, []).append(
                    (round(busy_since, 3), round(busy_until, 3), round(put.started, 3))
                )
            if finished > busy_until:
                busy_since, busy_until = put.started, finished
    return found


def repeated_events(vtex: VtexStandIn) -> dict[str, list[str]]:
    """Per path, descriptions that one PUT body carried more than once."""
    found: dict[str, list[str]] = {}
    for put in vtex.puts():
        twice = [d for d, n in Counter(descriptions(put)).items() if n > 1]
        if twice:
            found.setdefault(put.path, []).extend(twice)
    return found


def foreign_events(vtex: VtexStandIn, posted: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per path, descriptions in a PUT body that were never posted for that invoice."""
    found: dict[str, list[str]] = {}
    for put in vtex.puts():
        stray = sorted(set(descriptions(put)) - posted.get(put.path, set()))
        if stray:
            found.setdefault(put.path, []).extend(stray)
    return found

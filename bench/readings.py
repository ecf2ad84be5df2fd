"""What the driver reads back from a relay, through the relay itself, never by SQL on its
tables: its ``GET /metrics`` while ``relay serve`` runs, and the store front
(``app.store.SqlStore``, read methods only) once it is stopped, or while only ``relay worker``
runs (which has no HTTP port).

On PostgreSQL the store front's sessions are read-only (``default_transaction_read_only``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.databases import RelayDatabase
from bench.processes import Running

T = TypeVar("T")
Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(client: httpx.Client) -> Samples:
    """``GET /metrics``: every sample by name, with its labels."""
    answer = client.get("/metrics")
    answer.raise_for_status()
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> int:
    """The sum of ``name``'s samples that carry ``labels``."""
    return int(
        sum(
            value
            for have, value in samples.get(name, [])
            if all(have.get(key) == want for key, want in labels.items())
        )
    )


def ingest_counts(samples: Samples) -> dict[str, int]:
    """What a relay on a fresh database holds after ingest, from its own counters.

    It answers 202 only once the webhook is committed, so on a database of its own its
    ``accepted`` count is the webhooks stored, and its event counts the events stored.
    The deliveries are the open ones (the backlog gauge, read from the database at each
    scrape) plus those delivered and dead: with the worker off, all are open; with it on, a
    delivery recorded between the gauge's read and the counters' may be off by the few in
    flight.
    """
    return {
        "webhooks": total(samples, "relay_webhooks_total", outcome="accepted"),
        "new_events": total(samples, "relay_events_total", kind="new"),
        "duplicates": total(samples, "relay_events_total", kind="duplicate"),
        "deliveries": total(samples, "relay_backlog_deliveries")
        + total(samples, "relay_deliveries_total", outcome="delivered")
        + total(samples, "relay_dead_deliveries"),
    }


def settled_counts(client: httpx.Client, timeout: float = 10.0) -> dict[str, int]:
    """:func:`ingest_counts` once the webhooks still in flight when the load stopped are
    answered: two scrapes 100 ms apart agree on the webhooks and events."""
    deadline = time.monotonic() + timeout
    counts = ingest_counts(scrape(client))
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = ingest_counts(scrape(client))
        keys = ("webhooks", "new_events", "duplicates")
        if all(again[key] == counts[key] for key in keys):
            return again
        counts = again
    return counts


def with_store(db: RelayDatabase, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(store)`` with the relay's store front open on ``db``, then closed."""
    # Imported here: run.py first puts the measured snapshot of app/ on sys.path, so the
    # driver reads with the very code the relay runs.
    from app.store import SqlStore

    async def run() -> T:
        store = SqlStore.open(db.read_url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def wait_until_due(db: RelayDatabase, timeout: float = 30.0) -> float:
    """Wait (at most ``timeout``) until every open delivery is due, polling the store's
    backlog every 20 ms; the seconds waited."""

    async def work(store: Any) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            waiting, due = await store.backlog(datetime.now(UTC))
            if due >= waiting:
                break
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    return with_store(db, work)


def wait_all_delivered(db: RelayDatabase, proc: Running, timeout: float) -> float:
    """Poll the store's queue snapshot every 20 ms until no delivery is open; the monotonic
    time at which that was first seen. A dead delivery, or ``proc`` exiting, fails."""

    async def work(store: Any) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            snapshot = await store.queue_snapshot(datetime.now(UTC))
            if snapshot.dead:
                raise RuntimeError(f"{snapshot.dead} deliveries are dead:\n{proc.tail()}")
            if snapshot.backlog == 0:
                return time.monotonic()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"deliveries not all delivered within {timeout}s:\n{proc.tail()}")

    return with_store(db, work)

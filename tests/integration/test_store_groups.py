"""Webhooks are stored a commit group at a time: the statements (and, on PostgreSQL, the round
trips) a group costs do not grow with its size, and each webhook's answer stays its own."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from app.store import IngestResult, SqlStore, Store, sync_url
from app.store.webhooks import Arrival, accept, arrival, new_webhook_id
from tests.integration.helpers import T0, event, update

pytestmark = pytest.mark.anyio


@contextmanager
def statements_sent(conn: Connection) -> Iterator[list[str]]:
    """What the connection sends the database meanwhile, one entry per statement (SQLite:
    its trace of each statement run; PostgreSQL: libpq's trace of the wire protocol, where a
    Sync or a simple Query ends each round trip)."""
    sent: list[str] = []
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if conn.dialect.name == "sqlite":
        raw.set_trace_callback(sent.append)  # type: ignore[attr-defined]
        try:
            yield sent
        finally:
            raw.set_trace_callback(None)  # type: ignore[attr-defined]
        return
    from psycopg import pq

    pgconn = raw.pgconn  # type: ignore[attr-defined]
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.flush()
            os.fsync(trace.fileno())
            trace.seek(0)
            for line in trace.read().splitlines():
                fields = line.split("\t")
                if len(fields) > 2 and fields[0] == "F" and fields[2] in ("Sync", "Query"):
                    sent.append(line)


def arrivals(prefix: str, count: int, dialect: str) -> list[Arrival]:
    """``count`` webhooks of one shape: new events for a registered shipment, a first sight of
    another with a payload that repeats an event, and one event already stored."""
    made = []
    for index in range(count):
        when = T0 + timedelta(minutes=index)
        updates = [
            update(f"{prefix}-REG-{index}", event(when), event(when + timedelta(hours=1))),
            update(f"{prefix}-NEW-{index}", event(when), event(when)),
            update(f"{prefix}-OLD-{index}", event(T0)),
        ]
        body = b'{"raw": true}'
        made.append(arrival(new_webhook_id(), "correios", updates, T0, body, dialect))
    return made


async def prepare(store: Store, prefix: str, count: int) -> None:
    for index in range(count):
        await store.register_shipment(
            f"{prefix}-REG-{index}", f"ORD-{prefix}-{index}", f"INV-{index}", None, None, T0
        )
        await store.record_webhook(
            "correios", b"{}", [update(f"{prefix}-OLD-{index}", event(T0))], T0
        )


async def test_a_groups_statements_do_not_grow_with_its_size(database_url: str) -> None:
    store = SqlStore.open(database_url)
    await store.migrate()
    sizes = {"ONE": 1, "MANY": 64}
    for prefix, size in sizes.items():
        await prepare(store, prefix, size)
    await store.close()
    engine = create_engine(sync_url(database_url))
    counts: dict[int, int] = {}
    try:
        for prefix, size in sizes.items():
            group = arrivals(prefix, size, engine.dialect.name)
            with engine.connect() as conn, conn.begin():
                with statements_sent(conn) as sent:
                    results = accept(conn, group, timedelta(0))
                counts[size] = len(sent)
            for result in results:
                # REG: 2 new; NEW: 1 new + the repeat; OLD: already stored.
                assert (result.new_events, result.duplicate_events) == (3, 2)
                assert result.deliveries_queued == 1
    finally:
        engine.dispose()
    print(f"statements per commit group ({database_url.split(':')[0]}): {counts}")
    assert counts[64] == counts[1]
    assert counts[1] <= 8


async def test_concurrent_webhooks_are_each_answered_as_if_stored_alone(store: Store) -> None:
    await store.register_shipment("SHARED", "ORD-1", "INV-1", None, None, T0)
    shared = [event(T0 + timedelta(minutes=minute)) for minute in range(5)]
    # 40 webhooks at once, each repeating some of the same five events: however the writer
    # groups them, each event is new exactly once and a duplicate everywhere else.
    bodies = [[shared[(i + k) % 5] for k in range(3)] for i in range(40)]
    results = await asyncio.gather(
        *(
            store.record_webhook("correios", b"{}", [update("SHARED", *events)], T0)
            for events in bodies
        )
    )
    assert sum(result.new_events for result in results) == 5
    assert sum(result.duplicate_events for result in results) == 40 * 3 - 5
    assert sum(result.deliveries_queued for result in results) == 1
    assert len({result.webhook_id for result in results}) == 40
    history = await store.invoice_history("ORD-1", "INV-1")
    assert [e.occurred_at for e in history.events] == [e.occurred_at for e in shared]


async def test_a_failing_webhook_fails_alone_in_its_group(store: Store) -> None:
    good = [update(f"GOOD-{i}", event(T0)) for i in range(10)]
    broken = dataclasses.replace(event(T0), description=None)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        *(store.record_webhook("correios", b"{}", [u], T0) for u in good[:5]),
        store.record_webhook("correios", b"{}", [update("BROKEN", broken)], T0),
        *(store.record_webhook("correios", b"{}", [u], T0) for u in good[5:]),
        return_exceptions=True,
    )
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    stored = [outcome for outcome in outcomes if isinstance(outcome, IngestResult)]
    assert len(failed) == 1
    assert [result.new_events for result in stored] == [1] * 10
    for u in good:
        assert await store.get_shipment(u.tracking_number) is not None
    assert await store.get_shipment("BROKEN") is None

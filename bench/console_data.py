"""The console benchmark's database (SPEC §10): 100,000 shipments, 1,000,000 events and
100,000 deliveries, written straight into the relay's tables.

Unlike the rest of bench/, which only talks to the relay over HTTP, this module writes the
relay's own tables: feeding a million events through the webhook route and a hundred thousand
PUTs through the worker would take most of an hour. The tables are created by the relay's
``migrate`` first, so the rows land in exactly the schema a relay uses; the rows are what the
relay would have written (the same columns, states and time formats), generated in bulk:
``executemany`` on SQLite, ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import create_engine

from app.store import sync_url
from app.store.schema import migrate, stored_time

SHIPMENTS = 100_000
EVENTS_PER_SHIPMENT = 10
QUARANTINED = 1_000
CARRIERS = ("generic", "dhl", "aftership", "easypost", "shippo", "ups", "intelipost")
ACCOUNTS = ("benchstore", "benchstore2")
NOW = datetime.now(UTC).replace(microsecond=0)
BODY = json.dumps(
    {"trackingNumber": "X", "events": [{"status": "in_transit", "description": "Em trânsito"}]}
).encode()


def tracking_number(n: int) -> str:
    return f"BR{n:09d}XX"


def order_id(n: int) -> str:
    return f"{1400000000000 + n}-01"


def invoice_number(n: int) -> str:
    return f"NF{n:08d}"


def webhook_id(n: int) -> str:
    return f"wh_{n:036d}"


def state_of(n: int) -> str:
    """90 % delivered, 5 % dead, 3 % pending, 2 % retrying."""
    slot = n % 100
    return (
        "delivered"
        if slot < 90
        else "dead"
        if slot < 95
        else "pending"
        if slot < 98
        else "retrying"
    )


def rows(
    table: str, time: Any, shipments: int = SHIPMENTS, now: datetime = NOW
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` for ``shipments`` shipments, the first received a week before
    ``now``, one every 6 s; ``time(datetime)`` is how the database takes a time."""
    start = now - timedelta(days=7)
    if table == "webhooks":
        for n in range(shipments):
            at = start + timedelta(seconds=n * 6)
            yield (
                webhook_id(n),
                CARRIERS[n % len(CARRIERS)],
                time(at),
                BODY,
                "accepted",
                None,
                10,
                0,
            )
        for q in range(QUARANTINED):
            at = start + timedelta(seconds=q * 600)
            yield (
                f"wq_{q:036d}",
                CARRIERS[q % len(CARRIERS)],
                time(at),
                b'{"unreadable": "payload %d"}' % q,
                "quarantined",
                "events.0.status: not a status this adapter knows",
                0,
                0,
            )
    elif table == "shipments":
        for n in range(shipments):
            at = time(start + timedelta(seconds=n * 6))
            yield (
                tracking_number(n),
                CARRIERS[n % len(CARRIERS)],
                None,
                order_id(n),
                invoice_number(n),
                ACCOUNTS[n % 2] if n % 3 == 0 else None,
                at,
                at,
                at,
            )
    elif table == "events":
        for n in range(shipments):
            first = start + timedelta(seconds=n * 6)
            for e in range(EVENTS_PER_SHIPMENT):
                occurred = first + timedelta(hours=e)
                identity = hashlib.sha256(f"{n}/{e}".encode()).hexdigest()
                status = "delivered" if e == EVENTS_PER_SHIPMENT - 1 else "in_transit"
                yield (
                    n * EVENTS_PER_SHIPMENT + e + 1,
                    identity,
                    CARRIERS[n % len(CARRIERS)],
                    tracking_number(n),
                    time(occurred),
                    status,
                    status,
                    f"Evento {e} do objeto",
                    "Curitiba",
                    "PR",
                    webhook_id(n),
                    time(occurred),
                )
    elif table == "deliveries":
        for n in range(shipments):
            queued = start + timedelta(seconds=n * 6)
            state = state_of(n)
            done = state == "delivered"
            yield (
                n + 1,
                order_id(n),
                invoice_number(n),
                ACCOUNTS[n % 2] if n % 3 == 0 else None,
                state,
                time(queued),
                time(queued + timedelta(seconds=2)),
                None,
                1,
                n * EVENTS_PER_SHIPMENT + EVENTS_PER_SHIPMENT,
                '{"isDelivered": false, "events": []}',
                200 if done else 400,
                None if done else "HTTP 400",
                f"receipt-{n}" if done else None,
                time(queued) if done else None,
                time(queued + timedelta(seconds=2)) if done else None,
            )
    elif table == "attempts":
        for n in range(shipments):
            done = state_of(n) == "delivered"
            started = start + timedelta(seconds=n * 6 + 1)
            yield (
                n + 1,
                n + 1,
                1,
                time(started),
                35.5,
                200 if done else 400,
                '{"receipt": "r"}' if done else '{"error": {"message": "Invalid tracking"}}',
                None if done else "HTTP 400",
            )
    elif table == "minute_counts":
        minute = now.replace(second=0) - timedelta(hours=24)
        for m in range(24 * 60):
            at = minute + timedelta(minutes=m)
            for carrier in CARRIERS:
                yield ("carrier", carrier, "accepted", time(at), 40 + m % 17, time(at))
            yield ("carrier", "dhl", "unauthorized", time(at), 3, time(at))
            for account in ACCOUNTS:
                yield ("account", account, "delivered", time(at), 60, time(at))
            yield ("latency", "2", "delivered", time(at), 100, time(at))
            yield ("latency", "5", "delivered", time(at), 15, time(at))


COLUMNS = {
    "webhooks": "id, carrier, received_at, body, state, error, new_events, duplicate_events",
    "shipments": "tracking_number, carrier, tracking_url, order_id, invoice_number, account, "
    "first_seen_at, registered_at, updated_at",
    "events": "id, identity, carrier, tracking_number, occurred_at, status, carrier_status, "
    "description, city, state, webhook_id, received_at",
    "deliveries": "id, order_id, invoice_number, account, state, queued_at, next_attempt_at, "
    "claimed_until, attempt_count, covered_event_id, body, last_status, last_error, receipt, "
    "vtex_date, delivered_at",
    "attempts": "id, delivery_id, attempt, started_at, duration_ms, status_code, response_body, "
    "error",
    "minute_counts": "scope, name, outcome, minute, count, last_at",
}


def fill(
    url: str, shipments: int = SHIPMENTS, age: timedelta = timedelta(0), analyze: bool = True
) -> dict[str, int]:
    """Create the relay's tables at ``url`` and fill them with ``shipments`` shipments (10
    events each), every time ``age`` older than by default (bench/prune.py makes them older
    than the retention); then ANALYZE the database, unless not ``analyze`` on PostgreSQL
    (bench/prune.py analyses what it wants itself). Returns the rows per table."""
    now = NOW - age
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        migrate(conn)
    engine.dispose()
    counts: dict[str, int] = {}
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            for table, columns in COLUMNS.items():
                marks = ", ".join("?" * len(columns.split(",")))
                cursor = conn.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                    rows(table, lambda at: stored_time(at, "sqlite"), shipments, now),
                )
                counts[table] = cursor.rowcount
            conn.execute("ANALYZE")
        return counts
    with psycopg.connect(url) as conn:
        for table, columns in COLUMNS.items():
            written = 0
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows(table, lambda at: at, shipments, now):
                    copy.write_row(row)
                    written += 1
            counts[table] = written
        for table in ("events", "deliveries", "attempts"):
            sequence = f"pg_get_serial_sequence('{table}', 'id')"
            conn.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
        conn.commit()
        if analyze:
            conn.autocommit = True
            conn.execute("ANALYZE")
    return counts

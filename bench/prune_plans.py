"""What the tombstones a prune writes do to the relay's webhook path on PostgreSQL: the time of
``shipments_of`` (app/store/sql/shipments.sql, run for every commit group of webhooks), on a
connection that has run it before the prune, as the relay's connections have, once
``pruned_shipments`` holds 100,000 tombstones.

psycopg prepares a statement on its fifth run; PostgreSQL then keeps a generic plan, made
for the tables as they were, until something invalidates it (an ANALYZE of the table). Two
starting points: the tombstones' table never analysed (as autovacuum leaves an empty table)
or analysed while empty (a manual ``ANALYZE``/``vacuumdb -z``, as after a restore or an
upgrade). Each gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import psycopg
from psycopg import sql

from app.store import SqlStore
from app.store.queries import Statements
from bench.databases import PostgresServer, pg_connect

TOMBSTONES = 100_000
SHIPMENTS = 100_000
SIZES = (1, 50, 200)
CASES = {"never analysed": False, "analysed while empty": True}


def _numbers(count: int) -> str:
    return json.dumps([f"NEW{i:06d}BR" for i in range(count)])


def _timed(conn: psycopg.Connection[Any], text: str, count: int) -> float:
    started = time.perf_counter()
    conn.execute(text, {"numbers": _numbers(count)}).fetchall()
    return (time.perf_counter() - started) * 1000


async def _migrated(url: str) -> None:
    store = SqlStore.open(url)
    try:
        await store.migrate()
    finally:
        await store.close()


def one_case(server: PostgresServer, analysed_empty: bool) -> dict[str, Any]:
    text = Statements("shipments").text("postgresql", "shipments_of")
    db = server.new_schema()
    try:
        asyncio.run(_migrated(db.url))
        with pg_connect(db.url) as admin:
            admin.execute(
                "INSERT INTO shipments (tracking_number, carrier, first_seen_at, updated_at) "
                "SELECT 'S' || g, 'generic', now(), now() FROM generate_series(1, %s) g",
                [SHIPMENTS],
            )
            admin.execute("ANALYZE shipments")
            if analysed_empty:
                admin.execute("ANALYZE pruned_shipments")
        with psycopg.connect(db.url) as conn:  # psycopg's defaults, as the relay's engine
            for _ in range(30):
                _timed(conn, text, 50)
            conn.commit()
            before = {str(n): _timed(conn, text, n) for n in SIZES}
            conn.commit()
            with pg_connect(db.url) as admin:
                admin.execute(
                    "INSERT INTO pruned_shipments (tracking_number, order_id, invoice_number, "
                    "pruned_at) SELECT 'OLD' || g, 'o' || g, 'i' || g, now() "
                    "FROM generate_series(1, %s) g",
                    [TOMBSTONES],
                )
            after = {str(n): _timed(conn, text, n) for n in SIZES}
            name = conn.execute(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                ["%pruned_shipments%"],
            ).fetchone()
            plan = []
            if name is not None:
                explain = sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {}({})").format(
                    sql.Identifier(name[0]), sql.Literal(_numbers(200))
                )
                explained = conn.execute(explain).fetchall()
                plan = [row[0] for row in explained]
            conn.commit()
            with pg_connect(db.url) as admin:
                admin.execute("ANALYZE pruned_shipments")
            analysed = _timed(conn, text, 200)
        with psycopg.connect(db.url) as fresh:
            fresh_ms = _timed(fresh, text, 200)
    finally:
        server.drop_schemas(keep=False)
    return {
        "before": before,
        "after": after,
        "after_analyze": analysed,
        "fresh": fresh_ms,
        "plan": [line for line in plan if "pruned_shipments" in line or "Join" in line],
    }


def check(server: PostgresServer) -> dict[str, dict[str, Any]]:
    return {case: one_case(server, analysed) for case, analysed in CASES.items()}


def render(found: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## PostgreSQL: the webhooks' shipment lookup after a prune",
        "",
        __doc__.split("\n\n")[0].replace("\n", " ") + " (`python -m bench.prune` runs this "
        "check after the measurements; times of one run of the statement on that one "
        f"connection, for commit groups of {', '.join(str(n) for n in SIZES)} tracking "
        "numbers.)",
        "",
        "| tombstones' table before | before the prune | after 100,000 tombstones | "
        "then after `ANALYZE pruned_shipments` | a new connection |",
        "|---|---|---|---|---|",
    ]
    for case, r in found.items():
        before = " / ".join(f"{r['before'][str(n)]:.1f}" for n in SIZES)
        after = " / ".join(f"{r['after'][str(n)]:.1f}" for n in SIZES)
        lines.append(
            f"| {case} | {before} ms | {after} ms | {r['after_analyze']:.1f} ms (200) | "
            f"{r['fresh']:.1f} ms (200) |"
        )
    lines += ["", "The cached plan's joins and its scan of `pruned_shipments` (200 numbers):", ""]
    for case, r in found.items():
        lines += [f"- {case}:", "", *[f"      {line.strip()}" for line in r["plan"]], ""]
    return lines

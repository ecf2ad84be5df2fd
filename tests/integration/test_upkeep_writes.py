"""Upkeep writes (pruning) give way to the relay's own (SPEC §11, bench/PRUNE.md): they run
in transactions of their own, only while no other write waits; on SQLite the pages they
wrote are copied back into the file at once rather than by a later webhook's commit; and an
incremental-vacuum step stops at its time budget."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from app.store import retention
from app.store.engine import Database

pytestmark = pytest.mark.anyio


async def test_an_upkeep_write_waits_for_the_writes_queued_behind_it_and_commits_alone(
    database_url: str,
) -> None:
    db = Database(database_url)
    order: list[str] = []
    release = threading.Event()

    def blocking(_conn: Connection) -> None:
        order.append("first")
        release.wait(10)

    def batch(_conn: Connection, items: list[str]) -> list[str]:
        order.append("+".join(items))
        return items

    def upkeep(_conn: Connection) -> str:
        order.append("upkeep")
        raise RuntimeError("an upkeep step failed")

    try:
        first = asyncio.ensure_future(db.write(blocking))
        await asyncio.sleep(0.05)  # the writer is busy with it: what follows queues
        pruning = asyncio.ensure_future(db.write(upkeep, when_idle=True))
        await asyncio.sleep(0.01)
        webhooks = [asyncio.ensure_future(db.write_in_batch(batch, n)) for n in ("a", "b")]
        await asyncio.sleep(0.01)
        release.set()  # within UPKEEP_PATIENCE of the upkeep write's queueing

        assert await asyncio.gather(*webhooks) == ["a", "b"]  # not failed by the upkeep's error
        with pytest.raises(RuntimeError, match="upkeep step failed"):
            await pruning
        await first
        # Queued after the upkeep write, the webhooks still went first, in one group.
        assert order == ["first", "a+b", "upkeep"]
    finally:
        release.set()
        db.close()


async def test_upkeep_still_gets_turns_from_a_writer_that_is_never_idle(
    database_url: str,
) -> None:
    db = Database(database_url)
    done_at: list[float] = []

    def slow(_conn: Connection) -> None:
        time.sleep(0.015)

    def upkeep(_conn: Connection) -> None:
        done_at.append(time.monotonic())

    try:
        # A write every 10 ms that takes 15 ms: the queue is never empty.
        writes = []
        stream_ends = time.monotonic() + 1.5
        pruning = asyncio.ensure_future(db.write(upkeep, when_idle=True))
        while time.monotonic() < stream_ends:
            writes.append(asyncio.ensure_future(db.write(slow)))
            await asyncio.sleep(0.01)
        await asyncio.gather(pruning, *writes)
        assert done_at
        assert done_at[0] < stream_ends - 0.5  # it did not wait for the stream
    finally:
        db.close()


def rows_in_main_file(database: Path, copy: Path) -> set[str]:
    """The rows of ``t`` that the database file itself holds (its WAL left out)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy)
    try:
        return {row[0] for row in conn.execute("SELECT v FROM t")}
    except sqlite3.OperationalError:  # the table is not in the file yet
        return set()
    finally:
        conn.close()


async def test_on_sqlite_an_upkeep_write_is_copied_into_the_file_at_once(
    tmp_path: Path,
) -> None:
    database = tmp_path / "relay.db"
    db = Database(f"sqlite:///{database}")
    try:
        await db.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (v TEXT)"))
        await db.write(lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES ('plain')"))
        # A plain write stays in the WAL until 1,000 pages have gathered there.
        assert rows_in_main_file(database, tmp_path / "copy.db") == set()

        await db.write(
            lambda conn: conn.exec_driver_sql("INSERT INTO t VALUES ('upkeep')"), when_idle=True
        )
        for _ in range(100):
            held = rows_in_main_file(database, tmp_path / "copy.db")
            if held:
                break
            await asyncio.sleep(0.02)
        assert held == {"plain", "upkeep"}
    finally:
        db.close()


async def test_an_incremental_vacuum_step_stops_at_its_time_budget(tmp_path: Path) -> None:
    database = tmp_path / "relay.db"
    db = Database(f"sqlite:///{database}")
    try:

        def fill(conn: Connection) -> None:
            conn.exec_driver_sql("CREATE TABLE t (v BLOB)")
            for _ in range(50):
                conn.exec_driver_sql("INSERT INTO t VALUES (zeroblob(8000))")

        await db.write(fill)
        await db.write(lambda conn: conn.exec_driver_sql("DELETE FROM t"))
        free = await db.write(lambda conn: retention.free_pages(conn, 0, 10.0))
        assert free > 10

        # With no time to spare a step still frees one page; with time, as many as asked.
        assert await db.write(lambda conn: retention.free_pages(conn, 1000, 0.0)) == free - 1
        assert await db.write(lambda conn: retention.free_pages(conn, 5, 10.0)) == free - 6
        assert await db.write(lambda conn: retention.free_pages(conn, 1000, 10.0)) == 0
    finally:
        db.close()

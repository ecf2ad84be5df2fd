"""Keeping the database for years (SPEC §11): pruning what is older than the retention,
giving SQLite's freed pages back, the database's size, backups, and periodic tasks that run
once per fleet."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Connection

from app.store import retention
from app.store.engine import Database
from app.store.retention import Batch, Cursor, PruneReport
from app.store.schema import insert_into, periodic_runs, read_time

PRUNE_BATCH = 10
"""Invoices (or shipments, webhooks) a prune transaction removes at most: with their events
and attempts a few hundred rows, a few milliseconds of the writer (bench/PRUNE.md: batches
of 200 held SQLite's writer 50-100 ms each, and the webhooks waiting behind them)."""
FREE_PAGES_STEP = 128
"""SQLite pages (4 KiB) one incremental-vacuum transaction gives back at most (2,000 took
86 ms)."""
FREE_PAGES_BUDGET = 0.004
"""Seconds one incremental-vacuum transaction spends at most (128 pages took 7.6 ms at p50,
68 ms at p99)."""
FLEET_LOCK_BASE = 7_441_226_200


def fleet_lock_key(task: str) -> int:
    """The advisory lock of a periodic task: the same in every relay."""
    return FLEET_LOCK_BASE + zlib.crc32(task.encode())


Step = Callable[[Connection, Cursor, int], Batch]


class UpkeepStore:
    """Retention, space, backups and fleet-wide periodic tasks on the relay's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @property
    def is_sqlite(self) -> bool:
        return self._db.is_sqlite

    async def prune(
        self,
        now: datetime,
        keep_for: timedelta,
        *,
        dry_run: bool = False,
        batch: int = PRUNE_BATCH,
        pause: float = 0.0,
    ) -> PruneReport:
        """Remove what is older than ``keep_for`` (see :mod:`app.store.retention`), one
        small transaction at a time with ``pause`` seconds between them; with ``dry_run``
        every transaction is rolled back and the report says what would have gone."""
        cursor = Cursor(cutoff=now - keep_for, now=now, dry_run=dry_run)
        run = self._db.rehearse if dry_run else self._db.write
        report = PruneReport()
        steps: tuple[Step, ...] = (
            retention.prune_invoices,
            retention.prune_unmatched,
            retention.prune_silent_webhooks,
            retention.prune_quarantined,
        )
        for step in steps:
            more = True
            while more:
                done = await run(
                    lambda conn, step=step: step(conn, cursor, batch),  # type: ignore[misc]
                    when_idle=True,
                )
                report.add(done.report)
                more = done.more
                if more and pause:
                    await asyncio.sleep(pause)
        report.add(await run(lambda conn: retention.prune_small_rows(conn, cursor), when_idle=True))
        return report

    async def free_space(self, pause: float = 0.0) -> None:
        """SQLite: give freed pages back to the file system, a step at a time."""
        if not self._db.is_sqlite:
            return

        def step(conn: Connection) -> int:
            return retention.free_pages(conn, FREE_PAGES_STEP, FREE_PAGES_BUDGET)

        while await self._db.write(step, when_idle=True):
            if pause:
                await asyncio.sleep(pause)

    async def database_bytes(self) -> int:
        return await self._db.read(retention.database_bytes)

    async def backup(self, path: Path) -> None:
        """SQLite only: a consistent copy at ``path``, taken while relays serve."""
        await self._db.backup(path)

    @asynccontextmanager
    async def fleet_turn(self, task: str, now: datetime, every: timedelta) -> AsyncIterator[bool]:
        """Whether this relay runs ``task`` now: no other relay is running it (an advisory
        lock on PostgreSQL) and no relay started it within ``every``."""
        async with self._db.fleet_lock(fleet_lock_key(task)) as held:
            yield held and await self._db.write(lambda conn: _claim(conn, task, now, every))

    async def last_started(self, task: str) -> datetime | None:
        """When any relay last started ``task``."""

        def read(conn: Connection) -> datetime | None:
            value = conn.scalar(
                select(periodic_runs.c.started_at).where(periodic_runs.c.task == task)
            )
            return None if value is None else read_time(value)

        return await self._db.read(read)


def _claim(conn: Connection, task: str, now: datetime, every: timedelta) -> bool:
    """Move the task's start to ``now`` if it last started ``every`` ago or more (or never)."""
    statement = (
        insert_into(conn, periodic_runs)
        .values(task=task, started_at=now)
        .on_conflict_do_update(
            index_elements=[periodic_runs.c.task],
            set_={"started_at": now},
            where=periodic_runs.c.started_at <= now - every,
        )
        .returning(periodic_runs.c.task)
    )
    return conn.execute(statement).first() is not None

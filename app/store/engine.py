"""How the store reaches the database: one writer thread that commits in groups, and a
small pool of reader threads. Callers stay async; the SQL itself runs synchronously.

Writes queued while a commit is under way share the next transaction; if one of them
fails, the group is rolled back and each runs again alone, so only that one fails. Every
caller hears back only after its COMMIT returned, which is what a 202 may promise (SPEC §3).
Writes of one kind (a webhook's events, say) can be given as items of a batch function,
which the group applies to all its items at once: a fixed number of statements, whatever
the group's size. An item no caller is held up by (an attempt's record) may linger a few
milliseconds for company: a commit, and on SQLite an fsync, shared instead of one each.
Upkeep (pruning) writes when idle: alone, and while no other write is waiting (or after
:data:`UPKEEP_PATIENCE` of a busy writer), so a webhook waits behind one upkeep transaction
at most.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import random
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

T = TypeVar("T")
Item = TypeVar("Item")

Batch = Callable[[Connection, list[Any]], list[Any]]
"""Applies a group's items of one kind in one go; returns one result per item, in order."""

MAX_GROUP = 256
READER_THREADS = 4
WORK_CHANNEL = "relay_work"
CONFLICT_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
CONFLICT_RETRIES = 5
WAL_SWITCH_TRIES = 200
UPKEEP_PATIENCE = 0.1
"""Seconds upkeep waits for the writer to be idle before it goes ahead anyway: a writer
never idle (PostgreSQL's round trips at a steady rate) gives it about a tenth of its time."""


class StoreUnavailable(Exception):
    """The database cannot be reached (or is locked) right now; nothing was stored."""


def _is_conflict(error: BaseException) -> bool:
    """A deadlock or serialization failure: the transaction may simply run again."""
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
    return sqlstate in CONFLICT_SQLSTATES


def write_refusal(error: BaseException) -> str | None:
    """Why the database refused to write, when it is the disk or the file's fault (full,
    read-only, failing) rather than the connection's: what an operator must fix."""
    orig = getattr(error, "orig", None) or error
    message, sqlstate = str(orig).lower(), getattr(orig, "sqlstate", None)
    if sqlstate == "53100" or "disk is full" in message or "no space left" in message:
        return "the disk is full"
    if sqlstate == "25006" or "readonly" in message or "read-only" in message:
        return "the database is read-only"
    if "disk i/o error" in message:
        return "the disk failed to write"
    return None


def _unavailable(error: BaseException) -> BaseException:
    """Connection trouble becomes :class:`StoreUnavailable`; anything else stays as it is."""
    lost = isinstance(error, DBAPIError) and error.connection_invalidated
    if isinstance(error, OperationalError | InterfaceError) or lost:
        refusal = write_refusal(error)
        cause = type(getattr(error, "orig", None) or error).__name__
        unavailable = StoreUnavailable(
            f"the database cannot write: {refusal}"
            if refusal
            else f"the database is unavailable ({cause})"
        )
        unavailable.__cause__ = error
        return unavailable
    return error


def sync_url(url: str) -> str:
    """The SQLAlchemy URL of a ``RELAY_DATABASE_URL`` (sync drivers)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return str(parsed.set(drivername="postgresql+psycopg"))
    return url


@dataclass
class _Job:
    work: Callable[[Connection], Any] | None
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    batch: Batch | None = None
    item: Any = None
    commit_by: float | None = None
    """``time.monotonic()`` by which it must be committed, if it may wait for company."""
    rehearsal: bool = False
    """Run alone and rolled back: what it would do, with nothing changed."""
    when_idle: bool = False
    """Run alone, once no other write is waiting (upkeep, which no caller is held up by)."""


class Database:
    """Owns the engines and the threads; ``write``/``read`` run a function with a connection."""

    def __init__(self, url: str) -> None:
        parsed = make_url(sync_url(url))
        self.url = parsed
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self._writer = create_engine(parsed, connect_args={"timeout": 30}, pool_size=1)
            self._reader = create_engine(parsed, connect_args={"timeout": 30})
            _configure_sqlite(self._writer, "BEGIN IMMEDIATE")
            _configure_sqlite(self._reader, "BEGIN")
        else:
            # libpq waits forever for a server that never answers (a dropped route, a proxy
            # with nothing behind it): start-up would hang instead of saying why.
            timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
            self._writer = create_engine(
                parsed, pool_pre_ping=True, pool_size=2, connect_args=timeout
            )
            self._reader = create_engine(
                parsed, pool_pre_ping=True, pool_size=READER_THREADS, connect_args=timeout
            )
        self.write_problem: str | None = None
        """Why the last commit failed, when the disk or the file refused it; cleared by the
        next commit that succeeds (``/readyz`` reports it)."""
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="store-read")
        self._thread = threading.Thread(target=self._write_loop, name="store-write", daemon=True)
        self._thread.start()

    async def write(self, work: Callable[[Connection], T], *, when_idle: bool = False) -> T:
        """Run ``work`` in a write transaction; return once it is committed.

        ``when_idle``: in a transaction of its own, once no other write is waiting (for
        upkeep: the writes queued meanwhile go first)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, future, loop, when_idle=when_idle))
        return await future

    async def write_in_batch(
        self,
        batch: Callable[[Connection, list[Item]], list[T]],
        item: Item,
        linger: float = 0.0,
    ) -> T:
        """Have ``batch`` apply ``item`` with the other items of its commit group (``batch``
        must be the same object for each of them); return its result once committed.

        ``linger``: seconds the item may wait for others to share its commit when it would
        otherwise be committed alone (for writes no one is waiting on: a commit, an fsync on
        SQLite, saved per item that joins)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        commit_by = time.monotonic() + linger if linger > 0 else None
        self._jobs.put(_Job(None, future, loop, batch, item, commit_by))
        return await future

    async def rehearse(self, work: Callable[[Connection], T], *, when_idle: bool = False) -> T:
        """Run ``work`` in a write transaction of its own that is then rolled back
        (``when_idle``: as for :meth:`write`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, future, loop, rehearsal=True, when_idle=when_idle))
        return await future

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a reader connection (a snapshot, never blocked by the writer)."""

        def run() -> T:
            try:
                with self._reader.connect() as conn:
                    return work(conn)
            except Exception as error:
                raise _unavailable(error) from None

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    def watch_for_work(self, on_work: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_work`` (from another thread) whenever any relay queued a delivery.

        PostgreSQL: a thread LISTENs on its own connection, reconnecting when it drops;
        workers still poll, so a lost notification only costs a poll interval. SQLite has
        one writer, whose own process wakes its worker directly. Returns a stop function.
        """
        if self.is_sqlite:
            return lambda: None
        stop = threading.Event()
        conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)

        def listen() -> None:
            import psycopg

            while not stop.is_set():
                try:
                    with psycopg.connect(conninfo, autocommit=True) as conn:
                        conn.execute(f"LISTEN {WORK_CHANNEL}")
                        while not stop.is_set():
                            for _ in conn.notifies(timeout=1.0):
                                on_work()
                except psycopg.Error:
                    stop.wait(1.0)

        threading.Thread(target=listen, name="store-listen", daemon=True).start()
        return stop.set

    @contextlib.asynccontextmanager
    async def fleet_lock(self, key: int) -> AsyncIterator[bool]:
        """Whether this relay holds the lock ``key`` among all relays on the database, for
        the body's duration. PostgreSQL: a session advisory lock, tried without waiting, on
        a connection of its own (a relay that dies lets go with its connection). SQLite:
        one process serves the file, so it is always held."""
        if self.is_sqlite:
            yield True
            return
        loop = asyncio.get_running_loop()

        def take() -> tuple[Any, bool]:
            conn = self._reader.connect()
            try:
                held = bool(conn.scalar(select(func.pg_try_advisory_lock(key))))
                conn.commit()
            except Exception as error:
                conn.close()
                raise _unavailable(error) from None
            return conn, held

        def give_back(conn: Any, held: bool) -> None:
            try:
                if held:
                    conn.scalar(select(func.pg_advisory_unlock(key)))
                    conn.commit()
            finally:
                conn.close()

        conn, held = await loop.run_in_executor(self._readers, take)
        try:
            yield held
        finally:
            with contextlib.suppress(Exception):  # a lost connection let go already
                await loop.run_in_executor(self._readers, give_back, conn, held)

    async def backup(self, path: Path) -> None:
        """SQLite: a consistent copy of the database at ``path`` while relays write to it
        (the online backup API in one step: a read snapshot, which blocks no writer)."""
        database = self.url.database
        if not self.is_sqlite or not database:
            raise ValueError("only a SQLite file can be backed up this way")

        def copy() -> None:
            source = sqlite3.connect(database, timeout=30)
            target = sqlite3.connect(path)
            try:
                source.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
                source.close()

        await asyncio.get_running_loop().run_in_executor(self._readers, copy)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)
        self._readers.shutdown(wait=True)
        self._writer.dispose()
        self._reader.dispose()

    def _write_loop(self) -> None:
        upkeep: collections.deque[_Job] = collections.deque()
        checkpoint_due = False
        upkeep_turn_at = 0.0  # when waiting upkeep goes ahead, however busy the writer

        def defer(job: _Job) -> None:
            nonlocal upkeep_turn_at
            if not upkeep and not checkpoint_due:
                upkeep_turn_at = time.monotonic() + UPKEEP_PATIENCE
            upkeep.append(job)

        def upkeep_step() -> None:
            nonlocal checkpoint_due, upkeep_turn_at
            if checkpoint_due:
                checkpoint_due = False
                self._checkpoint()
            else:
                checkpoint_due = self._run_alone(upkeep.popleft())
            upkeep_turn_at = time.monotonic() + UPKEEP_PATIENCE

        while True:
            waiting = bool(upkeep) or checkpoint_due
            if waiting and time.monotonic() >= upkeep_turn_at:
                upkeep_step()  # the writer has been busy for a while: upkeep's turn
                continue
            try:
                job = self._jobs.get_nowait() if waiting else self._jobs.get()
            except queue.Empty:  # nothing else waits: the writer is idle
                upkeep_step()
                continue
            if job is None:
                while upkeep:
                    self._run_alone(upkeep.popleft())
                return
            if job.when_idle:
                defer(job)
                continue
            if job.rehearsal:
                self._rehearse(job)
                continue
            group = [job]
            commit_by = job.commit_by  # None once a job in the group may not wait
            while len(group) < MAX_GROUP:
                wait = None if commit_by is None else commit_by - time.monotonic()
                try:
                    if wait is None or wait <= 0:
                        more = self._jobs.get_nowait()
                    else:
                        more = self._jobs.get(timeout=wait)
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)  # finish this group, then stop
                    break
                if more.when_idle:
                    defer(more)
                    continue
                if more.rehearsal:
                    self._rehearse(more)
                    continue
                group.append(more)
                if commit_by is not None:
                    commit_by = None if more.commit_by is None else min(commit_by, more.commit_by)
            self._commit_group(group)

    def _run_alone(self, job: _Job) -> bool:
        """Run an idle job; whether a checkpoint should follow once idle again."""
        if job.rehearsal:
            self._rehearse(job)
            return False
        self._commit_group([job])
        return self.is_sqlite

    def _checkpoint(self) -> None:
        """SQLite: copy the WAL into the file now, after an upkeep write (many pages), in a
        step of its own: left in the WAL, those pages would make a later commit, perhaps a
        webhook's, copy 1,000 pages at once (25 ms, bench/PRUNE.md)."""
        with contextlib.suppress(Exception), self._writer.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _rehearse(self, job: _Job) -> None:
        assert job.work is not None
        try:
            with self._writer.connect() as conn:
                transaction = conn.begin()
                try:
                    result = job.work(conn)
                finally:
                    transaction.rollback()
        except Exception as error:
            self._settle(job, None, _unavailable(error))
            return
        self._settle(job, result, None)

    def _commit_group(self, group: list[_Job], retries: int = CONFLICT_RETRIES) -> None:
        try:
            with self._writer.connect() as conn, conn.begin():
                results = _run_group(conn, group)
        except Exception as error:
            if len(group) == 1:
                if retries and _is_conflict(error):
                    # Another replica's transaction took the same rows in another order.
                    time.sleep(random.uniform(0.005, 0.05))  # noqa: S311 - spreading retries
                    self._commit_group(group, retries - 1)
                    return
                self.write_problem = write_refusal(error)
                self._settle(group[0], None, _unavailable(error))
                return
            # One write failed (or the commit did): nothing of the group holds. Run each
            # alone, so that only the failing one fails. Writes are plain functions of the
            # connection, safe to run again.
            for job in group:
                self._commit_group([job])
            return
        self.write_problem = None
        for job, result in zip(group, results, strict=True):
            self._settle(job, result, None)

    @staticmethod
    def _settle(job: _Job, result: Any, failure: BaseException | None) -> None:
        job.loop.call_soon_threadsafe(_settle, job.future, result, failure)


def _run_group(conn: Connection, group: list[_Job]) -> list[Any]:
    """Each job's result, in order; a batch runs once, where its first item stands."""
    results: dict[int, Any] = {}
    for index, job in enumerate(group):
        if job.batch is None:
            assert job.work is not None
            results[index] = job.work(conn)
        elif index not in results:
            members = [i for i, other in enumerate(group) if other.batch is job.batch]
            answers = job.batch(conn, [group[i].item for i in members])
            results.update(zip(members, answers, strict=True))
    return [results[index] for index in range(len(group))]


def _settle(future: asyncio.Future[Any], result: Any, failure: BaseException | None) -> None:
    if future.cancelled():
        return
    if failure is not None:
        future.set_exception(failure)
    else:
        future.set_result(result)


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself and SQLite
    answers "locked" at once rather than waiting, so connections opened together (a fresh
    file, several processes starting) try again for a while."""
    for _ in range(WAL_SWITCH_TRIES):
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            time.sleep(0.05)
    cursor.execute("PRAGMA journal_mode=WAL")  # the last try raises what SQLite says


def _configure_sqlite(engine: Engine, begin: str) -> None:
    """WAL, full sync, a busy timeout, and transactions the store starts itself."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            # A new file gives pages freed by pruning back (SPEC §11); an older file keeps
            # its mode (changing it takes a VACUUM) and reuses them instead.
            "PRAGMA auto_vacuum=INCREMENTAL",
            "PRAGMA busy_timeout=30000",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        _use_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

"""What both ways of pruning in bench/prune.py share: the old data, the relay's settings,
the sizes, and what one measurement found (:class:`Outcome`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from app.store import SqlStore
from bench import console_data
from bench.config import SECRET
from bench.databases import PostgresServer, RelayDatabase, new_sqlite, pg_connect
from bench.processes import clean_env, say
from bench.prune_cpu import CpuUse
from bench.prune_load import Sent

SHIPMENTS = 111_110  # 100,000 of them delivered (state_of: 90 in each 100)
RETENTION = timedelta(days=90)
WARM_UP_S = 3.0
DISTURBED = 0.15  # cores other processes may use during a phase before it is measured again


@dataclass
class Outcome:
    kind: str
    mode: str  # "process": bench/prune_runner.py; "worker": the relay's own worker
    rows: dict[str, int]
    filled_s: float
    rate: float
    baseline: list[Sent]
    pruning: list[Sent]  # every webhook of the prune phase
    phase_start: float  # time.monotonic() the prune phase's load started
    prune: dict[str, Any]  # bench/prune_runner.py's result
    size_before: dict[str, int] = field(default_factory=dict)
    size_after: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, CpuUse] = field(default_factory=dict)  # per phase
    quiet: list[float] = field(default_factory=list)  # others' cores before each phase
    attempt: int = 1
    variant: str = ""  # how this run differs from the default one
    measured_at: str = ""  # when the prune phase ended (UTC) and the load average then

    def disturbed(self) -> str | None:
        """Why this measurement may not be the relay's alone (other processes were busy)."""
        busy = {phase: use.others for phase, use in self.cpu.items() if use.others > DISTURBED}
        if not busy:
            return None
        return "other processes used " + ", ".join(
            f"{cores:.2f} cores during the {phase}" for phase, cores in busy.items()
        )

    def window(self) -> list[Sent]:
        """The webhooks due while the prune (and its free_space) ran."""
        start = self.prune["started"]
        end = start + self.prune["prune_s"] + self.prune["free_space_s"]
        return [s for s in self.pruning if start <= s.due <= end]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["baseline"] = [asdict(s) for s in self.baseline]
        data["pruning"] = [asdict(s) for s in self.pruning]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """An outcome ``as_json`` wrote (``--raw``), to render the report again."""
        data = dict(data)
        data["baseline"] = [Sent(**s) for s in data["baseline"]]
        data["pruning"] = [Sent(**s) for s in data["pruning"]]
        data["cpu"] = {phase: CpuUse(**use) for phase, use in data["cpu"].items()}
        return cls(**data)


async def created(url: str) -> None:
    """The relay's tables, made by the relay (SQLite: a new file, incremental vacuum)."""
    store = SqlStore.open(url)
    try:
        await store.migrate()
    finally:
        await store.close()


def settle(db: RelayDatabase, written: dict[str, int], analyse_empty: bool) -> None:
    """After the bulk fill: SQLite's WAL checkpointed and truncated (console_data analysed
    it). On PostgreSQL the tables the fill wrote vacuumed and analysed, as autovacuum
    leaves tables that have been around a while (and so that nothing vacuums the freshly
    copied rows during the baseline); the empty ones (the tombstones' among them) left never
    analysed, as autovacuum leaves them, unless ``analyse_empty`` (as a manual ``ANALYZE``
    leaves them: PostgreSQL then trusts they are empty, see bench/prune_plans.py)."""
    if db.path is not None:
        with sqlite3.connect(db.path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with pg_connect(db.url) as conn:
        for table, count in written.items():
            if count:
                conn.execute(f'VACUUM (ANALYZE) "{db.schema}"."{table}"')
        if analyse_empty:
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", [db.schema]
            ).fetchall()
            for (table,) in tables:
                conn.execute(f'ANALYZE "{db.schema}"."{table}"')


def sizes(db: RelayDatabase) -> dict[str, int]:
    """SQLite: the file and its WAL; PostgreSQL: the schema's tables, indexes and TOAST."""
    if db.path is not None:
        wal = db.path.with_name(db.path.name + "-wal")
        return {
            "file": db.path.stat().st_size,
            "wal": wal.stat().st_size if wal.exists() else 0,
        }
    with pg_connect(db.url) as conn:
        total = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            [db.schema],
        ).fetchone()
    return {"schema": int(total[0]) if total else 0}


def log_problems(log: str) -> list[str]:
    """The relay's log lines at error level or above (it logs one JSON object a line)."""
    problems = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("error", "critical"):
            problems.append(f"{record.get('logger')}: {record.get('event')}")
    return problems[:5]


def filled(
    kind: str, workdir: Path, server: PostgresServer | None, args: argparse.Namespace
) -> tuple[RelayDatabase, dict[str, int], float]:
    """A fresh database with the old rows; the rows written and the seconds it took."""
    workdir.mkdir(parents=True)
    db = new_sqlite(workdir) if kind == "sqlite" else server.new_schema()  # type: ignore[union-attr]
    say(f"{kind}: creating and filling {db.url.split('?')[0]} ({args.shipments:,} shipments)")
    started = time.monotonic()
    asyncio.run(created(db.url))
    rows = console_data.fill(
        db.url, shipments=args.shipments, age=timedelta(days=args.age), analyze=False
    )
    settle(db, rows, args.analysed_empty)
    seconds = time.monotonic() - started
    say(f"{kind}: filled in {seconds:.0f} s: {rows}")
    return db, rows, seconds


def relay_env(db: RelayDatabase, **settings: str) -> dict[str, str]:
    """``relay serve``'s settings: the relay's defaults (INFO logs, 1 s poll) but these."""
    return {
        **clean_env(),
        "RELAY_DATABASE_URL": db.url,
        "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
        "RELAY_RETENTION": f"{RETENTION.days}d",
        "RELAY_WORKER_POLL_INTERVAL": "1s",
        "RELAY_SHUTDOWN_GRACE": "0s",
        **settings,
    }


async def database_bytes(url: str) -> int:
    """What the relay's ``relay_database_bytes`` metric says."""
    store = SqlStore.open(url)
    try:
        return await store.upkeep().database_bytes()
    finally:
        await store.close()

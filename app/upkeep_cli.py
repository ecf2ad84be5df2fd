"""``relay prune [--dry-run]`` and ``relay backup PATH`` (SPEC §11)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.settings import Settings, duration_text
from app.store import PruneReport, SqlStore
from app.wiring import opened_store

EXIT_USAGE = 2
REPORT_LINES = (
    ("invoices", "invoices delivered and older than the retention"),
    ("shipments", "shipments"),
    ("aliases", "aliases"),
    ("events", "events"),
    ("deliveries", "deliveries"),
    ("attempts", "delivery attempts"),
    ("webhooks", "webhooks no kept event came from"),
    ("quarantined", "quarantined webhooks"),
    ("minute_counts", "per-minute counts"),
    ("tombstones", "tombstones of invoices pruned a retention ago"),
    ("sessions", "expired console sessions"),
)


def add_commands(commands: Any, run_prune: Any, run_backup: Any) -> None:
    """``prune`` and ``backup`` on the ``relay`` parser's subcommands."""
    prune = commands.add_parser(
        "prune", help="remove what is older than RELAY_RETENTION (see the README)"
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; change nothing"
    )
    prune.set_defaults(run=run_prune)
    backup = commands.add_parser(
        "backup", help="write a consistent copy of the SQLite database while the relay serves"
    )
    backup.add_argument("path", type=Path, help="the new file to write (must not exist)")
    backup.set_defaults(run=run_backup)


def report_text(report: PruneReport, cutoff: datetime, settings: Settings, dry_run: bool) -> str:
    counts = report.as_dict()
    verb = "would remove" if dry_run else "removed"
    lines = [
        f"relay prune: {verb} what was last received before "
        f"{cutoff.isoformat(timespec='seconds').replace('+00:00', 'Z')} "
        f"(RELAY_RETENTION={duration_text(settings.retention)}):"
    ]
    width = max(len(str(counts[name])) for name, _ in REPORT_LINES)
    lines += [f"  {counts[name]:>{width}} {label}" for name, label in REPORT_LINES]
    if dry_run:
        lines.append("relay prune: dry run, nothing was changed")
    return "\n".join(lines)


async def prune(settings: Settings, dry_run: bool) -> int:
    now = datetime.now(UTC)
    async with opened_store(settings, existing=True) as store:
        assert isinstance(store, SqlStore)
        upkeep = store.upkeep()
        report = await upkeep.prune(now, settings.retention, dry_run=dry_run)
        if not dry_run:
            await upkeep.free_space()
    print(report_text(report, now - settings.retention, settings, dry_run))
    return 0


def backup(settings: Settings, path: Path, run: Callable[[Coroutine[Any, Any, int]], int]) -> int:
    """Copy the SQLite database to ``path`` (``run``: how the CLI runs a coroutine)."""
    problem = backup_problem(settings, path)
    if problem is not None:
        print(f"relay backup: {problem}", file=sys.stderr)
        return EXIT_USAGE
    started = datetime.now(UTC)
    written = run(_copy(settings, path))
    if written:
        path.unlink(missing_ok=True)  # a partial copy (the path did not exist before)
        return written
    check = checked(path)
    if check != "ok":
        print(f"relay backup: the copy at {path} fails SQLite's check: {check}", file=sys.stderr)
        return 1
    print(
        f"relay backup: wrote {path} ({path.stat().st_size:,} bytes) holding everything "
        f"committed by {started.isoformat(timespec='seconds').replace('+00:00', 'Z')}; "
        "SQLite's quick check: ok"
    )
    return 0


def backup_problem(settings: Settings, path: Path) -> str | None:
    if not settings.database_url.startswith("sqlite"):
        return (
            "RELAY_DATABASE_URL is PostgreSQL: back it up with its own tools "
            "(pg_dump; see the README's Backup section)"
        )
    if path.exists():
        return f"{path} exists; give a new file's path"
    if not path.parent.is_dir():
        return f"{path.parent} is not a directory"
    return None


async def _copy(settings: Settings, path: Path) -> int:
    async with opened_store(settings, existing=True) as store:
        assert isinstance(store, SqlStore)
        try:
            await store.upkeep().backup(path)
        except (OSError, sqlite3.Error) as error:
            print(f"relay backup: cannot write {path}: {error}", file=sys.stderr)
            return 1
    return 0


def checked(path: Path) -> str:
    """SQLite's quick check of the copy: ``ok`` or what is wrong."""
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    finally:
        conn.close()

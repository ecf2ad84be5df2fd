"""The relay's benchmark, in one run: ingest, drain, burst, memory and start-up, on SQLite
and on PostgreSQL (``--database sqlite|postgresql|both``, default both).

Run it with ``bench/run`` (which checks for wrk and the venv first, then runs
``python -m bench.run``). Everything talks to 127.0.0.1 only, every server is a process this
script starts and stops by its pid. Every relay gets a database of its own: a SQLite file in
a temporary directory that is removed at the end, or a schema ``relay_bench_<random>`` on the
PostgreSQL server (``--postgresql-url``), created before the relay starts and dropped with
CASCADE once its phase is over (``--keep`` keeps both). The PostgreSQL server itself is never
started, stopped or reconfigured. The results overwrite ``bench/RESULTS.md``;
bench/README.md explains each number.

Phases (one at a time, never two loads at once on this 2-core machine), in bench/phases.py:

1. Ingest: ``relay serve`` (RELAY_WORKER=false, fresh database) and a bare Starlette
   endpoint, each loaded by wrk with pre-signed webhooks at 16 and 64 connections, the
   servers alternating so that all see the same machine (bare, relay on SQLite, relay on
   PostgreSQL); then the relay again at 64 with its worker on (a variant), on each database.
   Peak RSS (VmHWM) of each relay process is read at the end of its load; /readyz is timed
   from every relay start.
2. Drain, on each database: 1,000 shipments registered, 10,000 events posted with the worker
   off, then ``relay worker`` delivers them to a local VTEX stand-in
   (RELAY_VTEX_RATE_LIMIT=100000 so the limiter is not what is measured); then a plain httpx
   loop PUTs the same bodies to the same stand-in at the same concurrency (8).
3. Burst: ``relay serve`` with its worker on, 10 webhooks for each of 100 invoices posted at
   once in random order; PUTs per invoice once everything is delivered. Run with the limiter
   out of the way (100000/s) on each database, then, on SQLite only, as variants with the
   default (50/s) and with the same 1,000 webhooks paced over 5 s.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.config import BENCH, BIN, BURSTS, DEFAULT_POSTGRESQL_URL, ROOT
from bench.phases import Bench
from bench.processes import (
    Running,
    busy_cpu_seconds,
    command_output,
    loadavg,
    own_cpu_seconds,
    say,
    start_standin,
)
from bench.report import render


def prepare_source(tmp: Path, args: argparse.Namespace) -> tuple[str, str]:
    """(PYTHONPATH for the relay, description). By default app/ of ``--rev`` is exported with
    ``git archive`` (read-only) so that edits in progress elsewhere are not what is measured;
    PYTHONPATH comes before the venv's editable install, which sits at the end of sys.meta_path.
    """
    head = command_output(["git", "rev-parse", "--short", "HEAD"]) or "?"
    if args.worktree:
        dirty = command_output(["git", "--no-optional-locks", "status", "--porcelain", "--", "app"])
        state = "with uncommitted changes in app/" if dirty else "app/ as committed"
        return "", f"working tree at commit `{head}` ({state})"
    commit = command_output(["git", "rev-parse", "--short", args.rev])
    if not commit:
        raise SystemExit(f"bench: unknown revision {args.rev!r}")
    source = tmp / "src"
    source.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "app"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    where = command_output(
        [
            "env",
            f"PYTHONPATH={source}",
            str(BIN / "python"),
            "-c",
            "import app.cli; print(app.cli.__file__)",
        ],
        cwd=tmp,  # as the relay runs: not from the repository's folder
    )
    if not where.startswith(str(source)):
        raise SystemExit(f"bench: the snapshot of {commit} is not what imports: {where!r}")
    label = f"commit `{commit}`" + (f" (HEAD is `{head}`)" if commit != head else "")
    return str(source), label + ", app/ exported with git archive (edits on disk not included)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="benchmark the relay (see bench/README.md)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk warm-up per run")
    parser.add_argument(
        "--ingest-requests",
        type=int,
        default=25_000,
        help="distinct signed webhooks per ingest run (replayed from the start if exhausted)",
    )
    parser.add_argument("--drain-invoices", type=int, default=1000)
    parser.add_argument("--baseline-rounds", type=int, default=2)
    parser.add_argument(
        "--rev",
        default="HEAD",
        help="measure app/ as committed in this revision (exported with git archive; default HEAD)",
    )
    parser.add_argument(
        "--worktree", action="store_true", help="measure app/ as it is on disk, edits included"
    )
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="measure the relay on this database, or on both, one after the other (default)",
    )
    parser.add_argument(
        "--postgresql-url",
        default=DEFAULT_POSTGRESQL_URL,
        help="the PostgreSQL server and database to create the benchmark's schemas in "
        f"(default {DEFAULT_POSTGRESQL_URL})",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory and the PostgreSQL schemas (the report names them)",
    )
    parser.add_argument(
        "--only",
        choices=("ingest", "drain", "burst"),
        action="append",
        help="run only this phase (repeatable; for debugging: the report lacks the others)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    started = datetime.now(UTC)
    clock = time.monotonic()
    load_before = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    bench = Bench(tmp, args)
    say(f"working in {tmp}; load average {load_before}")

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if bench.postgres:
            bench.postgres.probe()
            say(bench.postgres.description)
        busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()
        postgres_before = bench.postgres_cpu()
        bench.source, bench.code = prepare_source(tmp, args)
        if bench.source:
            # The driver reads results through the relay's store front (bench/readings.py):
            # with the same code as the relay processes, not the working tree's.
            sys.path.insert(0, bench.source)
        say(f"measuring {bench.code}")
        bench.settings = bench.relay_settings()
        say(f"relay defaults here: {bench.settings}")
        _, bench.standin_url = start_standin(tmp / "vtex-standin")
        # Each phase on each database in turn (ingest alternates them itself); the burst
        # variants on SQLite only. A failed phase is reported, the others still run.
        phases: list[tuple[str, str, Callable[[], None]]] = [("ingest", "", bench.ingest)]
        phases += [("drain", kind, functools.partial(bench.drain, kind)) for kind in bench.kinds]
        phases += [
            (name, kind, functools.partial(bench.burst, kind, name, rate, spread))
            for name, rate, spread, everywhere in BURSTS
            for kind in bench.kinds
            if everywhere or kind == "sqlite"
        ]
        for name, kind, phase in phases:
            if args.only and name.split("-")[0] not in args.only:
                continue
            with bench.failure(f"{name} {kind}".strip()):
                phase()
            bench.drop_schemas()  # the phase's relays are stopped: its schemas can go
        postgres_cpu = bench.postgres_cpu() - postgres_before
        others = (
            (busy_cpu_seconds() - busy_before) - (own_cpu_seconds() - own_before) - postgres_cpu
        )
        text = render(
            bench,
            started,
            time.monotonic() - clock,
            load_before,
            max(others, 0.0),
            postgres_cpu,
        )
        args.out.write_text(text)
        say(f"wrote {args.out}")
        print(text)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        for proc in list(Running.all):
            proc.stop(timeout=10)
        bench.drop_schemas()
        if bench.postgres and bench.postgres.kept:
            say(f"kept the PostgreSQL schemas {', '.join(bench.postgres.kept)}")
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m bench.prune``: pruning 1,000,000 old events while webhooks arrive at a steady
moderate rate keeps the webhooks' p99 within twice its value without pruning (SPEC §11).
Writes bench/PRUNE.md, on SQLite and on PostgreSQL (``--database``).

Per database: a fresh database gets the relay's tables (``SqlStore.migrate``, so a SQLite file
has the incremental vacuum a relay's new file has), then bench/console_data.py's rows for
111,110 shipments, all of them received ``--age`` days ago: 100,000 invoices are delivered
(1,000,000 events, which the prune removes) and 11,110 have open or dead deliveries (kept).
``relay serve`` runs on it. Then:

1. warm-up: ``--rate`` webhooks a second for 3 s, not counted;
2. baseline: the same rate for ``--seconds``, nothing pruning;
3. prune: the same rate again while the old data is pruned the way the relay's worker prunes
   it (``prune(now, retention, pause=0.02)`` then ``free_space(pause=0.02)``); the webhooks
   keep coming until it is done, for ``--seconds`` at least.

Where the prune runs (``--prune-in``): ``process``, bench/prune_runner.py, a process of its own
(the relay's worker off), which also times each transaction and statement; ``worker``, the
relay's own worker, inside the relay (bench/prune_worker.py). The target compares the p99 of
the webhooks due while the prune ran with the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import prune_plans, prune_worker
from bench.databases import PostgresServer, RelayDatabase
from bench.processes import clean_env, loadavg, say
from bench.prune_cpu import CpuMeter
from bench.prune_load import Latency, Sent, steady
from bench.prune_report import render
from bench.prune_setup import (
    RETENTION,
    SHIPMENTS,
    WARM_UP_S,
    Outcome,
    database_bytes,
    filled,
    log_problems,
    relay_env,
    sizes,
)
from tests.support.relay_process import RelayProcess


async def prune_phase(
    db: RelayDatabase, relay_url: str, rate: float, seconds: float, workdir: Path
) -> tuple[list[Sent], float, dict[str, Any]]:
    """Start the prune process and the webhooks together; the webhooks stop once it is done
    (and ``seconds`` have passed)."""
    out = workdir / "prune-result.json"
    log = (workdir / "prune-runner.log").open("wb")
    argv = [sys.executable, "-m", "bench.prune_runner", db.url]
    argv += [str(RETENTION.total_seconds()), "0.02", str(out)]
    started = time.monotonic()
    runner = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, env=clean_env())
    waiting = asyncio.create_task(runner.wait())
    sent = await steady(relay_url, rate, "PR", seconds, finished=waiting.done)
    code = await waiting
    log.close()
    if code != 0:
        raise SystemExit(f"bench: the prune process failed ({code}), see {log.name}")
    return sent, started, json.loads(out.read_text())


def run_one(
    kind: str, mode: str, workdir: Path, server: PostgresServer | None, args: argparse.Namespace
) -> Outcome:
    rate, seconds = args.rate, args.seconds
    db, rows, filled_s = filled(kind, workdir, server, args)
    meter = CpuMeter(server.postmaster if server is not None else None)
    quiet = []
    if mode == "worker":
        # The worker's prune is due right after the baseline: no waiting in between.
        quiet.append(meter.wait_for_quiet(args.quiet_wait))
        stored = prune_worker.prepare(db.url, due_in=WARM_UP_S + seconds + 8)
        env = relay_env(db, **prune_worker.WORKER_SETTINGS)
    else:
        env = relay_env(db, RELAY_WORKER="false")
    with RelayProcess(workdir, env) as relay:
        pid = relay.process.pid if relay.process is not None else 0
        asyncio.run(steady(relay.url, rate, "WU", WARM_UP_S))
        if mode == "process":
            quiet.append(meter.wait_for_quiet(args.quiet_wait, pid))
        say(f"{kind}/{mode}: baseline, {rate:.0f} webhooks/s for {seconds:.0f} s, no prune")
        first = meter.sample(pid)
        baseline = asyncio.run(steady(relay.url, rate, "BA", seconds))
        cpu = {"baseline": meter.between(first, meter.sample(pid))}
        say(f"{kind}/{mode}: baseline: {Latency.of(baseline).text()}; {cpu['baseline'].text()}")
        before = sizes(db)
        if mode == "process":
            quiet.append(meter.wait_for_quiet(args.quiet_wait, pid))
            say(f"{kind}/{mode}: pruning while {rate:.0f} webhooks/s arrive")
            first = meter.sample(pid)
            pruning, phase_start, prune = asyncio.run(
                prune_phase(db, relay.url, rate, seconds, workdir)
            )
        else:
            bytes_before = asyncio.run(database_bytes(db.url))
            say(f"{kind}/{mode}: webhooks until the worker has pruned")
            first = meter.sample(pid)
            pruning, phase_start, prune = asyncio.run(
                prune_worker.phase(db, relay.url, relay.log_path, stored, rate, seconds)
            )
        cpu["pruning"] = meter.between(first, meter.sample(pid))
        after = sizes(db)
        if mode == "worker":
            prune["bytes_before"] = bytes_before
            prune["bytes_after"] = asyncio.run(database_bytes(db.url))
        problems = log_problems(relay.log())
    outcome = Outcome(
        kind, mode, rows, filled_s, rate, baseline, pruning, phase_start, prune, before, after
    )
    outcome.notes, outcome.cpu, outcome.quiet = problems, cpu, quiet
    if args.analysed_empty and kind == "postgresql":
        outcome.variant = "empty tables analysed before"
    outcome.measured_at = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {loadavg()}"
    say(
        f"{kind}/{mode}: prune {prune['prune_s']:.1f} s + free space "
        f"{prune['free_space_s']:.1f} s, removed {prune['report']}; while pruning: "
        f"{Latency.of(outcome.window()).text()}; {cpu['pruning'].text()}"
    )
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--prune-in",
        choices=["process", "worker", "both"],
        default="both",
        help="a process of its own, or the relay's own worker",
    )
    parser.add_argument("--rate", type=float, default=150.0, help="webhooks a second")
    parser.add_argument("--seconds", type=float, default=30.0, help="baseline's length")
    parser.add_argument("--age", type=int, default=100, help="the old rows' age in days")
    parser.add_argument(
        "--shipments", type=int, default=SHIPMENTS, help="old shipments (for a quick try)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=900.0,
        help="seconds to wait at most for other processes to leave the machine alone",
    )
    parser.add_argument(
        "--attempts", type=int, default=3, help="measurements at most, while others disturb"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("PRUNE.md"))
    parser.add_argument("--raw", type=Path, help="also write every measurement here (JSON)")
    parser.add_argument(
        "--analysed-empty",
        action="store_true",
        help="PostgreSQL: ANALYZE the empty tables too before measuring (a variant)",
    )
    parser.add_argument(
        "--render-from",
        type=Path,
        nargs="+",
        help="measure nothing: write the report from --raw files (give the first run's options)",
    )
    args = parser.parse_args()
    if args.render_from is not None:
        outcomes, plans = [], {}
        for path in args.render_from:
            saved = json.loads(path.read_text())
            outcomes += [Outcome.from_json(o) for o in saved["outcomes"]]
            plans = plans or saved["plans"]
        server = PostgresServer(args.postgresql_url)
        server.probe()
        args.out.write_text(render(outcomes, args, server, plans))
        say(f"wrote {args.out} from {args.render_from}")
        return
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    modes = ["process", "worker"] if args.prune_in == "both" else [args.prune_in]
    server = PostgresServer(args.postgresql_url) if "postgresql" in kinds else None
    if server is not None:
        server.probe()
    outcomes = []
    try:
        with tempfile.TemporaryDirectory(prefix="relay-prune-bench-") as tmp:
            for kind in kinds:
                for mode in modes:
                    workdir = Path(tmp) / f"{kind}-{mode}"
                    for attempt in range(1, args.attempts + 1):
                        outcome = run_one(kind, mode, workdir / str(attempt), server, args)
                        outcome.attempt = attempt
                        if server is not None:
                            server.drop_schemas(keep=False)
                        shutil.rmtree(workdir / str(attempt), ignore_errors=True)
                        if outcome.disturbed() is None or attempt == args.attempts:
                            break
                        say(f"{kind}/{mode}: {outcome.disturbed()}: measuring again")
                    outcomes.append(outcome)
                    if args.raw is not None:  # as it goes: a run cut short keeps what it has
                        raw = {"outcomes": [o.as_json() for o in outcomes], "plans": {}}
                        args.raw.write_text(json.dumps(raw))
    finally:
        if server is not None:
            server.drop_schemas(keep=False)
    plans = {}
    if server is not None:
        say("postgresql: the webhooks' shipment lookup after 100,000 tombstones")
        plans = prune_plans.check(server)
    args.out.write_text(render(outcomes, args, server, plans))
    say(f"wrote {args.out}")
    if args.raw is not None:
        raw = {"outcomes": [o.as_json() for o in outcomes], "plans": plans}
        args.raw.write_text(json.dumps(raw))


if __name__ == "__main__":
    main()

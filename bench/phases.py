"""The run's state and its three phases: ingest (wrk against the relay and the bare endpoint),
drain (``relay worker`` against the stand-in, then the httpx baseline) and burst.

Every relay gets a database of its own (bench/databases.py) and is started and stopped here;
what it did is read back through its ``/metrics``, its store front (bench/readings.py) and
the VTEX stand-in's counts (bench/standin.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import subprocess
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.clients import (
    check_signed_post,
    describe_wrk,
    post_webhooks,
    register_shipments,
    run_wrk,
)
from bench.config import (
    ADMIN_TOKEN,
    APP_KEY,
    APP_TOKEN,
    BIN,
    DATABASES,
    MAX_CONCURRENCY,
    SECRET,
)
from bench.databases import PostgresServer, RelayDatabase, new_sqlite
from bench.drain import run_drain
from bench.payloads import (
    burst_shipment,
    burst_webhook,
    write_ingest_requests,
)
from bench.processes import (
    Relay,
    clean_env,
    postgres_cpu_seconds,
    process_cpu_seconds,
    say,
    start_uvicorn,
)
from bench.readings import settled_counts, wait_all_delivered


class Bench:
    """One run: its options, its temporary directory, and the results as they come."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp = tmp
        self.args = args
        self.kinds: tuple[str, ...] = DATABASES if args.database == "both" else (args.database,)
        self.standin_url = ""
        self.ready: dict[str, dict[str, float]] = {kind: {} for kind in DATABASES}
        self.results: dict[str, dict[str, Any]] = {kind: {} for kind in DATABASES}
        self.bare: dict[int, dict[str, Any]] = {}  # the ingest baseline, shared by both
        self.payload_bytes = 0.0
        self.errors: dict[str, str] = {}
        self.source = ""  # PYTHONPATH of the relay processes: a snapshot of --rev, or "" (tree)
        self.code = ""  # what was measured, for the report
        self.settings = ""  # the relay's delivery settings, as its Settings reads them
        self.postgres = PostgresServer(args.postgresql_url) if "postgresql" in self.kinds else None

    @property
    def postmaster(self) -> int | None:
        return self.postgres.postmaster if self.postgres else None

    def postgres_cpu(self) -> float:
        return postgres_cpu_seconds(self.postmaster)

    def drop_schemas(self) -> None:
        if self.postgres:
            self.postgres.drop_schemas(keep=self.args.keep)

    @contextlib.contextmanager
    def failure(self, key: str) -> Iterator[None]:
        """A failed run is reported under ``key``; the others still run."""
        try:
            yield
        except Exception as error:
            say(f"{key} failed: {error}")
            self.errors[key] = self.errors.get(key, "") + "".join(traceback.format_exception(error))

    # -- servers -----------------------------------------------------------------------------

    def relay_env(self, db: RelayDatabase, **settings: str) -> dict[str, str]:
        return (
            clean_env()
            | {
                "RELAY_DATABASE_URL": db.url,
                "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
                "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
                "RELAY_VTEX_BASE_URL": self.standin_url,
                "RELAY_VTEX_APP_KEY": APP_KEY,
                "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
                "RELAY_VTEX_TIMEZONE": "America/Sao_Paulo",
                "RELAY_VTEX_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
                # The relay's default, said here because RelayProcess gives the tests 0.2 s.
                "RELAY_WORKER_POLL_INTERVAL": "1s",
                "RELAY_LOG_FORMAT": "json",
                "RELAY_LOG_LEVEL": "INFO",
                # Stopping is not measured: no 503 grace period before each relay stops.
                "RELAY_SHUTDOWN_GRACE": "0s",
                **settings,
            }
            | ({"PYTHONPATH": self.source} if self.source else {})
        )

    def relay_settings(self) -> str:
        """The delivery settings the relay processes run with (the relay's own Settings)."""
        db = new_sqlite(self.tmp / "settings")
        env = self.relay_env(db, RELAY_WORKER="false")
        code = (
            "import json; from app.settings import Settings; s = Settings(); "
            "print(json.dumps({k: str(v) for k, v in s.model_dump().items() "
            "if k.startswith(('vtex_', 'worker')) and 'app_' not in k and k != 'vtex_accounts'"
            " and v is not None}))"
        )
        done = subprocess.run(
            [str(BIN / "python"), "-c", code],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            values: dict[str, str] = json.loads(done.stdout)
        except ValueError:
            return f"(could not read the relay's settings: {done.stderr.strip()[-300:]})"
        values.pop("vtex_base_url", None)
        return ", ".join(f"{k}={v}" for k, v in sorted(values.items()))

    def new_database(self, kind: str, workdir: Path) -> RelayDatabase:
        if kind == "sqlite":
            return new_sqlite(workdir)
        assert self.postgres is not None
        return self.postgres.new_schema()

    def start_relay(self, kind: str, name: str, **settings: str) -> tuple[Relay, RelayDatabase]:
        """``relay serve`` on a fresh database, in its own directory (so no stray .env is read)."""
        workdir = self.tmp / f"{kind}-{name}"
        workdir.mkdir(parents=True, exist_ok=True)
        db = self.new_database(kind, workdir)
        relay = Relay(f"{kind}-{name}", workdir, self.relay_env(db, **settings))
        self.ready[kind][name] = relay.ready_s
        say(f"{kind}-{name}: relay serve pid {relay.pid} ready in {relay.ready_s:.2f}s")
        return relay, db

    def standin(self, path: str, method: str = "GET") -> Any:
        response = httpx.request(method, self.standin_url + path, timeout=30)
        response.raise_for_status()
        return response.json()

    # -- phase 1: ingest ---------------------------------------------------------------------

    def ingest(self) -> None:
        duration, warmup = self.args.duration, self.args.warmup
        requests_per_run = self.args.ingest_requests
        for connections in (16, 64):
            # Fresh timestamps for each round of runs: the relay allows 5 minutes.
            stamp = int(time.time())
            warm_file = self.tmp / f"warmup-{connections}.tsv"
            run_file = self.tmp / f"requests-{connections}.tsv"
            # Enough for the relay's warm-up never to run out (a replayed request would store
            # duplicates): 2,500 a second of warm-up, twice what it takes today.
            warm_count = 2_500 * max(warmup, 1)
            warm_sizes = write_ingest_requests(warm_file, f"W{connections}X", warm_count, stamp)
            sizes = write_ingest_requests(run_file, f"M{connections}X", requests_per_run, stamp)
            self.payload_bytes = statistics.mean(sizes)
            say(
                f"ingest c={connections}: {requests_per_run} signed webhooks "
                f"(mean body {statistics.mean(sizes):.0f} B, {len(warm_sizes)} more to warm up)"
            )

            bare, bare_url = start_uvicorn(
                f"bare-{connections}",
                "bench.bare_app:app",
                "/healthz",
                self.tmp / f"bare-{connections}",
            )
            try:
                target = bare_url + "/webhooks/generic"
                run_wrk(target, connections, warmup, warm_file)
                before = process_cpu_seconds(bare.pid)
                result = run_wrk(target, connections, duration, run_file)
                result["server_cpu_s"] = process_cpu_seconds(bare.pid) - before
                self.bare[connections] = result
                say(f"ingest c={connections}: bare {describe_wrk(result)}")
            finally:
                bare.stop()

            # Each database gets a fresh relay and the very same requests, right after the
            # bare run: the servers alternate, so that all see the same machine.
            for kind in self.kinds:
                with self.failure(f"ingest {kind}"):
                    self.ingest_relay(
                        kind, f"relay_{connections}", connections, warm_file, run_file
                    )
            if connections == 64:
                # The same load on the production shape: the worker on, delivering to the
                # stand-in with the default rate limit and coalescing window. No target.
                for kind in self.kinds:
                    with self.failure(f"ingest {kind}"):
                        self.standin("/_bench/reset", "POST")
                        self.ingest_relay(
                            kind,
                            "relay_64_worker",
                            connections,
                            warm_file,
                            run_file,
                            RELAY_WORKER="true",
                        )
                        puts = self.standin("/_bench/stats")["puts"]
                        self.results[kind]["relay_64_worker"]["puts"] = puts

    def ingest_relay(
        self,
        kind: str,
        key: str,
        connections: int,
        warm_file: Path,
        run_file: Path,
        **settings: str,
    ) -> None:
        """One ``relay serve`` on a fresh database: warm-up, measured wrk run, VmHWM, checks."""
        duration, warmup = self.args.duration, self.args.warmup
        settings = {"RELAY_WORKER": "false", **settings}
        name = key.replace("_", "-").replace("relay", "ingest-relay")
        relay, _ = self.start_relay(kind, name, **settings)
        try:
            check_signed_post(relay.client, run_file)
            target = relay.url + "/webhooks/generic"
            warm = run_wrk(target, connections, warmup, warm_file)
            relay_before, pg_before = process_cpu_seconds(relay.pid), self.postgres_cpu()
            result = run_wrk(target, connections, duration, run_file)
            result["server_cpu_s"] = process_cpu_seconds(relay.pid) - relay_before
            result["postgres_cpu_s"] = self.postgres_cpu() - pg_before
            result["vmhwm_kib"] = relay.status_kib("VmHWM")
            result["vmrss_kib"] = relay.status_kib("VmRSS")
            result["ready_s"] = relay.ready_s
            # What the database holds, from the relay's own counters (bench/readings.py):
            # read before it stops, once the requests in flight when wrk stopped are answered.
            result["db"] = settled_counts(relay.client)
            relay.stop()
            result["sent"] = warm["requests"] + result["requests"] + 1
            result["warm_wraps"] = warm["wraps"]
            result["log_problems"] = relay.log_problems()
            self.results[kind][key] = result
            say(
                f"ingest c={connections} ({kind} {key}): relay {describe_wrk(result)}, "
                f"VmHWM {result['vmhwm_kib'] / 1024:.1f} MiB"
            )
        finally:
            relay.stop()

    # -- phase 2: drain ----------------------------------------------------------------------

    def drain(self, kind: str) -> None:
        """A backlog of first deliveries (Get order + PUT), then one of already-checked
        invoices (PUT only), each against the plain httpx loop (bench/drain.py)."""
        run_drain(self, kind)

    # -- phase 3: burst ----------------------------------------------------------------------

    def burst(self, kind: str, name: str, rate_limit: int, spread_s: float) -> None:
        """10 webhooks for each of 100 invoices, shuffled, 64 in flight, the worker running.

        Shuffled, an invoice's 10 webhooks arrive spread over the whole burst. ``spread_s``
        0 sends them as fast as the relay takes them; otherwise they are paced evenly over
        that many seconds (a burst longer than the relay's coalescing window).
        """
        invoices, per_invoice = 100, 10
        relay, db = self.start_relay(
            kind,
            name,
            RELAY_WORKER="true",
            RELAY_VTEX_RATE_LIMIT=str(rate_limit),
        )
        try:
            shipments = [burst_shipment(i) for i in range(invoices)]
            asyncio.run(register_shipments(relay.url, shipments, concurrency=16))
            self.standin("/_bench/reset", "POST")
            bodies = [burst_webhook(s, k) for s in shipments for k in range(per_invoice)]
            random.Random(1).shuffle(bodies)
            started = time.monotonic()
            asyncio.run(post_webhooks(relay.url, bodies, concurrency=64, spread_s=spread_s))
            posted_s = time.monotonic() - started
            done_at = wait_all_delivered(db, relay, timeout=120)
            hwm = relay.status_kib("VmHWM")
        finally:
            relay.stop()
        stats = self.standin("/_bench/stats")
        if len(stats["invoices"]) != invoices:
            raise RuntimeError(
                f"{name}: {len(stats['invoices'])} invoices got a PUT, not {invoices}"
            )
        counts = sorted(v[0] for v in stats["invoices"].values())
        incomplete = sum(1 for v in stats["invoices"].values() if v[1] != per_invoice)
        repeats = sum(v[2] for v in stats["invoices"].values())
        result = {
            "rate_limit": rate_limit,
            "spread_s": spread_s,
            "invoices": invoices,
            "webhooks": len(bodies),
            "posted_s": posted_s,
            "settled_s": done_at - started,
            "puts": stats["puts"],
            "puts_per_invoice": stats["puts"] / invoices,
            "min_puts": counts[0] if counts else 0,
            "median_puts": statistics.median(counts) if counts else 0,
            "max_puts": counts[-1] if counts else 0,
            "invoices_put": len(counts),
            "incomplete_last_put": incomplete,
            "repeats": repeats,
            "vmhwm_kib": hwm,
            "ready_s": relay.ready_s,
            "log_problems": relay.log_problems(),
        }
        say(
            f"{name} {kind} (rate limit {rate_limit}/s): {stats['puts']} PUTs for "
            f"{invoices} invoices = {result['puts_per_invoice']:.2f} per invoice "
            f"(max {result['max_puts']}); "
            f"posted in {posted_s:.1f}s"
        )
        self.results[kind][name] = result

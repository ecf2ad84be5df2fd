"""The relay's benchmark, in one run: ingest, drain, burst, memory and start-up, on SQLite
and on PostgreSQL (``--database sqlite|postgresql|both``, default both).

Run it with ``bench/run`` (which checks for wrk and the venv first). Everything talks to
127.0.0.1 only, every server is a process this script starts and stops by its pid. Every relay
gets a database of its own: a SQLite file in a temporary directory that is removed at the end,
or a schema ``relay_bench_<random>`` on the PostgreSQL server (``--postgresql-url``), created
before the relay starts and dropped with CASCADE once its phase is over (``--keep`` keeps
both). The PostgreSQL server itself is never started, stopped or reconfigured. The results
overwrite ``bench/RESULTS.md``; bench/README.md explains each number.

Phases (one at a time, never two loads at once on this 2-core machine):

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
import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import platform
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BIN = Path(sys.executable).parent
RELAY = BIN / "relay"
LUA = BENCH / "sign.lua"

SECRET = "bench-webhook-secret"  # plain text: used as the HMAC key as is (not whsec_)
ADMIN_TOKEN = "bench-admin-token"
APP_KEY = "vtexappkey-bench-ABCDEF"
APP_TOKEN = "bench-app-token"
MAX_CONCURRENCY = 8
DRAIN_RATE_LIMIT = 100_000
DEFAULT_RATE_LIMIT = 50

DATABASES = ("sqlite", "postgresql")
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DEFAULT_POSTGRESQL_URL = "postgresql://postgres@127.0.0.1:5432/test"

# (name, rate limit, seconds the 1,000 webhooks are spread over (0: as fast as they go), run on
# PostgreSQL too) of each burst run; the first is the one the target applies to, the
# others are variants, run on SQLite only to keep the run short: what they show (the rate
# limit and the coalescing window) is the worker's, not the database's.
BURSTS = (
    ("burst", DRAIN_RATE_LIMIT, 0.0, True),
    ("burst-default-rate", DEFAULT_RATE_LIMIT, 0.0, False),
    ("burst-spread-5s", DRAIN_RATE_LIMIT, 5.0, False),
)

TARGET_INGEST_RATIO = 0.20
TARGET_INGEST_P99_MS = 50.0
TARGET_DRAIN_RATIO = 0.50
TARGET_BURST_PUTS = 1.2
TARGET_RSS_MIB = 150.0
TARGET_READY_S = 2.0

STATUSES = ("info_received", "in_transit", "in_transit", "in_transit", "out_for_delivery")
PLACES = (
    ("Curitiba", "PR"),
    ("São Paulo", "SP"),
    ("Campinas", "SP"),
    ("Belo Horizonte", "MG"),
    ("Rio de Janeiro", "RJ"),
    ("Porto Alegre", "RS"),
)
BRT = timezone(timedelta(hours=-3))  # carriers in Brazil send local times with an offset


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """A server this script started; stopped by its own pid only."""

    running: ClassVar[list[Proc]] = []

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        cwd.mkdir(parents=True, exist_ok=True)
        self.log_path = cwd / f"{name}.log"
        with self.log_path.open("ab") as log:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the driver reaches it through stop() only
            )
        Proc.running.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def status_kib(self, key: str) -> int | None:
        """A ``/proc/<pid>/status`` field in KiB (VmHWM: peak resident set)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say(f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout}s: SIGKILL")
                self.popen.kill()
                self.popen.wait(timeout=10)
        with contextlib.suppress(ValueError):
            Proc.running.remove(self)
        return self.popen.returncode

    def log_problems(self) -> list[str]:
        """Log lines at error level or above (the relay logs one JSON object a line)."""
        problems = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    if "Traceback" in line or "ERROR" in line:
                        problems.append(line[:300])
                    continue
                if isinstance(record, dict) and record.get("level") in ("error", "critical"):
                    # The event, where, and the exception's last line (not the whole traceback).
                    exception = str(record.get("exception") or "").strip().splitlines()
                    summary = f"{record.get('logger')}: {str(record.get('event')).strip()}"
                    if record.get("path"):
                        summary += f" {record['path']}"
                    if exception:
                        summary += f" ({exception[-1]})"
                    problems.append(summary[:300])
        return problems

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def wait_until_ok(proc: Proc, url: str, timeout: float = 30.0) -> float:
    """Seconds from the process start to the first 200 from ``url`` (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}"
                )
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - proc.started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise RuntimeError(f"{proc.name} did not answer 200 on {url} within {timeout}s:\n{proc.tail()}")


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")}


@dataclass
class Store:
    """One relay's database: a fresh SQLite file, or a fresh schema on the PostgreSQL server."""

    kind: str  # "sqlite" or "postgresql"
    url: str  # its RELAY_DATABASE_URL
    path: Path | None = None  # SQLite: the file
    schema: str = ""  # PostgreSQL: the schema, first on the search path of every connection


@dataclass
class Relay:
    proc: Proc
    url: str
    store: Store
    ready_s: float


class Bench:
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
        self.postgresql = ""  # the server's version and settings, for the report
        self.postmaster: int | None = None  # its pid, when it runs on this machine
        self.schemas: list[str] = []  # created by this run and not dropped yet
        self.kept_schemas: list[str] = []

    @contextlib.contextmanager
    def failure(self, key: str) -> Iterator[None]:
        """A failed run is reported under ``key``; the others still run."""
        try:
            yield
        except Exception as error:
            say(f"{key} failed: {error}")
            self.errors[key] = self.errors.get(key, "") + "".join(traceback.format_exception(error))

    # -- databases ---------------------------------------------------------------------------

    def probe_postgresql(self) -> None:
        """Check the server answers; note its version and settings, and its postmaster's pid."""
        url = self.args.postgresql_url
        try:
            with pg_connect(url) as conn:
                version = one(conn, "SHOW server_version")[0]
                names = (
                    "synchronous_commit",
                    "fsync",
                    "full_page_writes",
                    "wal_sync_method",
                    "shared_buffers",
                    "max_wal_size",
                )
                rows = conn.execute(
                    "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
                    [list(names)],
                ).fetchall()
                backend = one(conn, "SELECT pg_backend_pid()")[0]
                self.postmaster = parent_pid(backend)
        except psycopg.Error as error:
            raise SystemExit(
                f"bench: cannot reach PostgreSQL at {url} ({error}); give another "
                "--postgresql-url, or run --database sqlite"
            ) from None
        values = {name: pg_setting(setting, unit) for name, setting, unit in rows}
        where = urlsplit(url)
        self.postgresql = (
            f"PostgreSQL {version} at {where.hostname}:{where.port or 5432} ("
            + ", ".join(f"{name}={values[name]}" for name in names if name in values)
            + "), as it runs: the bench changes none of its settings"
        )

    def postgres_cpu(self) -> float:
        return postgres_cpu_seconds(self.postmaster)

    def new_store(self, kind: str, workdir: Path) -> Store:
        if kind == "sqlite":
            path = workdir / "relay.db"
            return Store(kind, f"sqlite:///{path}", path=path)
        url = self.args.postgresql_url
        schema = "relay_bench_" + uuid.uuid4().hex[:12]
        with pg_connect(url) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        separator = "&" if "?" in url else "?"
        options = quote(f"-csearch_path={schema}")
        return Store(kind, f"{url}{separator}options={options}", schema=schema)

    def drop_schemas(self) -> None:
        """Drop the schemas created so far (their relays are stopped by then); ``--keep``
        keeps them, and the report names them."""
        if not self.schemas:
            return
        if self.args.keep:
            self.kept_schemas += self.schemas
            self.schemas.clear()
            return
        try:
            with pg_connect(self.args.postgresql_url) as conn:
                conn.execute("SET lock_timeout = '10s'")
                while self.schemas:
                    schema = self.schemas[-1]
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                    self.schemas.pop()
        except psycopg.Error as error:
            say(f"could not drop the schemas {', '.join(self.schemas)}: {error}")

    # -- servers -----------------------------------------------------------------------------

    def relay_env(self, store: Store, **settings: str) -> dict[str, str]:
        return (
            clean_env()
            | {
                "RELAY_DATABASE_URL": store.url,
                "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
                "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
                "RELAY_VTEX_BASE_URL": self.standin_url,
                "RELAY_VTEX_APP_KEY": APP_KEY,
                "RELAY_VTEX_APP_TOKEN": APP_TOKEN,
                "RELAY_VTEX_TIMEZONE": "America/Sao_Paulo",
                "RELAY_VTEX_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
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
        store = Store("sqlite", f"sqlite:///{self.tmp / 'settings.db'}")
        env = self.relay_env(store, RELAY_WORKER="false")
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

    def start_relay(self, kind: str, name: str, **settings: str) -> Relay:
        """``relay serve`` on a fresh database, in its own directory (so no stray .env is read)."""
        workdir = self.tmp / f"{kind}-{name}"
        workdir.mkdir(parents=True, exist_ok=True)
        store = self.new_store(kind, workdir)
        port = free_port()
        proc = Proc(
            f"{kind}-{name}",
            [str(RELAY), "serve", "--host", "127.0.0.1", "--port", str(port)],
            self.relay_env(store, **settings),
            workdir,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            ready = wait_until_ok(proc, url + "/readyz")
        except Exception:
            proc.stop()
            raise
        self.ready[kind][name] = ready
        say(f"{kind}-{name}: relay serve pid {proc.pid} ready in {ready:.2f}s")
        return Relay(proc, url, store, ready)

    def start_uvicorn(self, name: str, module: str, health: str) -> tuple[Proc, str]:
        """A Starlette app of bench/ under uvicorn, configured as ``relay serve`` runs its app
        (uvloop and httptools, one process) but without an access log."""
        port = free_port()
        proc = Proc(
            name,
            [
                str(BIN / "python"),
                "-m",
                "uvicorn",
                "--app-dir",
                str(BENCH),
                module,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "auto",
                "--http",
                "auto",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            clean_env(),
            self.tmp / name,
        )
        url = f"http://127.0.0.1:{port}"
        ready = wait_until_ok(proc, url + health)
        say(f"{name}: uvicorn pid {proc.pid} ready in {ready:.2f}s")
        return proc, url

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

            bare, bare_url = self.start_uvicorn(f"bare-{connections}", "bare_app:app", "/healthz")
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
        relay = self.start_relay(kind, name, **settings)
        try:
            check_signed_post(relay.url, run_file)
            target = relay.url + "/webhooks/generic"
            warm = run_wrk(target, connections, warmup, warm_file)
            relay_before, pg_before = process_cpu_seconds(relay.proc.pid), self.postgres_cpu()
            result = run_wrk(target, connections, duration, run_file)
            result["server_cpu_s"] = process_cpu_seconds(relay.proc.pid) - relay_before
            result["postgres_cpu_s"] = self.postgres_cpu() - pg_before
            result["vmhwm_kib"] = relay.proc.status_kib("VmHWM")
            result["vmrss_kib"] = relay.proc.status_kib("VmRSS")
            result["ready_s"] = relay.ready_s
            relay.proc.stop()
            result["db"] = ingest_db_counts(relay.store)
            result["sent"] = warm["requests"] + result["requests"] + 1
            result["warm_wraps"] = warm["wraps"]
            result["log_problems"] = relay.proc.log_problems()
            self.results[kind][key] = result
            say(
                f"ingest c={connections} ({kind} {key}): relay {describe_wrk(result)}, "
                f"VmHWM {result['vmhwm_kib'] / 1024:.1f} MiB"
            )
        finally:
            relay.proc.stop()

    # -- phase 2: drain ----------------------------------------------------------------------

    def drain(self, kind: str) -> None:
        invoices = self.args.drain_invoices
        per_invoice = 10
        relay = self.start_relay(kind, "drain-ingest", RELAY_WORKER="false")
        shipments = [drain_shipment(i) for i in range(invoices)]
        try:
            started = time.monotonic()
            asyncio.run(register_shipments(relay.url, shipments, concurrency=16))
            registered_s = time.monotonic() - started
            bodies = [drain_webhook(s, per_invoice) for s in shipments]
            started = time.monotonic()
            asyncio.run(post_webhooks(relay.url, bodies, concurrency=16))
            posted_s = time.monotonic() - started
        finally:
            relay.proc.stop()
        with read_only(relay.store) as db:
            stored_events = db.execute("SELECT count(*) FROM events").fetchone()[0]
            pending = db.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()[0]
        say(
            f"drain {kind}: {invoices} shipments registered in {registered_s:.1f}s, "
            f"{stored_events} events in {len(bodies)} webhooks posted in {posted_s:.1f}s; "
            f"{pending} pending"
        )
        if stored_events != invoices * per_invoice or pending != invoices:
            raise RuntimeError(
                f"drain setup: expected {invoices * per_invoice} events and {invoices} pending "
                f"deliveries, found {stored_events} and {pending}"
            )

        # A delivery queued by new events may wait (a coalescing window) before it is due;
        # start the worker once all are due, so that the drain is not timed waiting for them.
        waited = wait_until_due(relay.store)
        self.standin("/_bench/reset", "POST")
        pg_before = self.postgres_cpu()
        worker = Proc(
            f"{kind}-drain-worker",
            [str(RELAY), "worker"],
            self.relay_env(
                relay.store,
                RELAY_VTEX_RATE_LIMIT=str(DRAIN_RATE_LIMIT),
                RELAY_WORKER_POLL_INTERVAL="1s",
            ),
            self.tmp / f"{kind}-drain-worker",
        )
        try:
            done_at = wait_all_delivered(relay.store, invoices, worker, timeout=180)
            hwm = worker.status_kib("VmHWM")
            worker_cpu = process_cpu_seconds(worker.pid)
            pg_cpu = self.postgres_cpu() - pg_before
        finally:
            code = worker.stop()
        stats = self.standin("/_bench/stats")
        if stats["first"] is None:
            raise RuntimeError("drain: the stand-in saw no PUT")
        drain_s = done_at - stats["first"]
        per_invoice_puts = [v[0] for v in stats["invoices"].values()]
        short = sum(1 for v in stats["invoices"].values() if v[1] != per_invoice)
        result = {
            "invoices": invoices,
            "events": invoices * per_invoice,
            "registered_s": registered_s,
            "posted_s": posted_s,
            "puts": stats["puts"],
            "bad": stats["bad"],
            "puts_per_invoice": stats["puts"] / invoices,
            "max_puts_one_invoice": max(per_invoice_puts),
            "invoices_missing_events": short,
            "drain_s": drain_s,
            "start_to_first_put_s": stats["first"] - worker.started,
            "start_to_done_s": done_at - worker.started,
            "events_per_s": invoices * per_invoice / drain_s,
            "puts_per_s": stats["puts"] / drain_s,
            "worker_vmhwm_kib": hwm,
            "worker_cpu_s": worker_cpu,
            "postgres_cpu_s": pg_cpu,
            "worker_exit": code,
            "waited_due_s": waited,
            "log_problems": worker.log_problems(),
        }
        say(
            f"drain {kind}: {stats['puts']} PUTs in {drain_s:.2f}s after the first one: "
            f"{result['puts_per_s']:.0f} PUT/s, {result['events_per_s']:.0f} events/s"
        )

        # The baseline: the same bodies, the same stand-in, the same concurrency, plain httpx.
        with read_only(relay.store) as db:
            sent = [
                (row[0], row[1], json.loads(row[2]))
                for row in db.execute(
                    "SELECT order_id, invoice_number, body FROM deliveries "
                    "WHERE state = 'delivered' ORDER BY id"
                )
            ]
        rounds = self.args.baseline_rounds
        self.standin("/_bench/reset", "POST")
        asyncio.run(httpx_put_loop(self.standin_url, sent[:100], MAX_CONCURRENCY))  # warm-up
        elapsed = asyncio.run(httpx_put_loop(self.standin_url, sent * rounds, MAX_CONCURRENCY))
        stats = self.standin("/_bench/stats")
        expected = 100 + len(sent) * rounds
        if stats["puts"] != expected or stats["bad"]:
            raise RuntimeError(f"baseline: stand-in counted {stats['puts']} PUTs, not {expected}")
        result["baseline_puts"] = len(sent) * rounds
        result["baseline_s"] = elapsed
        result["baseline_puts_per_s"] = len(sent) * rounds / elapsed
        result["body_bytes"] = statistics.mean(
            len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
            for _, _, body in sent
        )
        say(f"drain {kind}: plain httpx loop {result['baseline_puts_per_s']:.0f} PUT/s")
        self.results[kind]["drain"] = result

    # -- phase 3: burst ----------------------------------------------------------------------

    def burst(self, kind: str, name: str, rate_limit: int, spread_s: float) -> None:
        """10 webhooks for each of 100 invoices, shuffled, 64 in flight, the worker running.

        Shuffled, an invoice's 10 webhooks arrive spread over the whole burst. ``spread_s``
        0 sends them as fast as the relay takes them; otherwise they are paced evenly over
        that many seconds (a burst longer than the relay's coalescing window).
        """
        invoices, per_invoice = 100, 10
        relay = self.start_relay(
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
            done_at = wait_all_delivered(relay.store, invoices, relay.proc, timeout=120)
            hwm = relay.proc.status_kib("VmHWM")
        finally:
            relay.proc.stop()
        stats = self.standin("/_bench/stats")
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
            "log_problems": relay.proc.log_problems(),
        }
        say(
            f"{name} {kind} (rate limit {rate_limit}/s): {stats['puts']} PUTs for "
            f"{invoices} invoices = {result['puts_per_invoice']:.2f} per invoice "
            f"(max {result['max_puts']}); "
            f"posted in {posted_s:.1f}s"
        )
        self.results[kind][name] = result


# -- payloads -------------------------------------------------------------------------------


def sign(msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: base64 HMAC-SHA256 of ``id.timestamp.body``, with ``v1,``."""
    digest = hmac.new(SECRET.encode(), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(digest.digest()).decode()


def event(when: datetime, status: str, place: int, text: str) -> dict[str, Any]:
    city, state = PLACES[place % len(PLACES)]
    return {
        "time": when.astimezone(BRT).isoformat(),
        "status": status,
        "description": text,
        "city": city,
        "state": state,
    }


def ingest_payload(prefix: str, k: int) -> bytes:
    """Webhook ``k`` of a run: 6 new events (about 1.5 KB); 4 webhooks share a tracking number
    and each names its invoice (so it registers the shipment and queues a delivery)."""
    shipment = k // 4
    number = f"{prefix}{shipment:07d}BR"
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC) + timedelta(minutes=7 * k)
    events = [
        event(
            base + timedelta(seconds=37 * j),
            STATUSES[j % len(STATUSES)],
            k + j,
            f"Objeto em trânsito - por favor aguarde; unidade de tratamento {k}-{j}, "
            "encaminhado para a unidade de distribuição do destinatário",
        )
        for j in range(6)
    ]
    return json.dumps(
        {
            "trackingNumber": number,
            "orderId": f"{prefix}{shipment:07d}-01",
            "invoiceNumber": f"NF{shipment:09d}",
            "trackingUrl": f"https://carrier.example/track/{number}",
            "events": events,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def write_ingest_requests(path: Path, prefix: str, count: int, stamp: int) -> list[int]:
    """One signed request a line for sign.lua: id, timestamp, signature, body (TAB between)."""
    sizes = []
    with path.open("wb") as out:
        for k in range(count):
            body = ingest_payload(prefix, k)
            msg_id = f"msg_{prefix}{k:08d}_{uuid.uuid4().hex[:8]}"
            out.write(f"{msg_id}\t{stamp}\t{sign(msg_id, stamp, body)}\t".encode())
            out.write(body + b"\n")
            sizes.append(len(body))
    return sizes


def signed_headers(body: bytes) -> dict[str, str]:
    msg_id = "msg_" + uuid.uuid4().hex
    stamp = int(time.time())
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(msg_id, stamp, body),
    }


def check_signed_post(url: str, request_file: Path) -> None:
    """One request of the file, sent by Python first: a wrong signature fails here, clearly."""
    with request_file.open("rb") as lines:
        msg_id, stamp, signature, body = next(lines).rstrip(b"\n").split(b"\t", 3)
    response = httpx.post(
        url + "/webhooks/generic",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": msg_id.decode(),
            "webhook-timestamp": stamp.decode(),
            "webhook-signature": signature.decode(),
        },
        timeout=10,
    )
    if response.status_code != 202:
        raise RuntimeError(f"a signed webhook got {response.status_code}: {response.text[:300]}")


@dataclass(frozen=True)
class Shipment:
    tracking_number: str
    order_id: str
    invoice_number: str


def drain_shipment(i: int) -> Shipment:
    return Shipment(f"DR{i:08d}BR", f"{1172452900000 + i}-01", f"{30000 + i:09d}")


def burst_shipment(i: int) -> Shipment:
    return Shipment(f"BU{i:06d}BR", f"{1272452900000 + i}-01", f"{40000 + i:09d}")


def drain_webhook(shipment: Shipment, count: int) -> bytes:
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    events = [
        event(
            base + timedelta(hours=3 * j),
            "delivered" if j == count - 1 else STATUSES[j % len(STATUSES)],
            j,
            f"Objeto em trânsito - por favor aguarde (etapa {j + 1})",
        )
        for j in range(count)
    ]
    return json.dumps(
        {"trackingNumber": shipment.tracking_number, "events": events},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def burst_webhook(shipment: Shipment, k: int) -> bytes:
    base = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    return json.dumps(
        {
            "trackingNumber": shipment.tracking_number,
            "events": [
                event(
                    base + timedelta(hours=k),
                    STATUSES[k % len(STATUSES)],
                    k,
                    f"Objeto em trânsito - por favor aguarde (etapa {k + 1})",
                )
            ],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


# -- clients --------------------------------------------------------------------------------


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Any]]) -> None:
    """Run the coroutine factories with at most ``concurrency`` in flight."""
    queue = list(jobs)
    queue.reverse()

    async def lane() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(lane() for _ in range(concurrency)))


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send_all(
    url: str, requests: list[bytes], concurrency: int, expect: set[int], spread_s: float = 0.0
) -> None:
    """Send prepared HTTP/1.1 requests over ``concurrency`` keep-alive connections, each
    sending its next request when it has read the previous answer; with ``spread_s``, request
    ``i`` also waits until ``i / len(requests) * spread_s`` seconds after the start.

    A minimal client on purpose: httpx's pool costs about a millisecond of CPU per request at
    64 connections, which would make the driver, not the relay, set the pace of a burst.
    """
    parsed = urlsplit(url)
    pending = deque(enumerate(requests))
    started = time.monotonic()

    async def lane() -> None:
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        try:
            while pending:
                index, request = pending.popleft()
                if spread_s:
                    await asyncio.sleep(
                        started + index / len(requests) * spread_s - time.monotonic()
                    )
                writer.write(request)
                status_line = await reader.readline()
                parts = status_line.split()
                status = int(parts[1]) if len(parts) > 1 else 0
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"transfer-encoding":
                        raise RuntimeError("send_all: chunked answers are not supported")
                answer = await reader.readexactly(length)
                if status not in expect:
                    raise RuntimeError(f"{status_line!r} {answer[:300]!r}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(requests)))))


async def register_shipments(url: str, shipments: list[Shipment], concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    requests = [
        raw_request(
            "PUT",
            f"/shipments/{s.tracking_number}",
            headers,
            json.dumps({"orderId": s.order_id, "invoiceNumber": s.invoice_number}).encode(),
        )
        for s in shipments
    ]
    await send_all(url, requests, concurrency, {200, 201})


async def post_webhooks(
    url: str, bodies: list[bytes], concurrency: int, spread_s: float = 0.0
) -> None:
    requests = [
        raw_request("POST", "/webhooks/generic", signed_headers(body), body) for body in bodies
    ]
    await send_all(url, requests, concurrency, {202}, spread_s)


async def httpx_put_loop(
    base_url: str, sent: list[tuple[str, str, dict[str, Any]]], concurrency: int
) -> float:
    """The drain baseline: PUT each body, ``concurrency`` at a time, one pooled client; the
    headers and JSON encoding are the relay's (httpx ``json=``)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {
        "X-VTEX-API-AppKey": APP_KEY,
        "X-VTEX-API-AppToken": APP_TOKEN,
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        def job(order_id: str, invoice: str, body: dict[str, Any]) -> Callable[[], Any]:
            async def run() -> None:
                response = await client.put(
                    f"{base_url}/api/oms/pvt/orders/{order_id}/invoice/{invoice}/tracking",
                    json=body,
                    headers=headers,
                )
                response.raise_for_status()

            return run

        started = time.perf_counter()
        await bounded(concurrency, (job(*item) for item in sent))
        return time.perf_counter() - started


# -- wrk ------------------------------------------------------------------------------------


def run_wrk(url: str, connections: int, duration: int, request_file: Path) -> dict[str, Any]:
    """wrk with one thread (the servers get the other core and a half), sign.lua's requests."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(request_file),
        "1",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = result["duration_us"] / 1e6
    result["connections"] = connections
    result["rps"] = result["requests"] / seconds
    result["p50_ms"] = result["latency_us"]["p50"] / 1000
    result["p99_ms"] = result["latency_us"]["p99"] / 1000
    result["failed"] = sum(result["errors"].values())
    return result


def describe_wrk(result: dict[str, Any]) -> str:
    text = (
        f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms ({result['requests']} requests"
    )
    if result["failed"]:
        text += f", {result['failed']} errors {result['errors']}"
    if result["wraps"]:
        text += f", request list replayed {result['wraps']}x"
    return text + ")"


# -- database (read-only) -------------------------------------------------------------------


def one(conn: Any, sql: str) -> tuple[Any, ...]:
    """The one row a query answers (sqlite3 and psycopg connections alike)."""
    row = conn.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql!r}")
    return tuple(row)


def pg_connect(url: str) -> psycopg.Connection[Any]:
    """A connection to the PostgreSQL server, in autocommit (each statement sees the latest)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


@contextlib.contextmanager
def read_only(store: Store) -> Iterator[Any]:
    """A read-only connection to a relay's database: SQLite's ``mode=ro``, or a PostgreSQL
    session whose transactions are all read-only, on the relay's schema. Both answer
    ``execute(sql)`` with a cursor, and every statement sees the latest commit."""
    if store.kind == "sqlite":
        connection = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None)
        try:
            yield connection
        finally:
            connection.close()
        return
    with pg_connect(store.url) as conn:
        conn.execute("SET default_transaction_read_only = on")
        yield conn


def ingest_db_counts(store: Store) -> dict[str, int]:
    with read_only(store) as conn:
        webhooks, new, dup = conn.execute(
            "SELECT count(*), coalesce(sum(new_events), 0), coalesce(sum(duplicate_events), 0) "
            "FROM webhooks WHERE state = 'accepted'"
        ).fetchone()
        deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    return {
        "webhooks": int(webhooks),
        "new_events": int(new),
        "duplicates": int(dup),
        "deliveries": int(deliveries),
    }


def wait_until_due(store: Store) -> float:
    """Sleep until every open delivery's ``next_attempt_at`` (UTC) has passed."""
    with read_only(store) as conn:
        latest = conn.execute(
            "SELECT max(next_attempt_at) FROM deliveries WHERE state IN ('pending', 'retrying')"
        ).fetchone()[0]
    if latest is None:
        return 0.0
    # SQLite gives the stored text (naive, UTC); PostgreSQL a timestamptz (aware).
    due = latest if isinstance(latest, datetime) else datetime.fromisoformat(str(latest))
    due = due.replace(tzinfo=UTC) if due.tzinfo is None else due
    wait = (due - datetime.now(UTC)).total_seconds() + 0.05
    if wait > 0:
        time.sleep(min(wait, 30.0))
    return max(wait, 0.0)


def wait_all_delivered(store: Store, invoices: int, proc: Proc, timeout: float) -> float:
    """Poll ``deliveries`` every 20 ms until no delivery is open and every invoice has been
    delivered; the monotonic time at which that was first seen."""
    deadline = time.monotonic() + timeout
    with read_only(store) as conn:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            open_, delivered = conn.execute(
                "SELECT count(*) FILTER (WHERE state IN ('pending', 'retrying')), "
                "count(DISTINCT order_id || '/' || invoice_number) "
                "FILTER (WHERE state = 'delivered') FROM deliveries"
            ).fetchone()
            if open_ == 0 and delivered == invoices:
                return time.monotonic()
            dead = conn.execute("SELECT count(*) FROM deliveries WHERE state = 'dead'").fetchone()
            if dead[0]:
                raise RuntimeError(f"{dead[0]} deliveries are dead:\n{proc.tail()}")
            time.sleep(0.02)
    raise RuntimeError(f"deliveries not all delivered within {timeout}s:\n{proc.tail()}")


def pg_setting(setting: str, unit: str | None) -> str:
    """A pg_settings value as SHOW prints it, for the usual units (8kB pages, MB)."""
    if unit == "8kB":
        return f"{int(setting) * 8 // 1024}MB"
    return setting + (unit or "") if unit in ("MB", "kB", "s", "ms") else setting


# -- CPU time (/proc) -----------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    """``/proc/<pid>/stat`` from field 3 (state) on: field n is at index n - 3."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int | None:
    with contextlib.suppress(OSError, IndexError, ValueError):
        return int(proc_stat(pid)[1])
    return None


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        stat = proc_stat(pid)
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def postgres_cpu_seconds(postmaster: int | None) -> float:
    """CPU time of the whole PostgreSQL server: the postmaster with the children it has reaped
    (ended backends), plus every live child (backends, WAL writer, checkpointer...). It
    counts every client's queries, not only the relay's. 0 when the server is not local."""
    if postmaster is None:
        return 0.0
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = proc_stat(int(entry.name))
            if int(entry.name) == postmaster or int(stat[1]) == postmaster:
                ticks += sum(int(x) for x in stat[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


# -- report ---------------------------------------------------------------------------------


def command_output(argv: list[str], cwd: Path = ROOT) -> str:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=30, cwd=cwd
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk = command_output(["sh", "-c", "wrk --version 2>&1 | head -1"])
    import starlette
    import uvicorn

    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk.split(" Copyright")[0],
        "uvicorn": uvicorn.__version__,
        "starlette": starlette.__version__,
        "httpx": httpx.__version__,
    }


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (/proc/stat, all cores)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this driver and everything it started (waited for, or still running)."""
    times = os.times()
    total = times.user + times.system + times.children_user + times.children_system
    ticks = os.sysconf("SC_CLK_TCK")
    for proc in Proc.running:
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in stat[11:15]) / ticks  # utime stime cutime cstime
    return total


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


@dataclass
class Row:
    measure: str
    result: str
    baseline: str
    ratio: str
    target: str
    met: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        self.rows.append(Row(*cells))


def verdict(ok: bool | None) -> str:
    if ok is None:
        return "—"
    return "**met**" if ok else "**not met**"


def error_of(bench: Bench, *keys: str) -> str:
    """The last line of the first error recorded under one of ``keys``."""
    for key in keys:
        if key in bench.errors:
            lines = bench.errors[key].strip().splitlines()
            return "error: " + (lines[-1] if lines else "?")
    return "not measured"


def table(bench: Bench, kind: str) -> Report:
    """The results of one database, one row a measure."""
    r = bench.results[kind]
    report = Report()
    for connections in (16, 64):
        relay, bare = r.get(f"relay_{connections}"), bench.bare.get(connections)
        if relay is None or bare is None:
            error = error_of(bench, f"ingest {kind}", "ingest")
            report.add(f"Ingest, {connections} conns", error, "", "", "", verdict(False))
            continue
        ratio = relay["rps"] / bare["rps"]
        clean = relay["failed"] == 0
        target_rps = connections == 64
        report.add(
            f"Ingest req/s, {connections} conns",
            f"{relay['rps']:.0f} req/s" + ("" if clean else f" ({relay['failed']} errors)"),
            f"{bare['rps']:.0f} req/s (bare Starlette)",
            f"{ratio:.1%}",
            f"≥ {TARGET_INGEST_RATIO:.0%} of bare" if target_rps else "(no target)",
            verdict(ratio >= TARGET_INGEST_RATIO and clean) if target_rps else "—",
        )
        report.add(
            f"Ingest p50, {connections} conns",
            f"{relay['p50_ms']:.1f} ms",
            f"{bare['p50_ms']:.1f} ms",
            f"{relay['p50_ms'] / bare['p50_ms']:.1f}x",
            "(no target)",
            "—",
        )
        report.add(
            f"Ingest p99, {connections} conns",
            f"{relay['p99_ms']:.1f} ms",
            f"{bare['p99_ms']:.1f} ms",
            f"{relay['p99_ms'] / bare['p99_ms']:.1f}x",
            f"≤ {TARGET_INGEST_P99_MS:.0f} ms" if target_rps else "(no target)",
            verdict(relay["p99_ms"] <= TARGET_INGEST_P99_MS and clean) if target_rps else "—",
        )
    on, bare = r.get("relay_64_worker"), bench.bare.get(64)
    if on is not None and bare is not None:
        report.add(
            "Ingest req/s, 64 conns, worker on (variant)",
            f"{on['rps']:.0f} req/s, p99 {on['p99_ms']:.1f} ms"
            + ("" if on["failed"] == 0 else f" ({on['failed']} errors)"),
            f"{bare['rps']:.0f} req/s (bare Starlette)",
            f"{on['rps'] / bare['rps']:.1%}",
            "(variant, no target)",
            "—",
        )
    drain = r.get("drain")
    if drain is None:
        report.add("Drain", error_of(bench, f"drain {kind}"), "", "", "", verdict(False))
    else:
        ratio = drain["puts_per_s"] / drain["baseline_puts_per_s"]
        report.add(
            f"Drain PUT/s ({drain['invoices']:,} invoices)",
            f"{drain['puts_per_s']:.0f} PUT/s",
            f"{drain['baseline_puts_per_s']:.0f} PUT/s (plain httpx loop)",
            f"{ratio:.1%}",
            f"≥ {TARGET_DRAIN_RATIO:.0%} of httpx",
            verdict(ratio >= TARGET_DRAIN_RATIO),
        )
        report.add(
            f"Drain events/s ({drain['events']:,} events)",
            f"{drain['events_per_s']:.0f} events/s",
            f"{drain['baseline_puts_per_s'] * 10:.0f} (httpx PUT/s x 10 events)",
            f"{ratio:.1%}",
            "(same measure as above)",
            "—",
        )
        report.add(
            "Drain PUTs per invoice",
            f"{drain['puts_per_invoice']:.2f}",
            "1 (one pending delivery each)",
            f"{drain['puts_per_invoice']:.2f}x",
            "(no target)",
            "—",
        )
    for index, (name, rate, spread, everywhere) in enumerate(BURSTS):
        if kind != "sqlite" and not everywhere:
            continue
        burst = r.get(name)
        primary = index == 0
        label = f"Burst PUTs per invoice (rate limit {rate}/s" + (
            f", spread over {spread:.0f} s)" if spread else ")"
        )
        if burst is None:
            error = error_of(bench, f"{name} {kind}")
            report.add(label, error, "", "", "", verdict(False) if primary else "—")
            continue
        ok = burst["puts_per_invoice"] <= TARGET_BURST_PUTS and burst["incomplete_last_put"] == 0
        report.add(
            label,
            f"{burst['puts_per_invoice']:.2f} (max {burst['max_puts']} on one invoice)",
            "1 (ideal: 10 webhooks each)",
            f"{burst['puts_per_invoice']:.2f}x",
            f"≤ {TARGET_BURST_PUTS}" if primary else "(variant, no target)",
            verdict(ok) if primary else "—",
        )
    hwms = {
        label: r[key]["vmhwm_kib"]
        for key, label in (
            ("relay_16", "16 conns"),
            ("relay_64", "64 conns"),
            ("relay_64_worker", "64 conns, worker on"),
        )
        if key in r
    }
    if hwms and all(v is not None for v in hwms.values()):
        peak = max(hwms.values()) / 1024
        report.add(
            "Peak RSS of relay serve under ingest",
            f"{peak:.1f} MiB",
            "; ".join(f"{v / 1024:.1f} MiB at {label}" for label, v in hwms.items()),
            "—",
            f"≤ {TARGET_RSS_MIB:.0f} MiB",
            verdict(peak <= TARGET_RSS_MIB),
        )
    else:
        report.add("Peak RSS", "not measured", "", "", "", verdict(False))
    ready = bench.ready[kind]
    if ready:
        worst_name = max(ready, key=lambda k: ready[k])
        worst = ready[worst_name]
        report.add(
            "Start to /readyz 200 (worst start)",
            f"{worst:.2f} s ({worst_name})",
            f"median {statistics.median(ready.values()):.2f} s of {len(ready)} starts",
            "—",
            f"≤ {TARGET_READY_S:.0f} s",
            verdict(worst <= TARGET_READY_S),
        )
    else:
        report.add("Start to /readyz", "not measured", "", "", "", verdict(False))
    return report


def render(
    bench: Bench,
    started: datetime,
    wall_s: float,
    load_before: str,
    others_cpu_s: float,
    postgres_cpu_s: float,
) -> str:
    info = machine()
    cores = os.cpu_count() or 1
    databases = []
    if "sqlite" in bench.kinds:
        databases.append(
            f"SQLite {sqlite3.sqlite_version}: a fresh file in /tmp per relay (WAL, "
            "synchronous=FULL)"
        )
    if "postgresql" in bench.kinds:
        databases.append(f"{bench.postgresql}; a fresh schema per relay, dropped afterwards")
    load = (
        f"- Load average before / after: {load_before} / {loadavg()}; other processes used "
        f"{others_cpu_s:.0f} CPU-seconds during the run "
        f"({others_cpu_s / (wall_s * cores):.0%} of the machine)"
    )
    if "postgresql" in bench.kinds:
        load += (
            f", besides the PostgreSQL server's {postgres_cpu_s:.0f} CPU-seconds "
            "(the relay's queries, and any other client's)"
            if bench.postmaster
            else " (the PostgreSQL server is not on this machine: its CPU time is not known)"
        )
    if others_cpu_s > 0.05 * wall_s * cores:
        load += " — the machine was not quiet, compare ratios rather than absolute numbers"
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M:%S')} UTC (whole run {wall_s:.0f} s)",
        f"- Code measured: {bench.code}",
        f"- Machine: {info['cpu']}; kernel {info['kernel']}; Python {info['python']}; "
        f"{info['wrk']}; uvicorn {info['uvicorn']}, starlette {info['starlette']}, "
        f"httpx {info['httpx']}, psycopg {psycopg.__version__}",
        "- Databases: " + "; ".join(databases),
        f"- Relay settings (the relay's defaults plus the bench's environment; each phase "
        f"overrides a few, as said below): {bench.settings}",
        load,
        f"- Command: `bench/run{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`",
    ]
    if bench.kept_schemas:
        lines.append(
            "- Kept (--keep) on PostgreSQL: schemas "
            + ", ".join(f"`{s}`" for s in bench.kept_schemas)
            + " (drop them with `DROP SCHEMA … CASCADE`)"
        )
    for kind in bench.kinds:
        lines += ["", f"## {LABELS[kind]}", ""]
        if kind != "sqlite":
            lines += [
                "The burst variants (default rate limit, burst spread over 5 s) run on SQLite "
                "only, to keep the run short: what they show is the worker's rate limit and "
                "coalescing window, not the database.",
                "",
            ]
        lines += [
            "| measure | result | baseline | ratio | target | met? |",
            "|---|---|---|---|---|---|",
        ]
        for row in table(bench, kind).rows:
            cells = [row.measure, row.result, row.baseline, row.ratio, row.target, row.met]
            text = " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells)
            lines.append(f"| {text} |")
    lines += ["", "## How it was measured", ""]
    lines += method(bench)
    for kind in bench.kinds:
        lines += ["", f"### {LABELS[kind]}: the numbers behind the table", ""]
        lines += numbers(bench, kind)
    if bench.errors:
        lines += ["", "## Errors", ""]
        for phase, error in bench.errors.items():
            lines += [f"- {phase}:", "", "```", error.strip()[-3000:], "```", ""]
    return "\n".join(lines) + "\n"


def method(bench: Bench) -> list[str]:
    a = bench.args
    where = {
        "sqlite": "a fresh SQLite file in /tmp (WAL, synchronous=FULL)",
        "postgresql": "a fresh schema of the PostgreSQL server (first on the search path)",
    }
    stores = " or ".join(where[kind] for kind in bench.kinds)
    names = [LABELS[kind] for kind in bench.kinds]
    order = ", ".join(
        [
            "bare 16",
            *(f"relay 16 on {name}" for name in names),
            "bare 64",
            *(f"relay 64 on {name}" for name in names),
            *(f"relay 64 with its worker on, on {name}" for name in names),
        ]
    )
    return [
        f"- Ingest: wrk, 1 thread, {a.duration} s per run after a {a.warmup} s warm-up at the "
        "same connection count, `--timeout 10s`; bench/sign.lua replays webhooks signed "
        "beforehand (Standard Webhooks, fresh timestamps, distinct `webhook-id`, 6 new events "
        "each, 4 webhooks per tracking number, each naming its invoice)"
        + (f", mean body {bench.payload_bytes:.0f} bytes" if bench.payload_bytes else "")
        + ". `relay serve` runs with RELAY_WORKER=false "
        f"(ingest only: each webhook still registers its shipment and queues a delivery), on "
        f"{stores}, log to a file. The bare endpoint is Starlette under the same uvicorn "
        "(uvloop, httptools, one process), no access log; one bare run per connection count "
        + ("is the baseline of both databases" if len(names) > 1 else "is the baseline")
        + f". Order: {order}. Latency is wrk's (closed loop: each connection waits for its "
        "answer). CPU-seconds are the server process's"
        + (
            ", and the PostgreSQL server's (all its processes),"
            if "postgresql" in bench.kinds
            else ""
        )
        + " during the measured run.",
        f"- Drain: {a.drain_invoices} shipments registered with PUT /shipments, then one "
        f"webhook of 10 events per tracking number posted with RELAY_WORKER=false "
        f"({a.drain_invoices * 10} events, {a.drain_invoices} pending deliveries). Then "
        f"`relay worker` on the same database, RELAY_VTEX_MAX_CONCURRENCY={MAX_CONCURRENCY}, "
        f"**RELAY_VTEX_RATE_LIMIT={DRAIN_RATE_LIMIT}** (so the limiter is not what is "
        "measured), PUTting to the stand-in (bench/vtex_standin.py: Starlette under uvicorn, "
        "its own process, 200 with `{date, orderId, receipt}`). Time: from the first PUT the "
        "stand-in saw to the moment a read-only poll (every 20 ms) of `deliveries` found "
        "every invoice delivered. Baseline, measured right after each drain: asyncio (no "
        f"uvloop, like `relay worker`), one httpx.AsyncClient with {MAX_CONCURRENCY} "
        f"connections, {MAX_CONCURRENCY} tasks PUTting the bodies the relay sent "
        f"({a.baseline_rounds} rounds after 100 to warm up, `json=` as the relay does) to the "
        "same stand-in.",
        f"- Burst: `relay serve` with its worker on (concurrency {MAX_CONCURRENCY}), 100 "
        "shipments registered, then 1,000 webhooks (10 per invoice, one new event each) in a "
        "shuffled order (an invoice's 10 spread over the whole burst), posted over 64 "
        "keep-alive connections; PUTs per invoice once every invoice is delivered (a "
        "read-only poll of `deliveries`, every 20 ms). The variants (default rate limit; "
        "paced over 5 s) run on SQLite only.",
        "- Start-up: from the `relay serve` process start (fresh database, migration "
        "included) to the first 200 of /readyz, polled every 5 ms.",
        "- Peak RSS: `VmHWM` of the `relay serve` process (/proc/<pid>/status), read right "
        "after its measured wrk run, before it is stopped; 1 MiB = 1024 KiB.",
    ]


def numbers(bench: Bench, kind: str) -> list[str]:
    r = bench.results[kind]
    postgres = kind == "postgresql"
    out = []
    for c, key in ((16, "relay_16"), (64, "relay_64"), (64, "relay_64_worker")):
        relay, bare = r.get(key), bench.bare.get(c)
        if relay and bare:
            db = relay["db"]
            shape = (
                f"{c} conns, worker on (RELAY_WORKER=true, default rate limit and coalescing "
                f"window, {relay.get('puts', 0)} PUTs to the stand-in during the run)"
                if key.endswith("worker")
                else f"{c} conns"
            )
            per_request = 1000 / max(relay["requests"], 1)
            cpu = (
                f"CPU in the {bench.args.duration} s: relay {relay['server_cpu_s']:.1f} s "
                f"({relay['server_cpu_s'] * per_request:.2f} ms a request)"
            )
            if bench.postmaster and postgres:
                cpu += (
                    f", PostgreSQL server {relay['postgres_cpu_s']:.1f} s "
                    f"({relay['postgres_cpu_s'] * per_request:.2f} ms a request)"
                )
            cpu += f", bare {bare['server_cpu_s']:.1f} s"
            if bench.postmaster and not postgres:
                cpu += (
                    f"; PostgreSQL server, not used by this run (other clients): "
                    f"{relay['postgres_cpu_s']:.1f} s"
                )
            out.append(
                f"- Ingest {shape}: relay {describe_wrk(relay)}; bare {describe_wrk(bare)}; "
                f"relay p90 {relay['latency_us']['p90'] / 1000:.1f} ms, max "
                f"{relay['latency_us']['max'] / 1000:.1f} ms; {cpu}. Database "
                f"afterwards: {db['webhooks']} webhooks for {relay['sent']} requests sent "
                "(warm-up included; the last in flight when wrk stops are not counted by wrk), "
                f"{db['new_events']} new events, {db['duplicates']} duplicates"
                + (
                    f" (the warm-up's list ran out and was replayed {relay['warm_wraps']}x)"
                    if relay.get("warm_wraps")
                    else ""
                )
                + f", {db['deliveries']} deliveries queued. Log lines at error level: "
                f"{len(relay['log_problems'])}."
            )
    drain = r.get("drain")
    if drain:
        pg = f", PostgreSQL {drain['postgres_cpu_s']:.1f}" if postgres and bench.postmaster else ""
        out.append(
            f"- Drain: setup {drain['registered_s']:.1f} s to register the shipments and "
            f"{drain['posted_s']:.1f} s to post the webhooks; "
            f"{drain['drain_s']:.2f} s from the first PUT to all delivered; {drain['puts']} "
            f"PUTs (mean body {drain['body_bytes']:.0f} B), the worker started once every "
            f"delivery was due (waited {drain['waited_due_s']:.1f} s), "
            f"{drain['invoices_missing_events']} invoices whose last PUT lacked events. Worker "
            f"start to first PUT {drain['start_to_first_put_s']:.2f} s, start to all delivered "
            f"{drain['start_to_done_s']:.2f} s; CPU-seconds from its start to all delivered: "
            f"worker {drain['worker_cpu_s']:.1f}{pg}; worker VmHWM "
            f"{(drain['worker_vmhwm_kib'] or 0) / 1024:.1f} MiB; error log lines "
            f"{len(drain['log_problems'])}. Baseline: {drain['baseline_puts']} PUTs in "
            f"{drain['baseline_s']:.2f} s."
        )
    for name, rate, spread, _ in BURSTS:
        burst = r.get(name)
        if burst:
            pace = f"paced evenly over {spread:.0f} s" if spread else "as fast as they are taken"
            out.append(
                f"- {name}, rate limit {rate}/s, {pace}: {burst['webhooks']} webhooks posted in "
                f"{burst['posted_s']:.2f} s ({burst['webhooks'] / burst['posted_s']:.0f}/s); all "
                f"delivered {burst['settled_s']:.2f} s after the first post. PUTs per invoice: "
                f"min {burst['min_puts']}, median {burst['median_puts']}, max "
                f"{burst['max_puts']}; {burst['repeats']} PUTs carried no event the invoice's "
                f"previous PUT lacked; {burst['incomplete_last_put']} invoices whose last PUT "
                f"lacked events; relay VmHWM {(burst['vmhwm_kib'] or 0) / 1024:.1f} MiB; "
                f"error log lines {len(burst['log_problems'])}."
            )
    if bench.ready[kind]:
        out.append(
            "- Start-up to /readyz 200: "
            + ", ".join(f"{name} {s:.2f} s" for name, s in bench.ready[kind].items())
            + "."
        )
    for key, result in r.items():
        problems = result.get("log_problems") if isinstance(result, dict) else None
        if problems:
            counts: dict[str, int] = {}
            for line in problems:
                counts[line] = counts.get(line, 0) + 1
            out.append(f"- Error log lines of {key}: {len(problems)}, of these kinds:")
            out += [f"  - {n} x `{line}`" for line, n in list(counts.items())[:5]]
    return out


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


# -- main -----------------------------------------------------------------------------------


def main() -> int:
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
    args = parser.parse_args()
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
        if "postgresql" in bench.kinds:
            bench.probe_postgresql()
            say(bench.postgresql)
        busy_before, own_before = busy_cpu_seconds(), own_cpu_seconds()
        postgres_before = bench.postgres_cpu()
        bench.source, bench.code = prepare_source(tmp, args)
        say(f"measuring {bench.code}")
        bench.settings = bench.relay_settings()
        say(f"relay defaults here: {bench.settings}")
        _, bench.standin_url = bench.start_uvicorn(
            "vtex-standin", "vtex_standin:app", "/_bench/stats"
        )
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
        for proc in list(Proc.running):
            proc.stop(timeout=10)
        bench.drop_schemas()
        if bench.kept_schemas:
            say(f"kept the PostgreSQL schemas {', '.join(bench.kept_schemas)}")
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())

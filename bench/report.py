"""RESULTS.md: one table per database (result, baseline, ratio, target, met?), how each
number was measured, and the numbers behind each table."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import statistics
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from bench.clients import describe_wrk
from bench.config import (
    BURSTS,
    DRAIN_RATE_LIMIT,
    LABELS,
    MAX_CONCURRENCY,
    TARGET_BURST_PUTS,
    TARGET_DRAIN_INVOICE_RATIO,
    TARGET_DRAIN_RATIO,
    TARGET_INGEST_P99_MS,
    TARGET_INGEST_RATIO,
    TARGET_READY_S,
    TARGET_RSS_MIB,
)
from bench.phases import Bench
from bench.processes import command_output, loadavg


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
        ratio = drain["requests_per_s"] / drain["baseline_requests_per_s"]
        calls = "Get order + PUT" if drain["baseline_get_order_first"] else "PUT"
        report.add(
            f"Drain requests/s ({drain['invoices']:,} invoices, {calls} each)",
            f"{drain['requests_per_s']:.0f} req/s ({drain['orders']} Get order, "
            f"{drain['patches']} PATCH, {drain['puts']} PUT)",
            f"{drain['baseline_requests_per_s']:.0f} req/s (plain httpx loop, {calls})",
            f"{ratio:.1%}",
            f"≥ {TARGET_DRAIN_RATIO:.0%} of httpx",
            verdict(ratio >= TARGET_DRAIN_RATIO),
        )
        invoice_ratio = drain["invoices_per_s"] / drain["baseline_puts_per_s"]
        report.add(
            f"Drain invoices/s ({drain['events']:,} events)",
            f"{drain['invoices_per_s']:.0f} invoices/s",
            f"{drain['baseline_puts_per_s']:.0f} invoices/s (plain httpx loop)",
            f"{invoice_ratio:.1%}",
            f"≥ {TARGET_DRAIN_INVOICE_RATIO:.0%} of httpx",
            verdict(invoice_ratio >= TARGET_DRAIN_INVOICE_RATIO),
        )
        report.add(
            "Drain PUTs per invoice",
            f"{drain['puts_per_invoice']:.2f}",
            "1 (one pending delivery each)",
            f"{drain['puts_per_invoice']:.2f}x",
            "(no target)",
            "—",
        )
    checked = r.get("drain_checked")
    if checked is None and drain is not None:
        error = error_of(bench, f"drain {kind}")
        report.add("Drain PUT/s, checked invoices", error, "", "", "", verdict(False))
    elif checked is not None:
        ratio = checked["puts_per_s"] / checked["baseline_puts_per_s"]
        report.add(
            f"Drain PUT/s ({checked['invoices']:,} already-checked invoices, PUT only)",
            f"{checked['puts_per_s']:.0f} PUT/s ({checked['orders']} Get order, "
            f"{checked['puts']} PUT)",
            f"{checked['baseline_puts_per_s']:.0f} PUT/s (plain httpx loop, PUT)",
            f"{ratio:.1%}",
            f"≥ {TARGET_DRAIN_RATIO:.0%} of httpx",
            verdict(ratio >= TARGET_DRAIN_RATIO),
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
    if bench.postgres:
        databases.append(
            f"{bench.postgres.description}; a fresh schema per relay, dropped afterwards"
        )
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
    if bench.postgres and bench.postgres.kept:
        lines.append(
            "- Kept (--keep) on PostgreSQL: schemas "
            + ", ".join(f"`{s}`" for s in bench.postgres.kept)
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
        "measured), PUTting to the stand-in (tests/support/vtex_standin.py in its own "
        "process, bench/standin.py: 200 with `{date, orderId, receipt}`). Time: from the "
        "first PUT the stand-in saw to the moment a poll (every 20 ms) of the relay's store "
        "front (its queue snapshot) found no delivery open, every invoice delivered. "
        "Each invoice's first delivery reads the order first (Get order, SPEC §2; the "
        "stand-in's packages carry a tracking number, so no PATCH). Baseline, measured right "
        "after each drain: asyncio (no "
        f"uvloop, like `relay worker`), one httpx.AsyncClient with {MAX_CONCURRENCY} "
        f"connections, {MAX_CONCURRENCY} tasks making the same requests: Get order (its JSON "
        "read), then the PUT of the body the relay sent, as the stand-in received it "
        f"({a.baseline_rounds} rounds after 100 to warm up, `json=` as the relay does) to the "
        "same stand-in. Requests/s counts every VTEX call; invoices/s the invoices delivered. "
        "Then the drain of checked invoices: one new event per invoice posted the same way "
        "(1,000 pending deliveries, invoices the first round checked), the worker started "
        "again: each delivery is a PUT alone; its baseline the same loop making PUTs only.",
        f"- Burst: `relay serve` with its worker on (concurrency {MAX_CONCURRENCY}), 100 "
        "shipments registered, then 1,000 webhooks (10 per invoice, one new event each) in a "
        "shuffled order (an invoice's 10 spread over the whole burst), posted over 64 "
        "keep-alive connections; PUTs per invoice once every invoice is delivered (a poll "
        "of the relay's store front, its queue snapshot, every 20 ms). The variants (default "
        "rate limit; paced over 5 s) run on SQLite only.",
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
            f"{len(drain['log_problems'])}. Baseline: {drain['baseline_puts']} deliveries ("
            f"{'Get order + PUT' if drain['baseline_get_order_first'] else 'PUT'} each) in "
            f"{drain['baseline_s']:.2f} s."
        )
    checked = r.get("drain_checked")
    if checked:
        pg = (
            f", PostgreSQL {checked['postgres_cpu_s']:.1f}" if postgres and bench.postmaster else ""
        )
        out.append(
            f"- Drain of checked invoices: {checked['posted_s']:.1f} s to post one new event "
            f"each; {checked['drain_s']:.2f} s from the first PUT to all delivered; "
            f"{checked['puts']} PUTs, {checked['orders']} Get order; "
            f"{checked['invoices_missing_events']} invoices whose last PUT lacked events; "
            f"CPU-seconds from the worker's start to all delivered: worker "
            f"{checked['worker_cpu_s']:.1f}{pg}; error log lines "
            f"{len(checked['log_problems'])}. Baseline: {checked['baseline_puts']} PUTs in "
            f"{checked['baseline_s']:.2f} s."
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

"""bench/PRUNE.md from bench/prune.py's measurements."""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import TYPE_CHECKING, Any

import psycopg

from app.store.upkeep_front import PRUNE_BATCH
from bench import prune_plans
from bench.databases import pg_connect
from bench.processes import command_output, loadavg
from bench.prune_load import Latency, percentile, windows
from bench.report import machine

if TYPE_CHECKING:
    from bench.databases import PostgresServer
    from bench.prune import Outcome

TARGET_RATIO = 2.0
LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
MODES = {
    "process": "a process of its own",
    "worker": "the relay's worker",
}
STEP_LABELS = {
    "prune_invoices": "invoices (delivered, old)",
    "prune_unmatched": "unmatched shipments",
    "prune_silent_webhooks": "webhooks no event came from",
    "prune_quarantined": "quarantined webhooks",
    "small_rows": "minute counts, tombstones, sessions",
    "free_space": "free_space (SQLite incremental vacuum)",
}
TOP_STATEMENTS = 8


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def ratio(outcome: Outcome) -> float:
    base = Latency.of(outcome.baseline).p99
    return Latency.of(outcome.window()).p99 / base if base else math.nan


def met(outcome: Outcome) -> bool:
    return ratio(outcome) <= TARGET_RATIO and Latency.of(outcome.window()).failed == 0


def code_line() -> str:
    commit = command_output(["git", "rev-parse", "--short", "HEAD"]) or "?"
    dirty = command_output(["git", "status", "--short", "--", "app"]).splitlines()
    if not dirty:
        return f"commit `{commit}`"
    return (
        f"commit `{commit}` with the working tree's uncommitted edits in app/ ({len(dirty)} "
        "files, another engineer's work in progress; the prune code, app/store/retention.py "
        "and app/store/upkeep_front.py, is as committed)"
        if not any("retention" in line or "upkeep_front" in line for line in dirty)
        else f"commit `{commit}` with uncommitted edits in app/ ({len(dirty)} files)"
    )


def render(
    outcomes: list[Outcome],
    args: argparse.Namespace,
    server: PostgresServer | None,
    plans: dict[str, Any] | None = None,
) -> str:
    facts = machine()
    lines = [
        "# Pruning while webhooks arrive (SPEC §11)",
        "",
        "Target (the issue): pruning 1,000,000 old events while webhooks arrive at a steady "
        "moderate rate keeps the webhooks' p99 within twice its value without pruning.",
        "",
        f"`python -m bench.prune` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{code_line()}; machine: {facts.get('cpu', '?')}, Python {facts.get('python', '?')}, "
        f"load {loadavg()} at the end.",
        *(
            [
                "",
                "Each measurement ended: "
                + "; ".join(f"{LABELS[o.kind]}, {where(o)}: {o.measured_at}" for o in outcomes)
                + ".",
            ]
            if all(o.measured_at for o in outcomes)
            else []
        ),
        "",
        "| database | prune in | webhooks/s | p50 / p99 without pruning | "
        "p50 / p99 while pruning | p99 ratio | ≤ 2x | prune took | events removed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        base, during = Latency.of(o.baseline), Latency.of(o.window())
        lines.append(
            f"| {LABELS[o.kind]} | {where(o)} | {o.rate:.0f} | {base.p50:.1f} / "
            f"{base.p99:.1f} ms | {during.p50:.1f} / {during.p99:.1f} ms | {ratio(o):.2f}x | "
            f"**{'met' if met(o) else 'not met'}** | {took(o)} | "
            f"{o.prune['report']['events']:,} |"
        )
    lines += ["", *method(args, server), ""]
    if any(o.variant for o in outcomes):
        lines[-1:-1] = [
            "- **Variant: empty tables analysed before** (`--analysed-empty`, PostgreSQL). "
            "The same, but every table of the schema is analysed before the relay starts, the "
            "empty ones too (as a manual `ANALYZE` or `vacuumdb --analyze` leaves a database "
            "whose relay has never pruned): PostgreSQL then plans for an empty "
            "`pruned_shipments`, see the last section.",
        ]
    for o in outcomes:
        lines += details(o)
    if plans:
        lines += prune_plans.render(plans)
    return "\n".join(lines).rstrip() + "\n"


def where(o: Outcome) -> str:
    return MODES[o.mode] + (f" ({o.variant})" if o.variant else "")


def took(o: Outcome) -> str:
    if o.mode == "worker":
        return f"{o.prune['prune_s']:.1f} s (with free space)"
    return f"{o.prune['prune_s']:.1f} s + {o.prune['free_space_s']:.1f} s free space"


def method(args: argparse.Namespace, server: PostgresServer | None) -> list[str]:
    delivered = sum(1 for n in range(args.shipments) if n % 100 < 90)  # console_data.state_of
    return [
        "## Method",
        "",
        "- **Data.** A fresh database per run (SQLite: a new file, created by the relay's "
        "`migrate`, so with incremental vacuum; PostgreSQL: a new schema, dropped afterwards). "
        f"bench/console_data.py writes {args.shipments:,} shipments straight into the relay's "
        "tables (10 "
        "events, one webhook, one delivery and one attempt each; 1,000 quarantined webhooks; "
        f"24 h of per-minute counts), every time {args.age} days old; the retention is 90 "
        f"days. 90 in every 100 deliveries are delivered: those {delivered:,} invoices and "
        f"their {delivered * 10:,} events are what the prune removes; the "
        f"{args.shipments - delivered:,} with dead, pending or retrying deliveries stay. Then "
        "SQLite's WAL is checkpointed; on PostgreSQL the tables the fill wrote are vacuumed "
        "and analysed, the empty ones left never analysed (as autovacuum leaves them).",
        "- **Relay.** `relay serve`, one process, on that database, with the relay's default "
        "settings (INFO logs, one JSON line a request) but for what is said here.",
        f"- **Webhooks.** {args.rate:.0f} a second, open loop (each one due at its time "
        "whatever the others are doing, on as many connections as that takes), from one "
        "Python client on the same machine (asyncio, HTTP/1.1 keep-alive, at most 512 "
        "connections; not httpx, whose pool's CPU per request grows with the requests "
        "waiting, which made the client the bottleneck once the relay stalled): signed "
        "generic-carrier webhooks "
        "(Standard Webhooks), each a new tracking number with 3 events that names its "
        "invoice (a shipment registered, a delivery queued). Latency runs from when a "
        "webhook was due to its answer; the client's own lag is part of it (its p99 is "
        "shown). 3 s of warm-up, not counted.",
        f"- **Baseline.** {args.seconds:.0f} s of webhooks, nothing pruning.",
        "- **Prune, in a process of its own** (`--prune-in process`). The relay's worker is "
        "off (it would prune at its start). bench/prune_runner.py, a process of its own, "
        "runs exactly what the worker's hourly task runs (app/deliver/periodic.py): "
        "`SqlStore.upkeep().prune(now, 90 days, pause=0.02)` "
        f"(batches of {PRUNE_BATCH}, the default) then `free_space(pause=0.02)`. "
        "(Not `relay prune` itself, which pauses 0 s between "
        "transactions.) It starts together with the webhooks, which go on until it is done "
        f"(and for {args.seconds:.0f} s at least). On SQLite it and the relay are two "
        "writers on one file that wait for each other through SQLite's busy timeout, as with "
        "`relay prune` run by an operator or a `relay worker` process beside `relay serve`; "
        "on PostgreSQL, as with another replica's worker. The runner also times each "
        "transaction (from queueing to commit), the batch function inside it, and each SQL "
        "statement (SQLAlchemy cursor events); nothing of the relay is changed.",
        "- **Prune, in the relay's worker** (`--prune-in worker`). The relay runs with its "
        "worker on, and the worker's own hourly task prunes, inside the relay process and "
        "through the relay's one writer thread, which the webhooks' writes queue on too. The "
        "bench sets the prune's last start (`periodic_runs`) so that the worker's schedule "
        "starts it right after the baseline; the old invoices' open deliveries are put off "
        "a year and `RELAY_VTEX_COALESCE_WINDOW=1h`, so the worker has nothing to send (no "
        "VTEX here). Start: the worker's claim in `periodic_runs`; end: its `prune.done` log "
        "line (after free_space).",
        "- **While pruning** counts the webhooks due between the prune's start and the end "
        "of its free_space; the verdict compares their p99 with the baseline's (same relay "
        "process, same settings).",
        "- **Sizes.** SQLite: the file and its WAL on disk; PostgreSQL: the schema's tables "
        "with their indexes and TOAST (`pg_total_relation_size`), and the relay's own "
        "`database_bytes()` (the whole database) before and after.",
        *([f"- **Server.** {server.description}; {server_extra(server)}."] if server else []),
    ]


def server_extra(server: PostgresServer) -> str:
    """Settings the bench's usual description leaves out that matter to pruning."""
    try:
        with pg_connect(server.url) as conn:
            rows = conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
                [["autovacuum", "plan_cache_mode"]],
            ).fetchall()
    except psycopg.Error:
        return "its autovacuum setting could not be read"
    text = ", ".join(f"{name}={setting}" for name, setting in rows)
    if ("autovacuum", "off") in rows:
        text += (
            " (autovacuum is off on this server: nothing vacuums or analyses the tables "
            "while the bench runs, unlike a server with the default autovacuum=on)"
        )
    return text


def details(o: Outcome) -> list[str]:
    prune = o.prune
    base, during, phase = Latency.of(o.baseline), Latency.of(o.window()), Latency.of(o.pruning)
    span = prune["prune_s"] + prune["free_space_s"]
    lines = [
        f"## {LABELS[o.kind]}, prune in {where(o)}",
        "",
        "Rows written: "
        + ", ".join(f"{table} {count:,}" for table, count in o.rows.items())
        + f" (in {o.filled_s:.0f} s).",
        "",
        "| webhooks | count | rate | p50 ms | p99 ms | max ms | not 202 | client lag p99 ms |",
        "|---|---|---|---|---|---|---|---|",
        latency_row("without pruning (baseline)", base),
        latency_row(f"while pruning ({span:.1f} s)", during),
        latency_row("whole prune phase", phase),
        "",
        f"p99 while pruning / without: **{ratio(o):.2f}x** (target ≤ 2x): "
        f"**{'met' if met(o) else 'not met'}**.",
        "",
        *cpu_lines(o),
        "",
        f"Prune: {took(o)}. Removed: "
        + ", ".join(f"{name} {count:,}" for name, count in prune["report"].items() if count)
        + ".",
        "",
        *size_lines(o),
        "",
    ]
    if prune.get("early"):
        lines += ["**The worker started the prune before the baseline ended.**", ""]
    if prune["transactions"]:
        lines += [
            "Transactions (wall: from queueing to commit; work: the batch function):",
            "",
            "| what | transactions | rows | wall p50 ms | wall p99 ms | wall max ms | "
            "work p50 ms | work max ms |",
            "|---|---|---|---|---|---|---|---|",
            *step_rows(prune["transactions"]),
            "",
        ]
    lines += [*timeline(o), ""]
    if prune["statements"]:
        lines += [
            f"Statements of the prune, the {TOP_STATEMENTS} that took longest in all:",
            "",
            "| statement | runs | total s | mean ms | max ms |",
            "|---|---|---|---|---|",
            *statement_rows(prune["statements"]),
            "",
        ]
    if o.notes:
        lines += ["Errors in the relay's log:", "", *[f"    {n[:300]}" for n in o.notes], ""]
    return lines


def cpu_lines(o: Outcome) -> list[str]:
    if not o.cpu:
        return []
    quiet = " and ".join(f"{q:.2f}" for q in o.quiet)
    return [
        "CPU in cores, on average over each phase (the machine has 2): baseline: "
        f"{o.cpu['baseline'].text()}; prune phase: {o.cpu['pruning'].text()}. Before each "
        f"phase, processes other than this run's used {quiet} cores (measured over 3 s; the "
        "bench waits for under 0.1)."
        + (
            " On SQLite the PostgreSQL server's CPU is other clients' work."
            if o.kind == "sqlite"
            else " The PostgreSQL server's CPU includes any other client's queries."
        )
        + (
            f" This is measurement {o.attempt}: the earlier ones were disturbed by other "
            "processes (another engineer's test runs) and measured again."
            if o.attempt > 1
            else ""
        )
        + (f" **Disturbed:** {o.disturbed()}." if o.disturbed() else "")
    ]


def latency_row(label: str, lat: Latency) -> str:
    return (
        f"| {label} | {lat.count:,} | {lat.rate:.0f}/s | {lat.p50:.1f} | {lat.p99:.1f} | "
        f"{lat.worst:.1f} | {lat.failed} | {lat.late_p99:.1f} |"
    )


def size_lines(o: Outcome) -> list[str]:
    prune = o.prune
    own = (
        f"the relay's `database_bytes()` {mib(prune['bytes_before'])} before, "
        f"{mib(prune['bytes_after'])} after"
    )
    if o.kind == "sqlite":
        b, a = o.size_before, o.size_after
        return [
            f"Size: file {mib(b['file'])} + WAL {mib(b['wal'])} before; file "
            f"{mib(a['file'])} + WAL {mib(a['wal'])} after; {own}."
        ]
    return [
        f"Size: the schema {mib(o.size_before['schema'])} before, "
        f"{mib(o.size_after['schema'])} after (PostgreSQL keeps the freed space in its "
        f"files for new rows; VACUUM FULL would give it back); {own} (whole database)."
    ]


def step_rows(transactions: list[dict[str, Any]]) -> list[str]:
    rows = []
    for step, label in STEP_LABELS.items():
        of = [t for t in transactions if t["step"] == step]
        if not of:
            continue
        wall = [t["wall_ms"] for t in of]
        work = [t["work_ms"] for t in of]
        rows.append(
            f"| {label} | {len(of):,} | {sum(t['rows'] for t in of):,} | "
            f"{statistics.median(wall):.1f} | {percentile(wall, 0.99):.1f} | {max(wall):.1f} | "
            f"{statistics.median(work):.1f} | {max(work):.1f} |"
        )
    return rows


def timeline(o: Outcome) -> list[str]:
    start = o.prune["started"]
    span = o.prune["prune_s"] + o.prune["free_space_s"]
    step = max(5.0, math.ceil(span / 20 / 5) * 5)
    during = [s for s in o.pruning if s.due >= start]
    watched = bool(o.prune["transactions"])
    lines = [
        f"Over time, from the prune's start ({step:.0f} s windows"
        + ("; transactions by the window they started in" if watched else "")
        + "):",
        "",
        "| from s | webhooks | p50 ms | p99 ms | max ms |"
        + (" prune transactions | their wall ms (sum) | steps |" if watched else ""),
        "|---|---|---|---|---|" + ("---|---|---|" if watched else ""),
    ]
    for at, lat in windows(during, start, step):
        row = f"| {at:.0f} | {lat.count} | {lat.p50:.1f} | {lat.p99:.1f} | {lat.worst:.1f} |"
        if watched:
            of = [t for t in o.prune["transactions"] if at <= t["at"] < at + step]
            steps = ", ".join(sorted({t["step"] for t in of})) or "—"
            row += f" {len(of)} | {sum(t['wall_ms'] for t in of):,.0f} | {steps} |"
        lines.append(row)
    return lines


def statement_rows(statements: dict[str, dict[str, float]]) -> list[str]:
    ranked = sorted(statements.items(), key=lambda item: -item[1]["total_ms"])
    rows = []
    for text, s in ranked[:TOP_STATEMENTS]:
        shown = text if len(text) <= 220 else text[:217] + "..."
        shown = shown.replace("|", "\\|")
        rows.append(
            f"| `{shown}` | {s['count']:,} | {s['total_ms'] / 1000:.1f} | "
            f"{s['total_ms'] / s['count']:.2f} | {s['max_ms']:.1f} |"
        )
    return rows

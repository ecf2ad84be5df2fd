"""The drain phase: a backlog of 1,000 invoices delivered by ``relay worker``, against a plain
httpx loop making the same requests to the same stand-in.

Two rounds on one database. First deliveries: each invoice's first PUT follows Get order
(SPEC §2). Then one new event per invoice, posted once the first round is delivered: the
invoices are checked, so each delivery is a PUT alone.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import TYPE_CHECKING, Any

from bench.clients import httpx_delivery_loop, post_webhooks, register_shipments
from bench.config import DRAIN_RATE_LIMIT, MAX_CONCURRENCY
from bench.databases import RelayDatabase
from bench.payloads import Shipment, drain_shipment, drain_webhook
from bench.processes import Relay, process_cpu_seconds, relay_worker, say
from bench.readings import ingest_counts, scrape, wait_all_delivered, wait_until_due

if TYPE_CHECKING:
    from bench.phases import Bench

PER_INVOICE = 10
"""Events of each invoice's first webhook; the second round adds one."""


def run_drain(bench: Bench, kind: str) -> None:
    invoices = bench.args.drain_invoices
    relay, db = bench.start_relay(kind, "drain-ingest", RELAY_WORKER="false")
    shipments = [drain_shipment(i) for i in range(invoices)]
    try:
        started = time.monotonic()
        asyncio.run(register_shipments(relay.url, shipments, concurrency=16))
        registered_s = time.monotonic() - started
        posted_s, stored, pending = post(relay, shipments, first=0, count=PER_INVOICE)
    finally:
        relay.stop()
    say(
        f"drain {kind}: {invoices} shipments registered in {registered_s:.1f}s, "
        f"{stored} events posted in {posted_s:.1f}s; {pending} pending"
    )
    if stored != invoices * PER_INVOICE or pending != invoices:
        raise RuntimeError(
            f"drain setup: expected {invoices * PER_INVOICE} events and {invoices} pending "
            f"deliveries, found {stored} and {pending}"
        )
    result = drain_round(bench, kind, db, "drain")
    result |= {"registered_s": registered_s, "posted_s": posted_s, "events": stored}
    if result["orders"] < invoices:
        raise RuntimeError(f"drain: {result['orders']} Get order for {invoices} first deliveries")
    bench.results[kind]["drain"] = result

    # Round two: the same invoices, checked by round one, one new event each.
    relay = Relay(
        f"{kind}-drain-again",
        bench.tmp / f"{kind}-drain-again",
        bench.relay_env(db, RELAY_WORKER="false"),
    )
    try:
        posted_s, stored, pending = post(relay, shipments, first=PER_INVOICE, count=1)
    finally:
        relay.stop()
    if stored != invoices or pending != invoices:
        raise RuntimeError(f"drain, second round: {stored} new events, {pending} pending")
    again = drain_round(bench, kind, db, "drain-checked")
    again |= {"registered_s": 0.0, "posted_s": posted_s, "events": stored}
    if again["orders"] or again["patches"]:
        raise RuntimeError(f"drain, second round: {again['orders']} Get order, not 0")
    bench.results[kind]["drain_checked"] = again


def post(relay: Relay, shipments: list[Shipment], first: int, count: int) -> tuple[float, int, int]:
    """One webhook per shipment with events ``first`` to ``first + count - 1``; the seconds it
    took, the new events stored and the deliveries pending (the worker is off)."""
    bodies = [drain_webhook(s, count, first) for s in shipments]
    started = time.monotonic()
    asyncio.run(post_webhooks(relay.url, bodies, concurrency=16))
    posted_s = time.monotonic() - started
    # Every post was answered 202, so committed: the counters are final.
    counts = ingest_counts(scrape(relay.client))
    return posted_s, counts["new_events"], counts["deliveries"]


def drain_round(bench: Bench, kind: str, db: RelayDatabase, name: str) -> dict[str, Any]:
    """``relay worker`` delivers every pending delivery; then the baseline makes the same
    requests (Get order first where the relay made one) with the very bodies the relay sent."""
    invoices = bench.args.drain_invoices
    # A delivery queued by new events may wait (a coalescing window) before it is due;
    # start the worker once all are due, so that the drain is not timed waiting for them.
    waited = wait_until_due(db)
    bench.standin("/_bench/reset", "POST")
    pg_before = bench.postgres_cpu()
    worker = relay_worker(
        f"{kind}-{name}-worker",
        bench.relay_env(db, RELAY_VTEX_RATE_LIMIT=str(DRAIN_RATE_LIMIT)),
        bench.tmp / f"{kind}-{name}-worker",
    )
    try:
        done_at = wait_all_delivered(db, worker, timeout=180)
        hwm = worker.status_kib("VmHWM")
        worker_cpu = process_cpu_seconds(worker.pid)
        pg_cpu = bench.postgres_cpu() - pg_before
    finally:
        code = worker.stop()
    stats = bench.standin("/_bench/stats")
    if stats["first"] is None:
        raise RuntimeError(f"{name}: the stand-in saw no PUT")
    if len(stats["invoices"]) != invoices:
        raise RuntimeError(f"{name}: {len(stats['invoices'])} invoices got a PUT, not {invoices}")
    drain_s = done_at - stats["first"]
    requests = stats["orders"] + stats["patches"] + stats["puts"]
    per_invoice_puts = [v[0] for v in stats["invoices"].values()]
    expected_events = max(v[1] for v in stats["invoices"].values())
    result: dict[str, Any] = {
        "invoices": invoices,
        "puts": stats["puts"],
        "bad": stats["bad"],
        "puts_per_invoice": stats["puts"] / invoices,
        "max_puts_one_invoice": max(per_invoice_puts),
        "invoices_missing_events": sum(
            1 for v in stats["invoices"].values() if v[1] != expected_events
        ),
        "drain_s": drain_s,
        "start_to_first_put_s": stats["first"] - worker.started,
        "start_to_done_s": done_at - worker.started,
        "puts_per_s": stats["puts"] / drain_s,
        "orders": stats["orders"],
        "patches": stats["patches"],
        "requests": requests,
        "requests_per_s": requests / drain_s,
        "invoices_per_s": invoices / drain_s,
        "worker_vmhwm_kib": hwm,
        "worker_cpu_s": worker_cpu,
        "postgres_cpu_s": pg_cpu,
        "worker_exit": code,
        "waited_due_s": waited,
        "log_problems": worker.log_problems(),
    }
    say(
        f"{name} {kind}: {stats['puts']} PUTs and {stats['orders']} Get order in "
        f"{drain_s:.2f}s after the first PUT: {result['requests_per_s']:.0f} requests/s"
    )
    result |= baseline(bench, get_first=stats["orders"] >= invoices)
    say(
        f"{name} {kind}: plain httpx loop {result['baseline_puts_per_s']:.0f} invoices/s, "
        f"{result['baseline_requests_per_s']:.0f} requests/s"
    )
    return result


def baseline(bench: Bench, get_first: bool) -> dict[str, Any]:
    """The same requests (Get order before each PUT when ``get_first``), the very bodies the
    relay sent (as the stand-in received them), the same stand-in and concurrency."""
    sent = [(order, invoice, body) for order, invoice, body in bench.standin("/_bench/bodies")]
    rounds = bench.args.baseline_rounds
    bench.standin("/_bench/reset", "POST")
    loop = httpx_delivery_loop
    asyncio.run(loop(bench.standin_url, sent[:100], MAX_CONCURRENCY, get_first))  # warm-up
    elapsed = asyncio.run(loop(bench.standin_url, sent * rounds, MAX_CONCURRENCY, get_first))
    stats = bench.standin("/_bench/stats")
    expected = min(100, len(sent)) + len(sent) * rounds
    if stats["puts"] != expected or stats["bad"]:
        raise RuntimeError(f"baseline: stand-in counted {stats['puts']} PUTs, not {expected}")
    return {
        "baseline_puts": len(sent) * rounds,
        "baseline_s": elapsed,
        "baseline_puts_per_s": len(sent) * rounds / elapsed,
        "baseline_get_order_first": get_first,
        "baseline_requests_per_s": len(sent) * rounds * (2 if get_first else 1) / elapsed,
        "body_bytes": statistics.mean(
            len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
            for _, _, body in sent
        ),
    }

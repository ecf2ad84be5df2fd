"""``python -m bench.console``: how fast each console page answers (SPEC §10: within 200 ms)
on a database of 100,000 shipments, 1,000,000 events and 100,000 deliveries, on SQLite and on
PostgreSQL. Writes bench/CONSOLE.md (p50 and worst of each page, and the target's verdict).

Each database is filled (bench/console_data.py), then ``relay serve`` (worker off: it would
start sending the 5,000 open deliveries) is started on it, signed in as admin, and each page
is asked ``--rounds`` times, one request at a time, after one unmeasured request.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import console_data
from bench.databases import PostgresServer, new_sqlite
from bench.processes import clean_env, loadavg, say
from bench.report import machine
from tests.support.relay_process import RelayProcess

TARGET_MS = 200.0
ADMIN = "bench-console-admin"
N = console_data.SHIPMENTS


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    path: str
    form: dict[str, str] | None = None


PAGES = (
    Page("Overview", "GET", "/console"),
    Page(
        "Search: tracking number",
        "GET",
        f"/console/search?q={console_data.tracking_number(N // 2)}",
    ),
    Page("Search: orderId", "GET", f"/console/search?q={console_data.order_id(N // 3)}"),
    Page(
        "Search: invoice number", "GET", f"/console/search?q={console_data.invoice_number(N // 4)}"
    ),
    Page("Search: webhook id", "GET", f"/console/search?q={console_data.webhook_id(N // 5)}"),
    Page("Search: nothing found", "GET", "/console/search?q=NOTHING-LIKE-THIS"),
    Page(
        "Shipment (10 events, delivered)",
        "GET",
        f"/console/shipments/{console_data.tracking_number(N // 2)}",
    ),
    Page("Webhook", "GET", f"/console/webhooks/{console_data.webhook_id(N // 5)}"),
    Page("Deliveries: all, first page", "GET", "/console/deliveries"),
    Page("Deliveries: all, page 2,000", "GET", f"/console/deliveries?before={N - 50_000}"),
    Page("Deliveries: dead", "GET", "/console/deliveries?state=dead"),
    Page("Deliveries: dead, carrier dhl", "GET", "/console/deliveries?state=dead&carrier=dhl"),
    Page(
        "Deliveries: account, status 400",
        "GET",
        "/console/deliveries?account=benchstore&status=400",
    ),
    Page("Deliveries: last hour (none)", "GET", "/console/deliveries?since=2099-01-01"),
    Page(
        "Retry all: confirmation (counts)",
        "POST",
        "/console/deliveries/retry-all",
        {"carrier": "dhl"},
    ),
    Page("Quarantine", "GET", "/console/quarantine"),
    Page(
        "Quarantine: one carrier, page 2",
        "GET",
        "/console/quarantine?carrier=dhl&after=wq_" + "0" * 34 + "70",
    ),
    Page("Accounts", "GET", "/console/accounts"),
)


@dataclass
class Measured:
    page: Page
    status: int
    times_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def worst(self) -> float:
        return max(self.times_ms)


def signed_in(client: httpx.Client) -> str:
    """Sign in; returns the session's CSRF token (the client keeps the cookie)."""
    answer = client.post("/console/sign-in", data={"token": ADMIN})
    if answer.status_code != 303:
        raise SystemExit(f"bench: could not sign in to the console: {answer.status_code}")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/console").text)
    if found is None:
        raise SystemExit("bench: the console's Overview has no CSRF token")
    return found.group(1)


def measure(relay: RelayProcess, rounds: int) -> list[Measured]:
    results = []
    with httpx.Client(base_url=relay.url, timeout=30) as client:
        csrf = signed_in(client)
        for page in PAGES:
            times = []
            status = 0
            for round_ in range(rounds + 1):
                started = time.perf_counter()
                if page.method == "GET":
                    answer = client.get(page.path)
                else:
                    answer = client.post(page.path, data={**(page.form or {}), "csrf": csrf})
                elapsed = (time.perf_counter() - started) * 1000
                status = answer.status_code
                if round_:
                    times.append(elapsed)
            results.append(Measured(page, status, times))
            say(f"{page.name}: p50 {statistics.median(times):.1f} ms, worst {max(times):.1f} ms")
    return results


def run_one(
    kind: str, workdir: Path, server: PostgresServer | None, rounds: int
) -> tuple[dict[str, int], list[Measured], float]:
    database = new_sqlite(workdir) if kind == "sqlite" else server.new_schema()  # type: ignore[union-attr]
    say(f"{kind}: filling {database.url.split('?')[0]}")
    started = time.monotonic()
    counts = console_data.fill(database.url)
    filled = time.monotonic() - started
    say(f"{kind}: filled in {filled:.0f} s: {counts}")
    env = {
        **clean_env(),
        "RELAY_DATABASE_URL": database.url,
        "RELAY_ADMIN_TOKEN": ADMIN,
        "RELAY_WORKER": "false",
        "RELAY_VTEX_ACCOUNT": "benchstore",
        "RELAY_SHUTDOWN_GRACE": "0s",
        "RELAY_LOG_LEVEL": "WARNING",
    }
    with RelayProcess(workdir, env) as relay:
        return counts, measure(relay, rounds), filled


def render(results: dict[str, tuple[dict[str, int], list[Measured], float]], rounds: int) -> str:
    facts = machine()
    lines = [
        "# Console pages (SPEC §10: each within 200 ms)",
        "",
        f"`python -m bench.console` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"machine: {facts.get('cpu', '?')}, load {loadavg()}.",
        f"Each page asked {rounds} times, one request at a time, by one signed-in admin over "
        "loopback (httpx), after one request not counted; times are the whole HTTP exchange.",
        "",
    ]
    for kind, (counts, measured, filled) in results.items():
        met = all(m.worst <= TARGET_MS and m.status < 400 for m in measured)
        lines += [
            f"## {kind}",
            "",
            "Rows: "
            + ", ".join(f"{table} {count:,}" for table, count in counts.items())
            + f" (written in {filled:.0f} s).",
            "",
            "| page | status | p50 ms | worst ms | within 200 ms |",
            "|---|---|---|---|---|",
        ]
        for m in measured:
            ok = "yes" if m.worst <= TARGET_MS else "**no**"
            lines.append(f"| {m.page.name} | {m.status} | {m.p50:.1f} | {m.worst:.1f} | {ok} |")
        lines += [
            "",
            f"Every page within 200 ms (worst case): **{'met' if met else 'not met'}**.",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgresql-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("CONSOLE.md"))
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    server = PostgresServer(args.postgresql_url) if "postgresql" in kinds else None
    if server is not None:
        server.probe()
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="relay-console-bench-") as tmp:
            for kind in kinds:
                workdir = Path(tmp) / kind
                workdir.mkdir()
                results[kind] = run_one(kind, workdir, server, args.rounds)
                if server is not None:
                    server.drop_schemas(keep=False)
    finally:
        if server is not None:
            server.drop_schemas(keep=False)
    args.out.write_text(render(results, args.rounds))
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()

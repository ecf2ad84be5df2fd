"""What sends the load: wrk with bench/sign.lua (ingest), a minimal HTTP/1.1 client of its own
(registrations and the burst), and the drain's baseline, a plain httpx loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.config import ADMIN_TOKEN, APP_KEY, APP_TOKEN, LUA
from bench.payloads import Shipment, first_request, signed_headers

# -- wrk ------------------------------------------------------------------------------------


def run_wrk(url: str, connections: int, duration: int, request_file: Path) -> dict[str, Any]:
    """wrk with one thread (the servers get the other core and a half), sign.lua's requests."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    argv += ["-s", str(LUA), url, "--", str(request_file), "1"]
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


def check_signed_post(client: httpx.Client, request_file: Path) -> None:
    """One request of the file, sent by Python first: a wrong signature fails here, clearly."""
    body, headers = first_request(request_file)
    response = client.post("/webhooks/generic", content=body, headers=headers)
    if response.status_code != 202:
        raise RuntimeError(f"a signed webhook got {response.status_code}: {response.text[:300]}")


# -- a minimal HTTP/1.1 client --------------------------------------------------------------


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


# -- the drain's baseline -------------------------------------------------------------------


async def bounded(concurrency: int, jobs: Iterable[Callable[[], Any]]) -> None:
    """Run the coroutine factories with at most ``concurrency`` in flight."""
    queue = list(jobs)
    queue.reverse()

    async def lane() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(lane() for _ in range(concurrency)))


async def httpx_delivery_loop(
    base_url: str,
    sent: list[tuple[str, str, dict[str, Any]]],
    concurrency: int,
    get_order_first: bool,
) -> float:
    """The drain baseline: the requests a delivery makes, ``concurrency`` deliveries at a
    time, one pooled client: Get order first (its JSON read) when ``get_order_first``, then
    the PUT of the body; the headers and JSON encoding are the relay's (httpx ``json=``)."""
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
                if get_order_first:
                    order_url = f"{base_url}/api/oms/pvt/orders/{order_id}"
                    got = await client.get(order_url, headers=headers)
                    got.raise_for_status()
                    got.json()
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

"""The prune benchmark's webhooks: a steady, open-loop rate of signed generic-carrier webhooks
(Standard Webhooks, bench/config.py's secret), each with a new tracking number that names its
invoice (so each registers a shipment and queues a delivery, as carriers' webhooks do).

Open loop: webhook ``i`` is due at ``start + i / rate`` whatever the earlier ones are doing,
each on its own connection if need be (up to 512), so a stalled relay does not slow the load
down (no coordinated omission). Latency is counted from when the webhook was due to when its answer
arrived.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bench.clients import raw_request
from bench.payloads import compact, event, signed_headers

MAX_CONNECTIONS = 512


@dataclass(frozen=True)
class Sent:
    due: float  # time.monotonic() the webhook was due
    latency_ms: float  # from due to the answer
    late_ms: float  # how late the client sent it (its own lag, included in latency_ms)
    status: int  # 0: no answer (the connection failed)


def webhook(prefix: str, i: int) -> bytes:
    """Three events of a new shipment that names its invoice (about 600 bytes)."""
    number = f"{prefix}{i:08d}BR"
    first = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(seconds=i)
    return compact(
        {
            "trackingNumber": number,
            "orderId": f"{prefix}{i:08d}-01",
            "invoiceNumber": f"NF{prefix}{i:08d}",
            "events": [
                event(first + timedelta(hours=j), status, j, f"Objeto {status} (etapa {j + 1})")
                for j, status in enumerate(("info_received", "in_transit", "out_for_delivery"))
            ],
        }
    )


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Keep-alive HTTP/1.1 connections to the relay, one request at a time each; the most
    recently used first (those idle longest are the ones uvicorn closes, after 5 s). A
    minimal client on purpose (as bench/clients.py's): httpx's pool spends CPU per request
    that grows with the requests waiting, so that a relay stalling for a second would turn
    the client, not the relay, into the bottleneck."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.idle: list[Connection] = []
        self.opened = 0
        self.most = 0
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def _connection(self) -> Connection:
        while self.idle:
            conn = self.idle.pop()
            if not conn[0].at_eof():
                return conn
            conn[1].close()
            self.opened -= 1
        self.opened += 1
        self.most = max(self.most, self.opened)
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, request: bytes) -> int:
        """Send one request; its status (0: no answer twice over)."""
        async with self.slots:
            return await self._post(request)

    async def _post(self, request: bytes) -> int:
        for _ in range(2):  # once more on a fresh connection if the server had closed this one
            conn = await self._connection()
            reader, writer = conn
            try:
                writer.write(request)
                status_line = await reader.readline()
                if not status_line:
                    raise ConnectionResetError
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError):
                writer.close()
                self.opened -= 1
                continue
            self.idle.append(conn)
            return int(status_line.split()[1])
        return 0

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def request(prefix: str, i: int) -> bytes:
    body = webhook(prefix, i)
    return raw_request("POST", "/webhooks/generic", signed_headers(body), body)


async def _send(pool: Pool, prefix: str, i: int, due: float) -> Sent:
    sent_at = time.monotonic()
    status = await pool.post(request(prefix, i))
    done = time.monotonic()
    return Sent(due, (done - due) * 1000, (sent_at - due) * 1000, status)


async def steady(
    url: str,
    rate: float,
    prefix: str,
    min_seconds: float,
    finished: Callable[[], bool] = lambda: True,
    max_seconds: float = 3600.0,
) -> list[Sent]:
    """Send ``rate`` webhooks a second for at least ``min_seconds`` and until ``finished()``
    (asked once each webhook is due), at most ``max_seconds``; every webhook's outcome."""
    pool = Pool(url)
    tasks = []
    start = time.monotonic()
    i = 0
    try:
        while True:
            due = start + i / rate
            if due - start >= max_seconds or (due - start >= min_seconds and finished()):
                break
            # Always through the event loop, late or not, so answers are read meanwhile.
            await asyncio.sleep(max(due - time.monotonic(), 0))
            tasks.append(asyncio.create_task(_send(pool, prefix, i, due)))
            i += 1
        return list(await asyncio.gather(*tasks))
    finally:
        pool.close()


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at least ``share`` of the values are at or below."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


@dataclass(frozen=True)
class Latency:
    count: int
    rate: float
    p50: float
    p99: float
    worst: float
    failed: int
    late_p99: float  # the client's own lag at p99 (ms), to show it kept its schedule

    @classmethod
    def of(cls, sent: list[Sent]) -> Latency:
        times = [s.latency_ms for s in sent]
        span = (max(s.due for s in sent) - min(s.due for s in sent)) if len(sent) > 1 else 0.0
        return cls(
            count=len(sent),
            rate=(len(sent) - 1) / span if span else math.nan,
            p50=percentile(times, 0.50),
            p99=percentile(times, 0.99),
            worst=max(times, default=math.nan),
            failed=sum(1 for s in sent if s.status != 202),
            late_p99=percentile([s.late_ms for s in sent], 0.99),
        )

    def text(self) -> str:
        return (
            f"{self.count} webhooks at {self.rate:.0f}/s: p50 {self.p50:.1f} ms, "
            f"p99 {self.p99:.1f} ms, max {self.worst:.1f} ms, {self.failed} not 202"
        )


def windows(sent: list[Sent], start: float, seconds: float) -> list[tuple[float, Latency]]:
    """The webhooks due in each ``seconds`` from ``start``: (the window's start, its latency)."""
    buckets: dict[int, list[Sent]] = {}
    for s in sent:
        buckets.setdefault(int((s.due - start) // seconds), []).append(s)
    return [(k * seconds, Latency.of(buckets[k])) for k in sorted(buckets)]

"""Connections end to end (SPEC §12): ``relay serve`` as a process against slow and greedy
clients, and what it says when it cannot listen.

- 200 slowloris connections are closed after ``RELAY_READ_TIMEOUT`` with a JSON 408, while
  webhooks and probes on fresh connections are answered promptly throughout;
- a body that never finishes is closed too (408, or just closed when the relay has answered);
- past ``RELAY_MAX_CONNECTIONS`` a request gets a JSON 503, and is served once others close;
- a port it cannot take is one line on stderr and exit 1, nothing opened;
- ``relay.ready`` is logged only once the port accepts connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.relay_process import RELAY, RelayProcess
from tests.support.signing import standard_webhooks_headers

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
GENERIC_SECRET = "generic-secret-connections-4e1"
READ_TIMEOUT = 1.0
TRICKLE_EVERY = 0.3
CLOSED_BY = READ_TIMEOUT + 3.0
"""Each slow connection must be closed by then (trickling its request whole takes ~40 s)."""
PROMPT = 2.0
"""Every normal request during the attack is answered within this."""
SLOW_CONNECTIONS = 200
BASE_ENV = {"RELAY_WORKER": "false", "RELAY_SHUTDOWN_GRACE": "0s"}


def signed_webhook() -> tuple[bytes, dict[str, str]]:
    tracking = "CN" + uuid.uuid4().hex[:10].upper()
    body = json.dumps(
        {
            "trackingNumber": tracking,
            "orderId": f"{tracking}-01",
            "invoiceNumber": "NF-1",
            "events": [
                {
                    "time": "2026-11-20T09:15:00-03:00",
                    "status": "in_transit",
                    "description": "Em trânsito",
                }
            ],
        }
    ).encode()
    return body, standard_webhooks_headers(GENERIC_SECRET, body)


def split_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one raw HTTP/1.1 answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    env = BASE_ENV | {
        "RELAY_READ_TIMEOUT": f"{READ_TIMEOUT}s",
        "RELAY_CARRIERS__GENERIC__SECRET": GENERIC_SECRET,
    }
    with RelayProcess(tmp_path_factory.mktemp("relay"), env) as process:
        yield process


async def trickle(port: int, head: bytes, slow: bytes) -> tuple[float | None, bytes]:
    """Sends ``head``, then ``slow`` a byte every TRICKLE_EVERY until the relay closes or
    CLOSED_BY has passed: (seconds until the relay closed, or None; what it answered)."""
    opened = time.monotonic()  # before connecting: the relay's clock starts later, never sooner
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def answer() -> bytes:
        with contextlib.suppress(ConnectionResetError):
            return await reader.read()  # until the relay closes
        return b"<reset>"

    answered = asyncio.create_task(answer())
    try:
        writer.write(head)
        for index in range(len(slow)):
            if answered.done() or time.monotonic() - opened > CLOSED_BY:
                break
            writer.write(slow[index : index + 1])
            await asyncio.wait([answered], timeout=TRICKLE_EVERY)
        if not answered.done():
            answered.cancel()
            return None, b""
        return time.monotonic() - opened, answered.result()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def normal_traffic(url: str, stop: asyncio.Event) -> list[tuple[str, int, float]]:
    """A probe and a signed webhook, each on a fresh connection, until ``stop``."""
    seen: list[tuple[str, int, float]] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        while not stop.is_set():
            started = time.monotonic()
            answer = await client.get("/livez")
            seen.append(("livez", answer.status_code, time.monotonic() - started))
            body, headers = signed_webhook()
            started = time.monotonic()
            answer = await client.post("/webhooks/generic", content=body, headers=headers)
            seen.append(("webhook", answer.status_code, time.monotonic() - started))
            await asyncio.sleep(0.1)
    return seen


def test_slowloris_connections_are_closed_while_others_are_served(relay: RelayProcess) -> None:
    head = b"GET /livez HTTP/1.1\r\nHo"
    slow = b"st: relay\r\nX-Slow: " + b"z" * 100 + b"\r\n\r\n"

    async def attack() -> tuple[list[tuple[float | None, bytes]], list[tuple[str, int, float]]]:
        stop = asyncio.Event()
        traffic = asyncio.create_task(normal_traffic(relay.url, stop))
        slow_ones = await asyncio.gather(
            *(trickle(relay.port, head, slow) for _ in range(SLOW_CONNECTIONS))
        )
        stop.set()
        return slow_ones, await traffic

    slow_ones, traffic = asyncio.run(attack())

    still_open = [closed for closed, _ in slow_ones if closed is None]
    assert not still_open, f"{len(still_open)} slow connections still open after {CLOSED_BY}s"
    times = sorted(closed for closed, _ in slow_ones if closed is not None)
    assert times[0] >= READ_TIMEOUT - 0.1, f"closed before RELAY_READ_TIMEOUT: {times[0]:.2f}s"
    for _, raw in slow_ones:
        status, headers, body = split_answer(raw)
        assert status == 408, raw
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "request_timeout"
    assert len(traffic) >= 10, traffic
    assert {(what, status) for what, status, _ in traffic} == {("livez", 200), ("webhook", 202)}
    slowest = max(traffic, key=lambda seen: seen[2])
    assert slowest[2] < PROMPT, f"a normal request waited {slowest[2]:.2f}s: {slowest}"


def test_a_body_that_never_finishes_is_answered_408_and_closed(relay: RelayProcess) -> None:
    body, headers = signed_webhook()
    head = (
        b"POST /webhooks/generic HTTP/1.1\r\nHost: relay\r\n"
        + b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items())
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    closed, raw = asyncio.run(trickle(relay.port, head, body))

    assert closed is not None, f"still open after {CLOSED_BY}s"
    assert READ_TIMEOUT - 0.1 <= closed <= CLOSED_BY
    status, answer_headers, answer = split_answer(raw)
    assert status == 408, raw
    assert answer_headers["connection"] == "close"
    assert json.loads(answer) == {
        "error": "request_timeout",
        "detail": "the request did not arrive whole within 1s; nothing was stored",
    }


def test_a_body_still_trickling_after_the_answer_is_closed_without_a_second_one(
    relay: RelayProcess,
) -> None:
    """The relay answers an unknown carrier without reading the body; a client still
    trickling it is cut off at the deadline, and gets no 408 after its 404."""
    head = b"POST /webhooks/no-such-carrier HTTP/1.1\r\nHost: relay\r\nContent-Length: 200\r\n\r\n"
    closed, raw = asyncio.run(trickle(relay.port, head, b"{" * 200))

    assert closed is not None, f"still open after {CLOSED_BY}s"
    assert READ_TIMEOUT - 0.1 <= closed <= CLOSED_BY
    assert raw.count(b"HTTP/1.1 ") == 1, raw
    status, _, answer = split_answer(raw)
    assert status == 404
    assert json.loads(answer)["error"] == "not_found"


def test_connections_past_the_limit_get_a_json_503(tmp_path: Path) -> None:
    limit = 5
    env = BASE_ENV | {"RELAY_MAX_CONNECTIONS": str(limit), "RELAY_READ_TIMEOUT": "30s"}
    with RelayProcess(tmp_path, env) as relay, contextlib.ExitStack() as held:
        relay.client.close()  # its keep-alive connection would count against the limit
        time.sleep(0.3)

        def hold() -> None:
            held.enter_context(socket.create_connection(("127.0.0.1", relay.port)))
            time.sleep(0.2)  # accepted by the relay before the next request arrives

        def fresh_get() -> httpx.Response:
            return httpx.get(relay.url + "/livez", headers={"Connection": "close"})

        for _ in range(limit - 1):
            hold()
        assert fresh_get().status_code == 200, "the limit-th connection must be served"

        hold()
        refused = fresh_get()
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["error"] == "unavailable"
        assert refused.json()["detail"]

        held.close()
        deadline = time.monotonic() + 2
        while fresh_get().status_code != 200:
            assert time.monotonic() < deadline, "still refused after the held connections closed"
            time.sleep(0.05)


def relay_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The environment RelayProcess gives the relay, plus ``extra``."""
    return {key: value for key, value in os.environ.items() if not key.startswith("RELAY_")} | {
        "RELAY_DATABASE_URL": f"sqlite:///{workdir / 'relay.db'}",
        **BASE_ENV,
        **extra,
    }


@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1", "address already in use"), ("192.0.2.1", "cannot assign requested address")],
    ids=["port-taken", "address-not-local"],
)
def test_a_port_it_cannot_take_is_one_line_and_exit_1(
    tmp_path: Path, host: str, reason: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(RELAY), "serve", "--host", host, "--port", str(port)],
            cwd=tmp_path,
            env=relay_env(tmp_path),
            capture_output=True,
            timeout=30,
            check=False,
        )
    stderr, stdout = result.stderr.decode(), result.stdout.decode()
    assert result.returncode == 1, stderr + stdout
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert f"{host}:{port}" in lines[0]
    assert reason in lines[0]
    assert "RELAY_PORT" in lines[0]
    assert "--port" in lines[0]
    assert "Traceback" not in stderr + stdout
    assert "relay.ready" not in stdout
    assert "relay.started" not in stdout  # the lifespan never ran: no worker, nothing served


SLOW_TO_LISTEN = """
import asyncio, sys
from uvicorn.lifespan.on import LifespanOn

started = LifespanOn.startup

async def startup(self):
    await started(self)
    await asyncio.sleep(1.5)  # the app is up; the port does not listen yet

LifespanOn.startup = startup
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_relay_ready_is_logged_only_once_the_port_accepts_connections(tmp_path: Path) -> None:
    """The relay is held 1.5 s between its lifespan and listening: ``relay.ready`` must
    not appear in that window."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_arguments = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / "relay.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", SLOW_TO_LISTEN, *serve_arguments],
            cwd=tmp_path,
            env=relay_env(tmp_path, PYTHONPATH=str(ROOT)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    refused_while_starting = 0
    try:
        deadline = time.monotonic() + 20
        while "relay.ready" not in (text := log_path.read_text()):
            assert process.poll() is None, text
            assert time.monotonic() < deadline, f"no relay.ready:\n{text}"
            if "relay.started" in text:
                with contextlib.suppress(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    raise AssertionError("the port accepted before the lifespan ended")
                refused_while_starting += 1
            time.sleep(0.02)
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        events = [record["event"] for record in records]
        ready = records[events.index("relay.ready")]
        assert ready["listening"] == f"127.0.0.1:{port}"
        # What it is configured with comes first, once, with what is missing as warnings.
        configured = records[events.index("relay.configured")]
        assert events.index("relay.configured") < events.index("relay.ready")
        assert configured["database"] == "sqlite"
        assert "relay.configuration_warning" in events
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    # The window was there to fall into (else this test proves nothing).
    assert refused_while_starting > 10, log_path.read_text()

"""``relay serve`` started as a real process, driven over HTTP, its log captured."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

RELAY = Path(sys.executable).with_name("relay")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RelayProcess:
    """``with RelayProcess(tmp_path, env) as relay:``; ``relay.client`` talks to it.

    ``command`` replaces the ``relay`` executable (e.g. ``python -m tests.support.patched_relay``);
    ``serve --host ... --port ...`` is appended to it.
    """

    def __init__(
        self, workdir: Path, env: dict[str, str], command: Sequence[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.command = list(command) if command is not None else [str(RELAY)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"relay-{self.port}.log"
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("RELAY_")
        } | {
            "RELAY_DATABASE_URL": f"sqlite:///{workdir / 'relay.db'}",
            "RELAY_WORKER_POLL_INTERVAL": "0.2s",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # time.monotonic() when start() started the process
        self.ready_seconds = 0.0
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def start(self, ready_timeout: float = 20.0, poll_interval: float = 0.1) -> RelayProcess:
        """Start it and wait for ``/readyz`` to answer 200, asking every ``poll_interval``
        seconds; ``ready_seconds`` is then the time from the start to that answer."""
        with self.log_path.open("ab") as log:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [*self.command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"relay exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.client.get("/readyz").status_code == 200:
                    self.ready_seconds = time.monotonic() - self.started_at
                    return self
            except httpx.TransportError:
                pass
            time.sleep(poll_interval)
        raise AssertionError(f"relay not ready in {ready_timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> RelayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        self.client.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """Every log line, each of which must be a JSON object."""
        return [json.loads(line) for line in self.log().splitlines() if line.strip()]

    def admin(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def command_line(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``relay <args>`` (prune, reconcile, backup...) in this relay's directory, with its
        settings, as an operator beside it would run it."""
        return subprocess.run(
            [str(RELAY), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


class RelayFleet:
    """Starts relays that share ``base_env`` (one database, one VTEX stand-in) in ``workdir``;
    :meth:`close` stops whatever still runs."""

    def __init__(self, workdir: Path, base_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.base_env = base_env
        self._stack = contextlib.ExitStack()

    def start(
        self, env: dict[str, str] | None = None, command: Sequence[str] | None = None
    ) -> RelayProcess:
        process = RelayProcess(self.workdir, self.base_env | (env or {}), command=command)
        return self._stack.enter_context(process)

    def close(self) -> None:
        self._stack.close()

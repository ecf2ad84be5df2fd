"""The relay in this process or as a command: ``create_app`` served by uvicorn on loopback
(in a thread), and ``relay`` run as a subprocess with a clean environment."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from app.api.app import create_app, served
from app.settings import Settings
from tests.support.relay_process import RELAY, free_port


@contextlib.contextmanager
def served_app(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` listening on loopback; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            served(create_app(settings)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the relay stopped while starting"
        assert time.monotonic() < deadline, "the relay did not start within 10 s"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_relay(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``relay *args`` in ``cwd`` with no ``RELAY_*`` variable but ``env``."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("RELAY_")}
    return subprocess.run(
        [str(RELAY), *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

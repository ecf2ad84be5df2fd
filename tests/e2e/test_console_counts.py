"""The console's Overview counts what every process did (SPEC §10): webhooks taken by a
``relay serve`` without a worker, and deliveries made by a separate ``relay worker``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.console_browser import (
    ADMIN,
    generic_payload,
    post_generic,
    relay_env,
    unique,
)
from tests.support.relay_process import RELAY, RelayProcess
from tests.support.vtex_standin import VtexStandIn


def overview_text(relay: RelayProcess, cookie: str) -> str:
    page = httpx.get(f"{relay.url}/console", headers={"Cookie": f"relay_console={cookie}"})
    return re.sub(r"<[^>]+>", " ", page.text)


def test_deliveries_of_a_separate_worker_process_reach_the_overview(tmp_path: Path) -> None:
    with VtexStandIn() as vtex:
        env = relay_env(vtex.url) | {"RELAY_MAX_DELIVERY_AGE": "72h"}
        with RelayProcess(tmp_path, env | {"RELAY_WORKER": "false"}) as serve:
            worker_env = {
                key: value for key, value in os.environ.items() if not key.startswith("RELAY_")
            } | serve.env
            worker_env.pop("RELAY_WORKER")
            with (tmp_path / "worker.log").open("wb") as log:
                worker = subprocess.Popen(
                    [str(RELAY), "worker"], cwd=tmp_path, env=worker_env, stdout=log, stderr=log
                )
            try:
                orders = [unique("CNT") for _ in range(3)]
                for order_id in orders:
                    payload = generic_payload(unique("TC"), order_id, "NF-9", ["Postado"])
                    assert post_generic(serve, payload).status_code == 202
                vtex.wait_for(lambda v: len(v.puts()) >= 3, 20)
                signed = httpx.post(f"{serve.url}/console/sign-in", data={"token": ADMIN})
                cookie = signed.cookies["relay_console"]
                deadline = time.monotonic() + 15
                text = overview_text(serve, cookie)
                while "deliveries: 3" not in text or "webhooks accepted: 3" not in text:
                    assert time.monotonic() < deadline, text
                    time.sleep(0.5)
                    text = overview_text(serve, cookie)
            finally:
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=20) == 0, (tmp_path / "worker.log").read_text()

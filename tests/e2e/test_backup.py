"""``relay backup PATH`` while webhooks keep coming (SPEC §11): the copy is a valid SQLite
database holding every webhook acknowledged before the backup began, and a relay started on
it (the README's restore) delivers what was pending."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.relay_process import RelayProcess
from tests.support.vtex_standin import VtexStandIn
from tests.support.webhook_load import (
    descriptions_by_path,
    event,
    generic,
    missing,
    post_signed,
    unique,
    wait_until,
)

pytestmark = pytest.mark.e2e

SECRET = "whsec_" + "YmFja3VwLXNlY3JldC1mb3ItZTJlLXRlc3RzLXg="


def webhook() -> dict[str, Any]:
    tracking = unique("BK")
    order_id = f"{uuid.uuid4().int % 10**13:013d}-01"
    return generic(tracking, [event(tracking, 1), event(tracking, 2)], order_id, "NF1")


def test_a_backup_taken_while_serving_holds_what_was_acknowledged_and_restores(
    tmp_path: Path,
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    copy = tmp_path / "relay-backup.db"
    env = {"RELAY_CARRIERS__GENERIC__SECRET": SECRET, "RELAY_WORKER": "false"}
    acknowledged: list[tuple[float, dict[str, Any]]] = []
    stop = threading.Event()

    with RelayProcess(served, env) as relay:

        def post_until_stopped() -> None:
            while not stop.is_set():
                payload = webhook()
                if post_signed(relay.client, SECRET, payload).status_code == 202:
                    acknowledged.append((time.monotonic(), payload))

        poster = threading.Thread(target=post_until_stopped)
        poster.start()
        try:
            wait_until(lambda: len(acknowledged) >= 50, 30, "webhooks acknowledged")
            began = time.monotonic()
            backup = relay.command_line("backup", str(copy))
            wait_until(lambda: acknowledged[-1][0] > time.monotonic() - 0.5, 10, "more posts")
        finally:
            stop.set()
            poster.join()

    assert backup.returncode == 0, backup.stderr
    assert "quick check: ok" in backup.stdout
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = [payload for at, payload in acknowledged if at < began]
    after = [payload for at, payload in acknowledged if at >= began]
    assert before
    assert after, "no webhook came while the backup was taken"

    # Restore: the copy becomes a new relay's database; its worker delivers what waited.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(copy, restored / "relay.db")
    with (
        VtexStandIn() as vtex,
        RelayProcess(
            restored,
            env
            | {
                "RELAY_WORKER": "true",
                "RELAY_VTEX_BASE_URL": vtex.url,
                "RELAY_VTEX_ACCOUNT": "backupstore",
                "RELAY_VTEX_APP_KEY": "key",
                "RELAY_VTEX_APP_TOKEN": "token",
            },
        ),
    ):
        expected = descriptions_by_path(before)
        wait_until(
            lambda: not missing(vtex, expected),
            60,
            lambda: f"not delivered from the restored copy: {missing(vtex, expected)}",
        )

"""A full disk loses nothing (SPEC §11): the relay's SQLite file lives on a small tmpfs that the
test fills. While it is full, webhooks get 503 with ``Retry-After`` (202 only when stored:
SQLite may still have room in its write-ahead log), ``/readyz`` says the disk is full; once
space returns the relay recovers by itself and every acknowledged webhook reaches VTEX.

Why a real filesystem and not ``PRAGMA max_page_count``: the cap makes SQLite refuse inside
its own page allocator, while a full disk fails the WAL append and the checkpoint's writes
(``write()`` returning ENOSPC), which is the path operators meet. Mounting a tmpfs needs
root: the test is skipped, with that reason, where it cannot mount.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
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

SECRET = "whsec_" + "ZGlzay1mdWxsLXNlY3JldC1mb3ItZTJlLXRlc3Rz"
TMPFS_BYTES = 24 * 1024 * 1024


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk refuses: no byte is left."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):
            with contextlib.suppress(OSError):
                while os.write(descriptor, b"\0" * size):
                    pass
    finally:
        os.close(descriptor)
    return filler


def webhook(order_id: str) -> dict[str, Any]:
    tracking = unique("DF")
    return generic(tracking, [event(tracking, 1), event(tracking, 2)], order_id, "NF1")


def test_a_full_disk_answers_503_and_recovers_by_itself_losing_nothing(
    tmp_path: Path,
) -> None:
    with (
        small_disk(tmp_path / "disk") as disk,
        VtexStandIn() as vtex,
        RelayProcess(
            tmp_path,
            {
                "RELAY_DATABASE_URL": f"sqlite:///{disk / 'relay.db'}",
                "RELAY_CARRIERS__GENERIC__SECRET": SECRET,
                "RELAY_VTEX_BASE_URL": vtex.url,
                "RELAY_VTEX_ACCOUNT": "diskstore",
                "RELAY_VTEX_APP_KEY": "key",
                "RELAY_VTEX_APP_TOKEN": "token",
                "RELAY_VTEX_COALESCE_WINDOW": "0.1s",
            },
        ) as relay,
    ):
        acknowledged = []
        for _ in range(5):
            payload = webhook(f"{uuid.uuid4().int % 10**13:013d}-01")
            assert post_signed(relay.client, SECRET, payload).status_code == 202
            acknowledged.append(payload)

        filler = fill(disk)
        refused = []
        for _ in range(400):  # SQLite may have room left in its WAL: post until it has none
            payload = webhook(f"{uuid.uuid4().int % 10**13:013d}-01")
            answer = post_signed(relay.client, SECRET, payload)
            assert answer.status_code in (202, 503), answer.text
            if answer.status_code == 202:
                acknowledged.append(payload)
                continue
            assert answer.json()["error"] == "unavailable"
            assert "the disk is full" in answer.json()["detail"]
            assert int(answer.headers["retry-after"]) > 0
            refused.append(payload)
            if len(refused) >= 3:
                break
        assert len(refused) >= 3, "the relay never refused while its disk was full"
        ready = relay.client.get("/readyz")
        assert ready.status_code == 503
        assert "the disk is full" in ready.json()["detail"]
        assert ready.json()["checks"]["database"] == "cannot write: the disk is full"

        filler.unlink()
        wait_until(lambda: relay.client.get("/readyz").status_code == 200, 30, "ready again")
        for payload in refused:  # the carriers retry what was refused
            assert post_signed(relay.client, SECRET, payload).status_code == 202
            acknowledged.append(payload)

        expected = descriptions_by_path(acknowledged)
        wait_until(
            lambda: not missing(vtex, expected),
            60,
            lambda: f"deliveries missing: {missing(vtex, expected)}",
        )
        assert "Traceback" not in relay.log()

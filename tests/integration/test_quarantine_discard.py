"""Discarding quarantined webhooks: the store, ``DELETE /admin/quarantine/{id}`` and
``relay quarantine discard``, on SQLite and PostgreSQL. Only quarantined rows ever go."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text

from app.api.app import create_app
from app.settings import Settings
from app.store.engine import sync_url
from app.store.store import Store
from tests.integration.helpers import T0, event, update
from tests.support.relay_process import free_port

pytestmark = pytest.mark.anyio

RELAY = Path(sys.executable).with_name("relay")
ADMIN = "admin-token-discard"
BODY = b'{"unreadable": true}'


def webhook_states(database_url: str) -> dict[str, str]:
    """Every webhook row, read past the store: what is really left in the table."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            return {
                row.id: row.state for row in conn.execute(text("SELECT id, state FROM webhooks"))
            }
    finally:
        engine.dispose()


async def fill(store: Store) -> dict[str, str]:
    """Two quarantined generic webhooks, one quarantined dhl, one accepted, one replayed."""
    ids = {
        "generic_1": await store.quarantine_webhook("generic", BODY, "unreadable", T0),
        "generic_2": await store.quarantine_webhook("generic", BODY, "unreadable", T0),
        "dhl": await store.quarantine_webhook("dhl", BODY, "unreadable", T0),
        "replayed": await store.quarantine_webhook("generic", BODY, "unreadable", T0),
    }
    await store.release_from_quarantine(ids["replayed"], [update("TRK1", event(T0))], T0)
    accepted = await store.record_webhook("generic", BODY, [update("TRK2", event(T0))], T0)
    ids["accepted"] = accepted.webhook_id
    return ids


# -- the store -----------------------------------------------------------------------


async def test_discarding_one_deletes_it_and_returns_it(store: Store, database_url: str) -> None:
    ids = await fill(store)

    discarded = await store.discard_quarantined(ids["generic_1"])

    assert discarded is not None
    assert (discarded.id, discarded.carrier, discarded.body, discarded.error) == (
        ids["generic_1"],
        "generic",
        BODY,
        "unreadable",
    )
    assert {w.id for w in await store.quarantined()} == {ids["generic_2"], ids["dhl"]}
    assert ids["generic_1"] not in webhook_states(database_url)
    assert await store.discard_quarantined(ids["generic_1"]) is None
    assert (await store.queue_snapshot(T0)).quarantined == 2


async def test_a_webhook_that_is_not_quarantined_is_never_discarded(
    store: Store, database_url: str
) -> None:
    ids = await fill(store)
    before = webhook_states(database_url)

    assert await store.discard_quarantined(ids["accepted"]) is None
    assert await store.discard_quarantined(ids["replayed"]) is None
    assert await store.discard_quarantined("wh_" + "0" * 32) is None

    assert webhook_states(database_url) == before
    assert (before[ids["accepted"]], before[ids["replayed"]]) == ("accepted", "replayed")
    for number in ("TRK1", "TRK2"):
        shipment = await store.get_shipment(number)
        assert shipment is not None
        assert len(shipment.events) == 1


async def test_discarding_a_carrier_deletes_only_its_quarantined_webhooks(
    store: Store, database_url: str
) -> None:
    ids = await fill(store)

    discarded = await store.discard_quarantine("generic")

    assert sorted(discarded) == sorted([ids["generic_1"], ids["generic_2"]])
    assert [w.id for w in await store.quarantined()] == [ids["dhl"]]
    assert await store.discard_quarantine("generic") == []
    assert await store.discard_quarantine("nobody") == []
    assert set(webhook_states(database_url)) == {ids["dhl"], ids["accepted"], ids["replayed"]}


# -- DELETE /admin/quarantine/{id} ----------------------------------------------------


@contextlib.contextmanager
def served(database_url: str) -> Iterator[httpx.Client]:
    """The relay app on loopback (uvicorn in a thread, worker off), admin token set."""
    settings = Settings(_env_file=None, database_url=database_url, worker=False, admin_token=ADMIN)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the relay stopped while starting"
        assert time.monotonic() < deadline, "the relay did not start within 10 s"
        time.sleep(0.01)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def quarantined_gauge(client: httpx.Client) -> float:
    found = re.search(r"^relay_quarantined_webhooks (\S+)$", client.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


async def test_delete_discards_a_quarantined_webhook_and_the_gauge_goes_down(
    store: Store, database_url: str
) -> None:
    ids = await fill(store)

    with served(database_url) as client:
        before = quarantined_gauge(client)
        answer = client.delete(f"/admin/quarantine/{ids['dhl']}")
        after = quarantined_gauge(client)
        again = client.delete(f"/admin/quarantine/{ids['dhl']}")
        accepted = client.delete(f"/admin/quarantine/{ids['accepted']}")
        listed = client.get("/admin/quarantine").json()["webhooks"]

    assert answer.status_code == 200, answer.text
    discarded = answer.json()["discarded"]
    assert (discarded["webhookId"], discarded["carrier"]) == (ids["dhl"], "dhl")
    assert (discarded["error"], discarded["bytes"]) == ("unreadable", len(BODY))
    assert (before, after) == (3, 2)
    assert (again.status_code, again.json()["error"]) == (404, "not_found")
    assert accepted.status_code == 404
    assert webhook_states(database_url)[ids["accepted"]] == "accepted"
    assert {w["webhookId"] for w in listed} == {ids["generic_1"], ids["generic_2"]}


def test_delete_needs_the_admin_token(database_url: str) -> None:
    with served(database_url) as client:
        answer = client.delete("/admin/quarantine/wh_x", headers={"Authorization": "Bearer no"})

    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/admin/quarantine/99999999999999999999999", 404),
        ("/admin/quarantine/" + "9" * 41, 422),
        ("/admin/quarantine/" + "x" * 5000, 422),
    ],
)
def test_delete_of_an_unknown_or_oversized_id_is_a_json_4xx(
    database_url: str, path: str, status: int
) -> None:
    with served(database_url) as client:
        answer = client.delete(path)

    assert answer.status_code == status, answer.text
    assert set(answer.json()) >= {"error", "detail"}


@pytest.mark.parametrize(
    ("delivery_id", "status"),
    [("99999999999999999999999", 422), (str(2**63), 422), (str(2**63 - 1), 404), ("0", 422)],
)
def test_retry_of_an_out_of_range_delivery_id_is_a_json_4xx_never_a_500(
    database_url: str, delivery_id: str, status: int
) -> None:
    with served(database_url) as client:
        answer = client.post(f"/admin/deliveries/{delivery_id}/retry")

    assert answer.status_code == status, answer.text
    assert set(answer.json()) >= {"error", "detail"}


# -- relay quarantine discard ---------------------------------------------------------


def relay(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
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


async def test_relay_quarantine_discard_id_deletes_only_that_quarantined_webhook(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    ids = await fill(store)

    def discard(webhook_id: str) -> subprocess.CompletedProcess[str]:
        return relay(tmp_path, "quarantine", "discard", webhook_id, RELAY_DATABASE_URL=database_url)

    discarded = discard(ids["dhl"])
    again = discard(ids["dhl"])
    accepted = discard(ids["accepted"])

    assert (discarded.returncode, discarded.stderr) == (0, "")
    assert discarded.stdout == f"relay: quarantined webhook {ids['dhl']} (dhl) discarded\n"
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == f"relay quarantine: no quarantined webhook {ids['dhl']}\n"
    assert accepted.returncode == 1
    assert set(webhook_states(database_url)) == set(ids.values()) - {ids["dhl"]}
    assert (await store.queue_snapshot(T0)).quarantined == 2


async def test_relay_quarantine_discard_carrier_deletes_its_quarantined_webhooks(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    ids = await fill(store)

    result = relay(
        tmp_path,
        "quarantine",
        "discard",
        "--carrier",
        "generic",
        RELAY_DATABASE_URL=database_url,
    )

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "relay: 2 quarantined webhooks of 'generic' discarded\n"
    assert set(webhook_states(database_url)) == {ids["dhl"], ids["accepted"], ids["replayed"]}


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["discard"], "discard takes a webhook ID or --carrier NAME (one of them)"),
        (["discard", "wh_0", "--carrier", "dhl"], "discard takes a webhook ID or --carrier NAME"),
        (["list", "wh_0"], "list takes no webhook ID (only discard does)"),
        (["replay", "wh_0"], "replay takes no webhook ID (only discard does)"),
    ],
)
def test_relay_quarantine_with_the_wrong_arguments_is_a_usage_error(
    tmp_path: Path, arguments: list[str], complaint: str
) -> None:
    result = relay(tmp_path, "quarantine", *arguments)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: relay quarantine")
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []

"""Discarding quarantined webhooks: the store, ``DELETE /admin/quarantine/{id}`` and
``relay quarantine discard``, on SQLite and PostgreSQL. Only quarantined rows ever go."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from app.settings import Settings
from app.store import Store, sync_url
from tests.integration.helpers import T0, event, update
from tests.support.served_app import run_relay, served_app

pytestmark = pytest.mark.anyio

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
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with served_app(settings) as url, httpx.Client(base_url=url, headers=headers) as client:
        yield client


# -- relay quarantine discard ---------------------------------------------------------


relay = run_relay


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

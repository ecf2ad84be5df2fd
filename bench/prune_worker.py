"""The prune as the relay's own worker runs it (bench/prune.py ``--prune-in worker``): ``relay
serve`` with its worker on, whose hourly task (app/deliver/periodic.py) prunes inside the relay
process, through the same store, and so the same writer thread, as the webhooks.

The bench only chooses when: before the relay starts, the prune's last start
(``periodic_runs``) is set an hour minus ``due_in`` seconds ago, so the worker's own schedule
starts the prune right after the baseline. The open deliveries of the old invoices are put off
a year, and the relay's coalescing window is an hour (``RELAY_VTEX_COALESCE_WINDOW``), so that
the worker has nothing to send (there is no VTEX here): it only prunes. The prune's start is
when ``periodic_runs`` changes (the worker claims its turn), its end the relay's ``prune.done``
log line, which also says what it removed.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select, update

from app.store import PruneReport, sync_url
from app.store.schema import deliveries, periodic_runs
from bench.databases import RelayDatabase
from bench.prune_load import Sent, steady

PRUNE_INTERVAL = timedelta(hours=1)  # the relay's default RELAY_PRUNE_INTERVAL
WORKER_SETTINGS = {
    "RELAY_WORKER": "true",
    "RELAY_VTEX_COALESCE_WINDOW": "1h",
    "RELAY_PRUNE_INTERVAL": "1h",
}
POLL_S = 0.05


def prepare(url: str, due_in: float) -> Any:
    """Put the old open deliveries off; make the prune due ``due_in`` seconds from now.
    Returns the prune's last start as stored (its change says the worker started)."""
    engine = create_engine(sync_url(url))
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.state.in_(("pending", "retrying")))
                .values(next_attempt_at=now + timedelta(days=365))
            )
            conn.execute(
                insert(periodic_runs).values(
                    task="prune", started_at=now - PRUNE_INTERVAL + timedelta(seconds=due_in)
                )
            )
        return last_start(engine)
    finally:
        engine.dispose()


def last_start(engine: Any) -> Any:
    with engine.connect() as conn:
        return conn.scalar(
            select(periodic_runs.c.started_at).where(periodic_runs.c.task == "prune")
        )


class LogWatch:
    """The relay's log, read as it grows: the ``prune.done`` line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def prune_done(self) -> dict[str, Any] | None:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
            self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if b"prune.done" not in line:
                continue
            record = json.loads(line)
            if record.get("event") == "prune.done":
                return dict(record)
        return None


async def phase(
    db: RelayDatabase, relay_url: str, log_path: Path, stored: Any, rate: float, seconds: float
) -> tuple[list[Sent], float, dict[str, Any]]:
    """Webhooks from now until the worker's prune is done (``seconds`` at least); when it
    started (the worker's claim) and ended (its log line)."""
    engine = create_engine(sync_url(db.url))
    seen: dict[str, Any] = {}
    watch = LogWatch(log_path)
    early = last_start(engine) != stored or watch.prune_done() is not None

    async def follow() -> None:
        while "done" not in seen:
            if "claimed" not in seen:
                value = await asyncio.to_thread(last_start, engine)
                if value != stored:
                    seen["claimed"] = time.monotonic()
            record = watch.prune_done()
            if record is not None:
                seen["done"], seen["record"] = time.monotonic(), record
            await asyncio.sleep(POLL_S)

    following = asyncio.create_task(follow())
    started = time.monotonic()
    sent = await steady(relay_url, rate, "PW", seconds, finished=following.done)
    await following
    engine.dispose()
    claimed = seen.get("claimed", started)
    record = seen["record"]
    report = {name: int(record.get(name, 0)) for name in PruneReport().as_dict()}
    return (
        sent,
        started,
        {
            "started": claimed,
            "prune_s": seen["done"] - claimed,
            "free_space_s": 0.0,  # the worker's free_space is inside prune_s (one log line)
            "report": report,
            "transactions": [],
            "statements": {},
            "early": early,  # the worker had started the prune before this phase did
        },
    )

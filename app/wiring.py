"""One wiring for the relay's processes: ``relay serve``, ``relay worker`` and ``relay
reconcile`` open their store, their VTEX client and the parts that deliver through them here,
the same way, and the one-shot commands open their store here too."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from app.console.tally import flush_tally_forever
from app.deliver.vtex_client import VtexClient
from app.metrics import RelayMetrics
from app.settings import Settings
from app.startup import database_cause, database_setting, missing_database
from app.store import SchemaTooNew, SqlStore, Store, StoreUnavailable


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeliveryParts:
    """What delivering to VTEX takes; the worker, the orders hook and the reconciliation
    share one."""

    store: Store
    client: VtexClient
    settings: Settings
    clock: Callable[[], datetime] = utc_now
    rng: random.Random = field(default_factory=random.Random)
    metrics: RelayMetrics = field(default_factory=RelayMetrics)


def vtex_http_client(settings: Settings) -> httpx.AsyncClient:
    """One pooled client for every VTEX call; in-flight requests stay modest on purpose."""
    limit = settings.vtex_max_concurrency
    return httpx.AsyncClient(
        timeout=settings.vtex_timeout.total_seconds(),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        headers={"User-Agent": "tracking-relay/0.1"},
    )


class DatabaseUnusable(Exception):
    """The database cannot be opened or reached; the message is the line an operator reads."""


@asynccontextmanager
async def opened_store(
    settings: Settings, *, existing: bool = False, coalesce: timedelta = timedelta(0)
) -> AsyncIterator[Store]:
    """The store, migrated. A database that cannot be opened or reached raises
    :class:`DatabaseUnusable`; ``existing``: a SQLite file must already be there (commands
    that read what a relay wrote create nothing, least of all an empty ./relay.db)."""
    setting = database_setting(settings)
    missing = missing_database(settings) if existing else None
    if missing is not None:
        raise DatabaseUnusable(missing)
    try:
        store = SqlStore.open(settings.database_url, coalesce)
    except OSError as error:  # the SQLite file's directory cannot be made
        reason = f"cannot create the directory {error.filename} ({error.strerror})"
        if isinstance(error, FileExistsError):
            reason = f"{error.filename} is a file, not a directory"
        raise DatabaseUnusable(f"cannot open the database ({setting}): {reason}") from None
    try:
        await store.migrate()
        yield store
    except (StoreUnavailable, SchemaTooNew) as error:
        message = f"cannot open the database ({setting}): {database_cause(error)}"
        raise DatabaseUnusable(message) from None
    finally:
        await store.close()


@asynccontextmanager
async def opened_delivery(
    settings: Settings, *, existing: bool = False, metrics: RelayMetrics | None = None
) -> AsyncIterator[DeliveryParts]:
    """The store (migrated, see :func:`opened_store`) and the VTEX client, as the parts that
    deliver through them; both are closed on the way out."""
    async with (
        opened_store(settings, existing=existing, coalesce=settings.vtex_coalesce_window) as store,
        vtex_http_client(settings) as http,
    ):
        yield DeliveryParts(store, VtexClient(http), settings, metrics=metrics or RelayMetrics())


@asynccontextmanager
async def counts_kept(metrics: RelayMetrics, store: Store) -> AsyncIterator[None]:
    """While the body runs, the console's per-minute counts (``metrics.tally``) are written to
    the database every few seconds, and once more at the end (``relay serve`` and ``relay
    worker`` alike, so that every process's webhooks and deliveries show on the Overview)."""
    if not isinstance(store, SqlStore):
        yield
        return
    task = asyncio.create_task(
        flush_tally_forever(metrics.tally, store.console().add_counts), name="console-counts"
    )
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

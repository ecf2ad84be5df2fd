"""The console's async front on the store's engine (SPEC §10): each page is one read on a
reader thread; sessions, counts and bulk retries are writes in the writer's groups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from app.console.tally import MinuteCount
from app.store import console
from app.store.console import (
    AccountFacts,
    DeliveryFilter,
    DeliveryPage,
    OverviewFacts,
    QuarantinePage,
    SearchResult,
    ShipmentPage,
    WebhookView,
)
from app.store.engine import Database

RETRY_ALL_TRIES = 3
P = ParamSpec("P")
R = TypeVar("R")
DAY = timedelta(hours=24)


class ConsoleStore:
    """What the console reads and does, on the relay's database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._secret: bytes | None = None

    async def signing_secret(self) -> bytes:
        """The database's random secret the console signs with (made once, shared by every
        relay on the database; read once per process)."""
        if self._secret is None:
            self._secret = bytes.fromhex(await self._write(console.signing_secret))
        return self._secret

    async def _read(
        self, work: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self._db.read(lambda conn: work(conn, *args, **kwargs))

    async def _write(
        self, work: Callable[Concatenate[Connection, P], R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self._db.write(lambda conn: work(conn, *args, **kwargs))

    async def start_session(
        self, id_hash: str, role: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._write(console.start_session, id_hash, role, now, expires_at)

    async def session_role(self, id_hash: str, now: datetime) -> str | None:
        return await self._read(console.session_role, id_hash, now)

    async def end_session(self, id_hash: str) -> None:
        await self._write(console.end_session, id_hash)

    async def add_counts(self, counts: list[MinuteCount]) -> None:
        await self._write(console.add_counts, counts)

    async def overview(self, now: datetime) -> OverviewFacts:
        return await self._read(console.overview, now, now - DAY)

    async def accounts(self, now: datetime) -> AccountFacts:
        return await self._read(console.accounts, now, now - DAY)

    async def search(self, text: str) -> SearchResult:
        return await self._read(console.search, text)

    async def shipment(self, tracking_number: str) -> ShipmentPage | None:
        return await self._read(console.shipment_page, tracking_number)

    async def webhook(self, webhook_id: str) -> WebhookView | None:
        return await self._read(console.webhook, webhook_id)

    async def deliveries(self, f: DeliveryFilter, before: int | None, limit: int) -> DeliveryPage:
        return await self._read(console.deliveries_page, f, before, limit)

    async def count_deliveries(self, f: DeliveryFilter) -> int:
        return await self._read(console.count_deliveries, f)

    async def retry_all(self, f: DeliveryFilter, now: datetime) -> int:
        """See :func:`console.retry_all`. A delivery another relay queued meanwhile for one of
        the invoices trips the one-open-delivery index: the next try sees it and defers."""
        for _ in range(RETRY_ALL_TRIES - 1):
            try:
                return await self._write(console.retry_all, f, now)
            except IntegrityError:
                continue
        return await self._write(console.retry_all, f, now)

    async def quarantine(
        self, carrier: str | None, after: str | None, limit: int
    ) -> QuarantinePage:
        return await self._read(console.quarantine_page, carrier, after, limit)

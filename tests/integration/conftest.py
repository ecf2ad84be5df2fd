"""Integration fixtures: anyio on asyncio, a clean environment, a real SQLite store; and, for
the store's behaviour tests, the same tests on the in-memory store too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest

from app.store import SqlStore, Store
from tests.integration.helpers import StoreOpener
from tests.support.databases import postgresql_schema
from tests.support.memory_store import MemoryStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated(clean_environment: None) -> None:
    """Every integration test runs with a clean environment (see tests/conftest.py)."""


def _database(kind: str, tmp_path: Path, stack: ExitStack) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/relay.db"
    return stack.enter_context(postgresql_schema())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on a fresh SQLite file, and on its own PostgreSQL schema."""
    with ExitStack() as stack:
        yield _database(request.param, tmp_path, stack)


@pytest.fixture
async def sql_store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated SqlStore on the test's database (SQLite file, PostgreSQL schema)."""
    opened = SqlStore.open(database_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def store(sql_store: SqlStore) -> Store:
    return sql_store


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreOpener]:
    """Opens stores of one kind: the in-memory one (each its own), or SqlStores on one fresh
    database. For behaviour tests of the :class:`Store` protocol, which every kind must pass."""
    opened: list[Store] = []
    with ExitStack() as stack:
        url = None if request.param == "memory" else _database(request.param, tmp_path, stack)

        async def open_(coalesce: timedelta = timedelta(0)) -> Store:
            store: Store = MemoryStore(coalesce) if url is None else SqlStore.open(url, coalesce)
            opened.append(store)
            await store.migrate()
            return store

        try:
            yield open_
        finally:
            for store in opened:
                await store.close()


@pytest.fixture
async def any_store(open_store: StoreOpener) -> Store:
    """A store of each kind: memory, SQLite, PostgreSQL."""
    return await open_store()

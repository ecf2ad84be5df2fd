"""Integration fixtures: anyio on asyncio, a clean environment, a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from app.store.store import Store
from tests.support.databases import postgresql_schema


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated(clean_environment: None) -> None:
    """Every integration test runs with a clean environment (see tests/conftest.py)."""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on a fresh SQLite file, and on its own PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/relay.db"
        return
    with postgresql_schema() as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = Store.open(database_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()

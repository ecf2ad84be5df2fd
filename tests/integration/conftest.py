"""Integration fixtures: anyio on asyncio, a clean environment, a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.store.store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated(clean_environment: None) -> None:
    """Every integration test runs with a clean environment (see tests/conftest.py)."""


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/relay.db"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = Store.open(database_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()

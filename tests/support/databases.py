"""Test databases: a PostgreSQL schema of its own per test, when RELAY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from app.store.engine import sync_url

ADMIN_URL_VARIABLE = "RELAY_TEST_DATABASE_URL"


def postgresql_url() -> str:
    """The server tests may use, or a skip that says how to enable them."""
    url = os.environ.get(ADMIN_URL_VARIABLE, "").strip()
    if not url:
        pytest.skip(
            f"{ADMIN_URL_VARIABLE} is not set: PostgreSQL tests are skipped (.ci/run sets it to "
            "postgresql://postgres@127.0.0.1:5432/test)"
        )
    return url


@contextmanager
def postgresql_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards; the URL puts it first on the search path."""
    url = postgresql_url()
    schema = "relay_test_" + uuid.uuid4().hex[:12]
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

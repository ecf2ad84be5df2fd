"""Test databases: a PostgreSQL schema of its own per test, when RELAY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.store import sync_url

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


def with_application_name(url: str, name: str) -> str:
    """``url`` whose connections carry ``application_name=name`` (libpq reads it from the query),
    so that a test can find its relay's backends in ``pg_stat_activity``."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}application_name={quote(name)}"


def through(url: str, host: str, port: int) -> str:
    """``url`` pointed at another address (a :class:`~tests.support.tcp_proxy.TcpProxy`)."""
    parsed = make_url(url).set(host=host, port=port)
    return parsed.render_as_string(hide_password=False)


def upstream(url: str) -> tuple[str, int]:
    """The host and port a PostgreSQL URL names."""
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432


@contextmanager
def backend_terminator() -> Iterator[Callable[[str], int]]:
    """``terminate(application_name)``: ``pg_terminate_backend`` every connection of that
    application name (the test's own relays, never another test's) and return how many."""
    url = postgresql_url()
    engine = create_engine(sync_url(with_application_name(url, "relay_test_terminator")))
    statement = text(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = :name AND pid <> pg_backend_pid()"
    )
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")

            def terminate(application_name: str) -> int:
                return int(conn.scalar(statement, {"name": application_name}) or 0)

            yield terminate
    finally:
        engine.dispose()

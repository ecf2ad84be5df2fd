"""A database of its own for every relay: a fresh SQLite file, or a fresh schema on the
PostgreSQL server; and what the report says about that server.

This is the one module that speaks SQL, and only to the server, never to the relay's tables:
``CREATE SCHEMA`` / ``DROP SCHEMA … CASCADE`` around each relay (as tests/support/databases.py
does for the tests; that module needs pytest, which the runtime venv does not have), and one
query of ``pg_settings`` for the server's version and settings, which no route of the relay
knows. Results are read through the relay itself (bench/readings.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg

from bench.processes import parent_pid, say

SETTINGS = (
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "max_wal_size",
)


@dataclass
class RelayDatabase:
    """One relay's database: a fresh SQLite file, or a fresh schema on the PostgreSQL server."""

    kind: str  # "sqlite" or "postgresql"
    url: str  # its RELAY_DATABASE_URL
    path: Path | None = None  # SQLite: the file
    schema: str = ""  # PostgreSQL: the schema, first on the search path of every connection
    read_url: str = ""  # what the driver reads it with (PostgreSQL: read-only sessions)


def pg_connect(url: str) -> psycopg.Connection[Any]:
    """A connection to the PostgreSQL server, in autocommit (each statement sees the latest)."""
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def with_options(url: str, options: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(options)}"


@dataclass
class PostgresServer:
    """The server ``--postgresql-url`` reaches, as it runs: the bench changes none of its
    settings. ``postmaster`` is its pid when it runs on this machine (for its CPU time)."""

    url: str
    description: str = ""
    postmaster: int | None = None
    schemas: list[str] = field(default_factory=list)  # created by this run, not dropped yet
    kept: list[str] = field(default_factory=list)  # --keep: left for the operator to drop

    def probe(self) -> None:
        """Check the server answers; note its version and settings, and its postmaster's pid."""
        try:
            with pg_connect(self.url) as conn:
                # The server's own settings: no route of the relay has them, so SQL it is,
                # on pg_settings (a system view), never on the relay's tables.
                rows = conn.execute(
                    "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
                    [["server_version", *SETTINGS]],
                ).fetchall()
                self.postmaster = parent_pid(conn.info.backend_pid)
        except psycopg.Error as error:
            raise SystemExit(
                f"bench: cannot reach PostgreSQL at {self.url} ({error}); give another "
                "--postgresql-url, or run --database sqlite"
            ) from None
        values = {name: pg_setting(setting, unit) for name, setting, unit in rows}
        where = urlsplit(self.url)
        self.description = (
            f"PostgreSQL {values.get('server_version', '?')} at {where.hostname}:"
            f"{where.port or 5432} ("
            + ", ".join(f"{name}={values[name]}" for name in SETTINGS if name in values)
            + "), as it runs: the bench changes none of its settings"
        )

    def new_schema(self) -> RelayDatabase:
        schema = "relay_bench_" + uuid.uuid4().hex[:12]
        with pg_connect(self.url) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        return RelayDatabase(
            "postgresql",
            with_options(self.url, f"-csearch_path={schema}"),
            schema=schema,
            read_url=with_options(
                self.url, f"-csearch_path={schema} -cdefault_transaction_read_only=on"
            ),
        )

    def drop_schemas(self, keep: bool) -> None:
        """Drop the schemas created so far (their relays are stopped by then); ``keep``
        keeps them, and the report names them."""
        if not self.schemas:
            return
        if keep:
            self.kept += self.schemas
            self.schemas.clear()
            return
        try:
            with pg_connect(self.url) as conn:
                conn.execute("SET lock_timeout = '10s'")
                while self.schemas:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.schemas[-1]}" CASCADE')
                    self.schemas.pop()
        except psycopg.Error as error:
            say(f"could not drop the schemas {', '.join(self.schemas)}: {error}")


def new_sqlite(workdir: Path) -> RelayDatabase:
    path = workdir / "relay.db"
    url = f"sqlite:///{path}"
    return RelayDatabase("sqlite", url, path=path, read_url=url)


def pg_setting(setting: str, unit: str | None) -> str:
    """A pg_settings value as SHOW prints it, for the usual units (8kB pages, MB)."""
    if unit == "8kB":
        return f"{int(setting) * 8 // 1024}MB"
    return setting + (unit or "") if unit in ("MB", "kB", "s", "ms") else setting

"""Named statements: every hand-written query, read from ``app/store/sql/<concern>.sql``.

A file is a list of blocks, each opened by ``-- name: <name>`` (and, where the two
databases need different text, ``-- name: <name> @sqlite`` / ``@postgresql``), then the
statement with ``:named`` parameters. PostgreSQL's driver wants ``%(named)s``; the text is
converted once, when the file is first read. Sets of rows travel as one JSON parameter that
the statement unpacks (``json_each`` / ``jsonb_to_recordset``): a group of any size is one
statement, and its text never changes, so the database prepares it once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import orjson
from sqlalchemy.engine import Connection

DIALECTS = ("sqlite", "postgresql")
_BLOCK = re.compile(r"^-- name: (\w+)(?: @(\w+))?[ \t]*$", re.MULTILINE)
_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
_VALUES = re.compile(r"VALUES\s*(\([^()]*\))", re.IGNORECASE)


class Statements:
    """The statements of one concern, in the text each database reads."""

    def __init__(self, concern: str) -> None:
        self.concern = concern
        self._ready: dict[tuple[str, str, int], str] = {}

    @functools.cached_property
    def _sources(self) -> dict[str, dict[str, str]]:
        source = resources.files("app.store.sql").joinpath(f"{self.concern}.sql").read_text()
        return parse(source, self.concern)

    def names(self) -> set[str]:
        return set(self._sources["sqlite"]) | set(self._sources["postgresql"])

    def text(self, dialect: str, name: str, rows: int = 0) -> str:
        """The statement for the driver; with ``rows``, its VALUES row repeated so often
        (parameters ``name_0``, ``name_1``, …)."""
        key = (dialect, name, rows)
        text = self._ready.get(key)
        if text is None:
            source = self._sources[dialect][name]
            text = _for_driver(_repeat_values(source, rows) if rows else source, dialect)
            self._ready[key] = text
        return text

    def run(self, conn: Connection, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Execute the statement on the connection's driver; return the driver's cursor."""
        cursor = conn.connection.cursor()
        cursor.execute(self.text(conn.dialect.name, name), params or {})
        return cursor

    def run_rows(self, conn: Connection, name: str, rows: Sequence[Mapping[str, Any]]) -> Any:
        """Execute an ``INSERT … VALUES (…)`` for all ``rows`` as one statement."""
        params = {
            f"{key}_{index}": value for index, row in enumerate(rows) for key, value in row.items()
        }
        cursor = conn.connection.cursor()
        cursor.execute(self.text(conn.dialect.name, name, len(rows)), params)
        return cursor


def parse(source: str, concern: str) -> dict[str, dict[str, str]]:
    """``{dialect: {name: text}}``; a block without a dialect serves both."""
    texts: dict[str, dict[str, str]] = {dialect: {} for dialect in DIALECTS}
    heads = list(_BLOCK.finditer(source))
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        name, only = head.group(1), head.group(2)
        end = following.start() if following is not None else len(source)
        lines = source[head.end() : end].splitlines()
        statement = "\n".join(line for line in lines if not line.startswith("--")).strip()
        statement = statement.removesuffix(";").strip()
        if only is not None and only not in DIALECTS:
            raise ValueError(f"{concern}.sql: {name} names an unknown database {only!r}")
        for dialect in (only,) if only else DIALECTS:
            if only is None and name in texts[dialect]:
                continue  # a dialect's own block wins, whichever comes first
            texts[dialect][name] = statement
    return texts


def _repeat_values(statement: str, rows: int) -> str:
    match = _VALUES.search(statement)
    if match is None:
        raise ValueError(f"no VALUES (…) to repeat in {statement!r}")
    row = match.group(1)
    repeated = ", ".join(_PARAMETER.sub(rf":\1_{index}", row) for index in range(rows))
    return statement[: match.start(1)] + repeated + statement[match.end(1) :]


def _for_driver(statement: str, dialect: str) -> str:
    if dialect == "sqlite":
        return statement
    return _PARAMETER.sub(r"%(\1)s", statement.replace("%", "%%"))


def as_json(value: Any) -> str:
    """A set of rows (or values) as the one parameter a statement unpacks."""
    return orjson.dumps(value).decode()

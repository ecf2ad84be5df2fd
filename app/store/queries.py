"""Named statements: every hand-written query, read from ``app/store/sql/<concern>.sql``.

A file is a list of blocks, each opened by ``-- name: <name>`` (and, where the two
databases need different text, ``-- name: <name> @sqlite`` / ``@postgresql``), then the
statement with ``:named`` parameters. PostgreSQL's driver wants ``%(named)s``; the text is
converted once, when first used. A set of rows (a commit group's events, say) goes to the
database in one statement (:meth:`Statements.run_set`): as one JSON array the statement
unpacks (``json_each`` / ``jsonb_array_elements``; its text never changes, so PostgreSQL
prepares it once), or as an ``INSERT … VALUES`` whose row is repeated (cheaper for SQLite,
which would parse each row's JSON once per column).
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
MAX_PARAMETERS = {"sqlite": 32_766, "postgresql": 65_535}
"""Bound parameters one statement may take (SQLite's default since 3.32; the protocol's)."""


class Statements:
    """The statements of one concern, in the text each database reads."""

    def __init__(self, concern: str) -> None:
        self.concern = concern
        self._ready: dict[tuple[str, str], str] = {}
        self._repeated: dict[tuple[str, str, int], tuple[str, list[str]]] = {}

    @functools.cached_property
    def _sources(self) -> dict[str, dict[str, str]]:
        source = resources.files("app.store.sql").joinpath(f"{self.concern}.sql").read_text()
        return parse(source, self.concern)

    def names(self) -> set[str]:
        return set(self._sources["sqlite"]) | set(self._sources["postgresql"])

    def text(self, dialect: str, name: str) -> str:
        """The statement as the driver reads it."""
        text = self._ready.get((dialect, name))
        if text is None:
            text = self._ready[(dialect, name)] = _for_driver(self._sources[dialect][name], dialect)
        return text

    def run(self, conn: Connection, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Execute the statement on the connection's driver; return the driver's cursor."""
        cursor = conn.connection.cursor()
        cursor.execute(self.text(conn.dialect.name, name), params or {})
        return cursor

    def run_set(
        self, conn: Connection, name: str, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """Apply the statement to a set of rows at once; return what its RETURNING gave.

        A statement that takes ``:rows`` gets them as one JSON array. An ``INSERT …
        VALUES (…)`` gets its VALUES row repeated once per row, in as few statements as the
        database's limit on parameters allows (one, for any commit group of webhooks).
        """
        if not rows:
            return []
        dialect = conn.dialect.name
        cursor = conn.connection.cursor()
        if _parameter_names(self._sources[dialect][name]) == ["rows"]:
            cursor.execute(self.text(dialect, name), {"rows": as_json(rows)})
            return list(cursor.fetchall()) if cursor.description else []
        returned: list[tuple[Any, ...]] = []
        per_statement = MAX_PARAMETERS[dialect] // len(rows[0])
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            text, keys = self._repeat(dialect, name, len(chunk))
            cursor.execute(text, [row[key] for row in chunk for key in keys])
            if cursor.description:
                returned.extend(cursor.fetchall())
        return returned

    def _repeat(self, dialect: str, name: str, rows: int) -> tuple[str, list[str]]:
        """The statement with its VALUES row ``rows`` times, positional; the row's keys."""
        key = (dialect, name, rows)
        if key not in self._repeated:
            source = self._sources[dialect][name]
            match = _VALUES.search(source)
            if match is None or _parameter_names(source) != _parameter_names(match.group(1)):
                problem = "takes other parameters than its VALUES row"
                raise ValueError(f"{self.concern}.sql: {name} {problem}")
            marker = "?" if dialect == "sqlite" else "%s"
            row = _PARAMETER.sub(marker, match.group(1))
            head, tail = source[: match.start(1)], source[match.end(1) :]
            if dialect != "sqlite":
                head, tail = head.replace("%", "%%"), tail.replace("%", "%%")
            self._repeated[key] = (
                head + ", ".join([row] * rows) + tail,
                _parameter_names(match.group(1)),
            )
        return self._repeated[key]


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


def _parameter_names(text: str) -> list[str]:
    return _PARAMETER.findall(text)


def _for_driver(statement: str, dialect: str) -> str:
    if dialect == "sqlite":
        return statement
    return _PARAMETER.sub(r"%(\1)s", statement.replace("%", "%%"))


def as_json(value: Any) -> str:
    """A set of rows (or values) as the one parameter a statement unpacks."""
    return orjson.dumps(value).decode()

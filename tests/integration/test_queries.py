"""Named statements: the file format, each database's text, and sets of rows in few statements."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from app.store import SqlStore, queries, sync_url
from app.store.queries import Statements, parse

pytestmark = pytest.mark.anyio

SOURCE = """
-- A comment before the first block is not a statement.

-- name: both
-- A comment inside a block is dropped.
SELECT a FROM t WHERE b = :b AND c LIKE '%x';

-- name: only_here @postgresql
SELECT CAST(:rows AS jsonb);

-- name: only_here @sqlite
SELECT json(:rows);
"""


def test_a_block_without_a_database_serves_both_in_the_text_each_driver_reads() -> None:
    texts = parse(SOURCE, "example")
    assert texts["sqlite"]["both"] == "SELECT a FROM t WHERE b = :b AND c LIKE '%x'"
    assert queries._for_driver(texts["postgresql"]["both"], "postgresql") == (
        "SELECT a FROM t WHERE b = %(b)s AND c LIKE '%%x'"
    )
    assert texts["sqlite"]["only_here"] == "SELECT json(:rows)"
    assert texts["postgresql"]["only_here"] == "SELECT CAST(:rows AS jsonb)"


def test_an_unknown_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown database 'mysql'"):
        parse("-- name: x @mysql\nSELECT 1;", "example")


async def test_every_statement_of_the_store_is_one_the_database_reads(database_url: str) -> None:
    """Each named statement, in each database's text, is planned by that database against the
    relay's own tables (EXPLAIN: nothing runs)."""
    store = SqlStore.open(database_url)
    await store.migrate()
    await store.close()
    engine = create_engine(sync_url(database_url))
    planned = 0
    try:
        with engine.begin() as conn:
            dialect = conn.dialect.name
            for concern in ("webhooks", "shipments", "deliveries"):
                statements = Statements(concern)
                for name in sorted(statements.names()):
                    if name not in statements._sources[dialect]:
                        continue
                    source = statements._sources[dialect][name]
                    params = dict.fromkeys(queries._parameter_names(source))
                    cursor = conn.connection.cursor()
                    cursor.execute("EXPLAIN " + statements.text(dialect, name), params)
                    assert cursor.fetchall()
                    planned += 1
    finally:
        engine.dispose()
    assert planned >= 15


def test_rows_beyond_one_statements_parameters_go_in_as_many_as_needed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An INSERT … VALUES set is cut where the database's limit on parameters falls (made
    small here): every row arrives and RETURNING answers for all of them."""
    monkeypatch.setitem(queries.MAX_PARAMETERS, "sqlite", 6)
    monkeypatch.setitem(queries.MAX_PARAMETERS, "postgresql", 6)
    engine = create_engine(sync_url(database_url))
    statements = Statements("webhooks")
    monkeypatch.setattr(
        Statements,
        "_sources",
        {
            dialect: {
                "add": "INSERT INTO pairs (k, v) VALUES (:k, :v) RETURNING k",
                "take": "SELECT 1",
            }
            for dialect in queries.DIALECTS
        },
    )
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE pairs (k VARCHAR(8) PRIMARY KEY, v INTEGER)")
            rows = [{"k": f"k{i}", "v": i} for i in range(10)]
            returned = statements.run_set(conn, "add", rows)
            assert sorted(k for (k,) in returned) == sorted(row["k"] for row in rows)
            total = conn.exec_driver_sql("SELECT count(*), sum(v) FROM pairs").one()
            assert tuple(total) == (10, 45)
            assert statements.run_set(conn, "add", []) == []
            with pytest.raises(ValueError, match="other parameters than its VALUES row"):
                statements.run_set(conn, "take", rows)
    finally:
        engine.dispose()

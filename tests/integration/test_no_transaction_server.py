"""The no-transaction list against a real server: every statement validation refuses in
a transactional file is one PostgreSQL refuses in a transaction block, every look-alike
it lets through runs there, and `sqlmig up` refuses such a file before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from no_transaction_cases import FINE, REFUSED
from sqlalchemy.engine import make_url

from sqlmig.errors import MigrationFileError
from sqlmig.migrator import Migrator

pytestmark = pytest.mark.integration

SETUP = """
CREATE TABLE t (a int PRIMARY KEY, b text);
CREATE TYPE mood AS ENUM ('sad', 'fine');
CREATE TABLE people (feeling mood);
CREATE TABLE p (a int) PARTITION BY RANGE (a);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
CREATE PUBLICATION pub;
CREATE SUBSCRIPTION s CONNECTION 'host=nowhere' PUBLICATION pub
  WITH (connect = false, create_slot = false, enabled = false, slot_name = NONE);
"""

# A disabled subscription refuses ALTER ... REFRESH for that reason before it gets to
# the transaction block; those two are checked by the words only.
SERVER_CHECKED = [(s, n) for s, n in REFUSED if not s.startswith("ALTER SUBSCRIPTION")]


@pytest.fixture
def session(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    libpq = make_url(database_url).set(drivername="postgresql")
    conn = psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True)
    conn.execute(SETUP)
    yield conn
    conn.execute("DROP SUBSCRIPTION s")  # or the database cannot be dropped
    conn.close()


def in_transaction(conn: psycopg.Connection[tuple[object, ...]], *sql: str) -> str | None:
    """Run the statements in one transaction, rolled back; the SQLSTATE of a failure."""
    try:
        with conn.transaction(force_rollback=True):
            for statement in sql:
                conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@pytest.mark.parametrize(("statement", "named"), SERVER_CHECKED)
def test_each_refused_statement_is_one_postgresql_refuses_in_a_transaction(
    session: psycopg.Connection[tuple[object, ...]], statement: str, named: str
) -> None:
    assert in_transaction(session, statement) == "25001"  # active_sql_transaction


@pytest.mark.parametrize("statement", FINE)
def test_each_look_alike_runs_in_a_transaction(
    session: psycopg.Connection[tuple[object, ...]], statement: str
) -> None:
    assert in_transaction(session, statement) is None


def test_a_new_enum_value_fails_only_when_used_in_the_same_transaction(
    session: psycopg.Connection[tuple[object, ...]],
) -> None:
    add = "ALTER TYPE mood ADD VALUE 'happy'"
    assert in_transaction(session, add, "UPDATE people SET feeling = 'fine'") is None
    assert in_transaction(session, add, "UPDATE people SET feeling = 'happy'") == "55P04"


def test_up_refuses_the_file_before_running_anything(
    database_url: str, tmp_path: Path, session: psycopg.Connection[tuple[object, ...]]
) -> None:
    (tmp_path / "0001_first.up.sql").write_text("CREATE TABLE first (id bigint);\n")
    (tmp_path / "0002_index.up.sql").write_text(
        "CREATE TABLE second (id bigint);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n"
    )

    with Migrator(database_url, tmp_path) as m, pytest.raises(MigrationFileError) as caught:
        m.up()

    assert [(Path(p.path).name, p.line) for p in caught.value.problems] == [
        ("0002_index.up.sql", 2)
    ]
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction" in str(caught.value)
    tables = {r[0] for r in session.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert {"first", "second", "schema_migrations"}.isdisjoint(tables)

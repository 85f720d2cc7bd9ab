"""The migration lifecycle on a real PostgreSQL: up, down, failures, drift, repair, the API.

Every test builds a migrations directory of real files and checks what the database
holds afterwards (tables, indexes, data, tracking rows) and what the operator sees.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from helpers import query, sessions, tables, tracking, write
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from sqlmig.errors import (
    AlreadyTrackedError,
    MigrationError,
    MigrationFileError,
    QueryError,
    StateError,
    UsageError,
)
from sqlmig.events import Event, MigrationStarted
from sqlmig.migrator import Baseline, Migrator
from sqlmig.outcome import Outcome
from sqlmig.plan import State

pytestmark = pytest.mark.integration

LOCK_ID = 123456789


# --- helpers ---------------------------------------------------------------------


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


def states(migrator: Migrator) -> dict[str, str]:
    return {s.version: s.state.value for s in migrator.status()}


def table_migration(version: str, table: str, *, down: bool = True) -> dict[str, str]:
    """A pair-form migration creating one table, with a down script dropping it."""
    files = {f"{version}_{table}.up.sql": f"CREATE TABLE {table} (id int);\n"}
    if down:
        files[f"{version}_{table}.down.sql"] = f"DROP TABLE {table};\n"
    return files


def four_tables(migrations: Path) -> Path:
    return write(
        migrations,
        {
            **table_migration("0001", "a"),
            **table_migration("0002", "b"),
            **table_migration("0003", "c"),
            **table_migration("0004", "d"),
        },
    )


# --- order, targets, steps, results, status ----------------------------------------


def test_up_applies_every_migration_in_numeric_version_order(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            "2_events.up.sql": "CREATE TABLE events (seq serial, name text);\n",
            "10_ten.up.sql": "INSERT INTO events (name) VALUES ('ten');\n",
            "9_nine.up.sql": "INSERT INTO events (name) VALUES ('nine');\n",
            "0011_eleven.up.sql": "INSERT INTO events (name) VALUES ('eleven');\n",
        },
    )
    result = Migrator(engine, migrations).up()

    assert [r.version for r in result.migrations] == ["2", "9", "10", "0011"]
    assert [r.filename for r in result.migrations] == [
        "2_events.up.sql",
        "9_nine.up.sql",
        "10_ten.up.sql",
        "0011_eleven.up.sql",
    ]
    assert result.direction == "up"
    assert all(r.direction == "up" and r.transactional for r in result.migrations)
    assert all(isinstance(r.duration_ms, int) and r.duration_ms >= 0 for r in result.migrations)
    assert query(engine, "SELECT name FROM events ORDER BY seq") == [
        ("nine",),
        ("ten",),
        ("eleven",),
    ]
    assert tracking(engine) == {"2": "applied", "9": "applied", "10": "applied", "0011": "applied"}


def test_up_to_a_target_is_inclusive_and_steps_counts_migrations(
    engine: Engine, migrations: Path
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)

    assert [r.version for r in migrator.up(target="2").migrations] == ["0001", "0002"]
    assert tables(engine) == {"schema_migrations", "a", "b"}
    assert [r.version for r in migrator.up(steps=1).migrations] == ["0003"]
    assert tables(engine) == {"schema_migrations", "a", "b", "c"}
    assert states(migrator) == {
        "0001": "applied",
        "0002": "applied",
        "0003": "applied",
        "0004": "pending",
    }
    assert [r.version for r in migrator.up().migrations] == ["0004"]
    assert migrator.up().migrations == ()


def test_status_shows_applied_at_and_duration_of_applied_migrations(
    engine: Engine, migrations: Path
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)
    before = datetime.now(timezone.utc)
    migrator.up(steps=2)

    found = migrator.status()
    assert [(s.version, s.name, s.filename, s.state) for s in found] == [
        ("0001", "a", "0001_a.up.sql", State.APPLIED),
        ("0002", "b", "0002_b.up.sql", State.APPLIED),
        ("0003", "c", "0003_c.up.sql", State.PENDING),
        ("0004", "d", "0004_d.up.sql", State.PENDING),
    ]
    for s in found[:2]:
        assert s.applied_at is not None
        assert before - timedelta(seconds=5) <= s.applied_at <= datetime.now(timezone.utc)
        assert isinstance(s.duration_ms, int) and s.duration_ms >= 0
        assert s.checksum == s.recorded_checksum
    assert [(s.applied_at, s.duration_ms, s.recorded_checksum) for s in found[2:]] == [
        (None, None, None),
        (None, None, None),
    ]


def test_status_shows_every_state(engine: Engine, migrations: Path) -> None:
    four_tables(migrations)
    write(migrations, {"0005_e.up.sql": "SELECT * FROM no_such_table;\n"})
    migrator = Migrator(engine, migrations)
    with pytest.raises(MigrationError):
        migrator.up()
    migrator.down()  # 0004
    write(migrations, {"0001_a.up.sql": "CREATE TABLE a (id bigint);\n"})
    (migrations / "0002_b.up.sql").unlink()
    (migrations / "0002_b.down.sql").unlink()
    write(migrations, table_migration("0006", "f"))

    assert states(migrator) == {
        "0001": "changed",
        "0002": "missing",
        "0003": "applied",
        "0004": "rolled_back",
        "0005": "failed",
        "0006": "pending",
    }


# --- transactional migrations: atomicity, the error, retry ---------------------------


FAILING_SCRIPT = (
    "CREATE TABLE b (id int);\n"
    "INSERT INTO b VALUES (1);\n"
    "SELECT id FROM no_such_table;\n"
    "CREATE TABLE c (id int);\n"
)


def test_failing_statement_rolls_back_its_whole_migration_and_stops_the_run(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            "0002_b.up.sql": FAILING_SCRIPT,
            **table_migration("0003", "d"),
        },
    )
    with pytest.raises(MigrationError) as caught:
        Migrator(engine, migrations).up()

    assert tables(engine) == {"schema_migrations", "a"}  # no b, no c, no d
    assert tracking(engine) == {"0001": "applied", "0002": "failed"}
    error = caught.value
    path = migrations / "0002_b.up.sql"
    assert (error.version, error.path, error.line, error.column, error.sqlstate) == (
        "0002",
        str(path),
        3,
        16,
        "42P01",
    )
    assert [r.version for r in error.completed] == ["0001"]
    assert str(error) == (
        f"migration 0002 (up) failed at {path}:3:16: "
        'relation "no_such_table" does not exist [SQLSTATE 42P01]\n'
        "  1 | CREATE TABLE b (id int);\n"
        "  2 | INSERT INTO b VALUES (1);\n"
        "  3 | SELECT id FROM no_such_table;\n"
        "    |                ^\n"
        "  4 | CREATE TABLE c (id int);\n"
        "Its transaction was rolled back: nothing of 0002 remains, and it is recorded as "
        "'failed'. Before it, this run applied 1: 0001. "
        "Fix the script and run `sqlmig up` again; it will be retried."
    )


def test_failed_transactional_migration_is_retried_by_the_next_up_once_fixed(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, {"0001_b.up.sql": FAILING_SCRIPT, **table_migration("0002", "d")})
    migrator = Migrator(engine, migrations)
    with pytest.raises(MigrationError):
        migrator.up()
    with pytest.raises(MigrationError):  # still broken: tried again, fails again
        migrator.up()
    assert tracking(engine) == {"0001": "failed"}

    write(migrations, {"0001_b.up.sql": FAILING_SCRIPT.replace("no_such_table", "b")})
    result = migrator.up()

    assert [r.version for r in result.migrations] == ["0001", "0002"]
    assert tables(engine) == {"schema_migrations", "b", "c", "d"}
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


def test_the_error_carries_the_server_detail_and_hint(engine: Engine, migrations: Path) -> None:
    write(
        migrations,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int PRIMARY KEY);\n"
            "INSERT INTO a VALUES (1), (1);\n",
        },
    )
    with pytest.raises(MigrationError) as duplicate:
        Migrator(engine, migrations).up()
    write(
        migrations,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
            "0002_b.up.sql": "CREATE INDEX CONCURRENTLY b_id ON b (id);\n",
        },
    )
    # A statement that cannot run in a transaction is refused before anything runs.
    with pytest.raises(MigrationFileError) as concurrently:
        Migrator(engine, migrations).up()

    assert duplicate.value.sqlstate == "23505"
    assert "\nDETAIL: Key (id)=(1) already exists.\n" in str(duplicate.value)
    assert [(Path(p.path).name, p.line) for p in concurrently.value.problems] == [
        ("0002_b.up.sql", 1)
    ]
    assert "add `-- sqlmig:no-transaction` to the leading comments" in str(concurrently.value)
    assert tracking(engine) == {"0001": "failed"}

    # One the files cannot tell (CLUSTER of a partitioned table) gets the server's
    # refusal and sqlmig's hint.
    write(
        migrations,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n",
            "0002_b.up.sql": "CREATE TABLE p (id int) PARTITION BY RANGE (id);\n"
            "CREATE INDEX p_id ON p (id);\nCLUSTER p USING p_id;\n",
        },
    )
    with pytest.raises(MigrationError) as cluster:
        Migrator(engine, migrations).up()
    assert cluster.value.sqlstate == "25001"
    assert (
        "\nHINT: this statement cannot run inside a transaction: add "
        "`-- sqlmig:no-transaction` to the leading comments of the file\n"
    ) in str(cluster.value)


def long_script(lines: int, error_line: int) -> str:
    """A script of ``lines`` lines whose line ``error_line`` selects from a missing table.

    Non-ASCII text comes first, so a byte offset would be off by many characters.
    """
    body = ["CREATE TABLE t (v text);", "-- données: café, crème brûlée, 日本語"]
    while len(body) < lines:
        n = len(body) + 1
        body.append(f"INSERT INTO t VALUES ('ligne {n} é');" if n != error_line else "")
    body[error_line - 1] = "  INSERT INTO t SELECT v FROM no_such_table;"
    return "\n".join(body) + "\n"


@pytest.mark.parametrize(
    ("name", "prefix", "directive"),
    [
        pytest.param("0001_long.up.sql", "", "", id="pair"),
        pytest.param(
            "0001_long.up.sql", "", "-- sqlmig:no-transaction\n", id="pair-no-transaction"
        ),
        pytest.param(
            "0001_long.sql",
            "-- A dbmate migration.\n-- Its comments count as lines.\n\n-- migrate:up\n",
            "",
            id="dbmate",
        ),
        pytest.param(
            "0001_long.sql",
            "-- A goose migration.\n-- +goose Up\n-- +goose StatementBegin\n",
            "",
            id="goose",
        ),
    ],
)
def test_error_deep_in_a_long_file_is_reported_at_its_line_and_column_in_the_file(
    engine: Engine, migrations: Path, name: str, prefix: str, directive: str
) -> None:
    head = prefix + directive
    skipped = head.count("\n")
    error_line = 1500
    script = long_script(2000 - skipped, error_line - skipped)
    write(migrations, {name: head + script})
    assert (head + script).splitlines()[error_line - 1].startswith("  INSERT INTO t SELECT v FROM")

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, migrations).up()

    error = caught.value
    assert (error.line, error.column, error.sqlstate) == (1500, 31, "42P01")
    assert error.excerpt == (
        f"  1498 | INSERT INTO t VALUES ('ligne {1498 - skipped} é');\n"
        f"  1499 | INSERT INTO t VALUES ('ligne {1499 - skipped} é');\n"
        "  1500 |   INSERT INTO t SELECT v FROM no_such_table;\n"
        "       | " + " " * 30 + "^\n"
        f"  1501 | INSERT INTO t VALUES ('ligne {1501 - skipped} é');\n"
        f"  1502 | INSERT INTO t VALUES ('ligne {1502 - skipped} é');"
    )
    assert f"{migrations / name}:1500:31: " in str(error)


@pytest.mark.parametrize(
    ("name", "head", "line"),
    [
        pytest.param("0001_a.up.sql", "", 4, id="pair"),
        pytest.param("0001_a.up.sql", "-- sqlmig:no-transaction\r\n", 5, id="no-transaction"),
        pytest.param("0001_a.sql", "-- c\r\n-- migrate:up\r\n", 6, id="dbmate"),
    ],
)
def test_error_in_a_windows_file_with_a_bom_is_located_by_its_lines(
    engine: Engine, migrations: Path, name: str, head: str, line: int
) -> None:
    script = "CREATE TABLE t (v text);\r\n-- é\r\nINSERT INTO t VALUES ('x');\r\n"
    script += "  SELECT * FROM no_such_table;\r\n"
    write(migrations, {name: b"\xef\xbb\xbf" + (head + script).encode()})

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, migrations).up()

    assert (caught.value.line, caught.value.column) == (line, 17)
    assert caught.value.excerpt is not None
    assert caught.value.excerpt.splitlines()[-3:] == [
        f"  {line - 1} | INSERT INTO t VALUES ('x');",
        f"  {line} |   SELECT * FROM no_such_table;",
        "    |                 ^",
    ]  # and no line past the end of the file


# --- migrations outside a transaction --------------------------------------------------


def indexes(engine: Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE tablename = :t ORDER BY indexname"),
                {"t": table},
            ).scalars()
        )


def test_several_create_index_concurrently_in_one_no_transaction_file(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            "0001_users.up.sql": "CREATE TABLE users (id int, email text, name text);\n"
            "INSERT INTO users SELECT g, 'u' || g, 'n' || g FROM generate_series(1, 100) g;\n",
            "0002_indexes.up.sql": "-- sqlmig:no-transaction\n"
            "CREATE INDEX CONCURRENTLY users_id ON users (id);\n"
            "CREATE INDEX CONCURRENTLY users_email ON users (email);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY users_name ON users (name);\n",
        },
    )
    result = Migrator(engine, migrations).up()

    assert [(r.version, r.transactional) for r in result.migrations] == [
        ("0001", True),
        ("0002", False),
    ]
    assert indexes(engine, "users") == ["users_email", "users_id", "users_name"]
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param(
            "0001_idx.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\n"
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n"
            "-- +goose Down\nDROP INDEX CONCURRENTLY t_a;\nDROP INDEX CONCURRENTLY t_b;\n",
            id="goose",
        ),
        pytest.param(
            "0001_idx.sql",
            "-- migrate:up transaction:false\n"
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n"
            "-- migrate:down transaction:false\n"
            "DROP INDEX CONCURRENTLY t_a;\nDROP INDEX CONCURRENTLY t_b;\n",
            id="dbmate",
        ),
    ],
)
def test_goose_and_dbmate_no_transaction_forms_run_outside_a_transaction(
    engine: Engine, migrations: Path, name: str, content: str
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a int, b int)"))
    write(migrations, {name: content})
    migrator = Migrator(engine, migrations)

    assert [r.transactional for r in migrator.up().migrations] == [False]
    assert indexes(engine, "t") == ["t_a", "t_b"]
    assert [r.transactional for r in migrator.down().migrations] == [False]
    assert indexes(engine, "t") == []
    assert tracking(engine) == {"0001": "rolled_back"}


def test_function_bodies_full_of_semicolons_split_correctly_outside_a_transaction(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            "0001_fn.up.sql": "-- sqlmig:no-transaction\n"
            "CREATE TABLE t (v text);\n"
            "CREATE FUNCTION note(x text) RETURNS text LANGUAGE plpgsql AS $body$\n"
            "DECLARE\n"
            "  result text;\n"
            "BEGIN\n"
            "  result := x || '; done';  -- a comment; with a semicolon\n"
            "  INSERT INTO t VALUES (result);\n"
            "  RETURN $$nested; $$ || result;\n"
            "END;\n"
            "$body$;\n"
            "CREATE INDEX CONCURRENTLY t_v ON t (v);\n"
            "CREATE FUNCTION twice(x text) RETURNS text LANGUAGE sql\n"
            "BEGIN ATOMIC\n"
            "  INSERT INTO t VALUES (x || ';');\n"
            "  SELECT CASE WHEN x = '' THEN ';' ELSE x || x END;\n"
            "END;\n"
            "SELECT note('first');\n"
            "SELECT twice('ab');\n",
        },
    )
    Migrator(engine, migrations).up()

    assert query(engine, "SELECT v FROM t ORDER BY v") == [("ab;",), ("first; done",)]
    assert query(engine, "SELECT note('again'), twice('c')") == [("nested; again; done", "cc")]
    assert indexes(engine, "t") == ["t_v"]


NO_TRANSACTION_FAILING = (
    "-- sqlmig:no-transaction\n"
    "CREATE TABLE b (id int);\n"
    "CREATE INDEX CONCURRENTLY b_id ON b (id);\n"
    "INSERT INTO b\n"
    "  SELECT id FROM no_such_table;\n"
    "CREATE TABLE c (id int);\n"
)


def test_failure_outside_a_transaction_names_the_statement_and_what_was_applied(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {**table_migration("0001", "a"), "0002_b.up.sql": NO_TRANSACTION_FAILING},
    )
    migrator = Migrator(engine, migrations)
    with pytest.raises(MigrationError) as caught:
        migrator.up()

    error = caught.value
    path = migrations / "0002_b.up.sql"
    assert (error.version, error.path, error.line, error.column, error.sqlstate) == (
        "0002",
        str(path),
        5,
        18,
        "42P01",
    )
    assert error.outcome is Outcome.NEEDS_REPAIR
    assert [r.version for r in error.completed] == ["0001"]
    assert "statements 1-2 of 4 were applied and committed (ending at line 3)" in str(error)
    assert "`sqlmig repair 0002 --applied`, `--rolled-back` or `--forget`" in str(error)
    assert caught.value.outcome is Outcome.NEEDS_REPAIR
    assert tables(engine) == {"schema_migrations", "a", "b"}  # statements 1-2 stay
    assert indexes(engine, "b") == ["b_id"]
    assert states(migrator) == {"0001": "applied", "0002": "failed"}


@pytest.mark.parametrize(
    ("action", "then_runs"),
    [
        pytest.param("applied", ["0003"], id="applied"),
        pytest.param("rolled_back", ["0002", "0003"], id="rolled_back"),
        pytest.param("forget", ["0002", "0003"], id="forget"),
    ],
)
def test_failed_no_transaction_migration_blocks_up_until_repair(
    engine: Engine, migrations: Path, action: str, then_runs: list[str]
) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            "0002_b.up.sql": NO_TRANSACTION_FAILING,
            **table_migration("0003", "d"),
        },
    )
    migrator = Migrator(engine, migrations)
    with pytest.raises(MigrationError):
        migrator.up()

    for attempt in (lambda: migrator.up(), lambda: migrator.validate()):
        with pytest.raises(StateError) as blocked:
            attempt()
        assert "0002 0002_b.up.sql: failed" in str(blocked.value)
        assert "`sqlmig repair 0002 --applied`" in str(blocked.value)
        assert "`--rolled-back`" in str(blocked.value)
        assert "`--forget`" in str(blocked.value)
    assert tables(engine) == {"schema_migrations", "a", "b"}  # nothing more ran

    # The operator undoes or finishes statements 1-2 by hand, fixes the file, repairs.
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE b" if action != "applied" else "CREATE TABLE c (id int)"))
    write(migrations, {"0002_b.up.sql": NO_TRANSACTION_FAILING.replace("no_such_table", "b")})
    said = migrator.repair("2", action)
    assert said == (
        "forgot 0002 0002_b.up.sql (was failed)"
        if action == "forget"
        else f"marked 0002 0002_b.up.sql {action} (was failed)"
    )
    if action == "forget":
        assert tracking(engine) == {"0001": "applied"}
    else:
        assert tracking(engine) == {"0001": "applied", "0002": action}

    assert [r.version for r in migrator.up().migrations] == then_runs
    assert tracking(engine) == {"0001": "applied", "0002": "applied", "0003": "applied"}
    assert tables(engine) == {"schema_migrations", "a", "b", "c", "d"}


@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param(
            "-- migrate:up transaction:false\n"
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n",
            2,
            id="first-statement",
        ),
        pytest.param(
            "-- migrate:up transaction:false\n"
            "CREATE INDEX CONCURRENTLY t_b ON t (b);\n  CREATE INDEX CONCURRENTLY t_a ON t (a);\n",
            3,
            id="later-statement",
        ),
    ],
)
def test_failure_without_a_server_position_names_where_its_statement_starts(
    engine: Engine, migrations: Path, content: str, line: int
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a int, b int)"))
        conn.execute(text("CREATE INDEX t_a ON t (a)"))
    write(migrations, {"0001_idx.sql": content})

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, migrations).up()

    error = caught.value
    assert (error.sqlstate, error.line, error.column) == ("42P07", line, 1 if line == 2 else 3)
    assert f"{migrations / '0001_idx.sql'}:{line}:{error.column}: " in str(error)
    assert 'relation "t_a" already exists' in str(error)


def test_no_transaction_down_that_fails_part_way_blocks_up_until_repair(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\nCREATE TABLE a2 (id int);\n",
            "0001_a.down.sql": "-- sqlmig:no-transaction\n"
            "DROP TABLE a;\nDROP TABLE no_such_table;\nDROP TABLE a2;\n",
        },
    )
    migrator = Migrator(engine, migrations)
    migrator.up()
    with pytest.raises(MigrationError) as caught:
        migrator.down()

    assert (caught.value.direction, caught.value.line, caught.value.column) == ("down", 3, 1)
    assert caught.value.outcome is Outcome.NEEDS_REPAIR
    assert (
        "It runs outside a transaction: statement 1 of 3 was applied and "
        "committed (ending at line 2). It is recorded as 'failed' and `sqlmig up` will refuse"
    ) in str(caught.value)
    assert tables(engine) == {"schema_migrations", "a2"}  # half rolled back
    assert states(migrator) == {"0001": "failed"}
    with pytest.raises(StateError, match=re.escape("0001 0001_a.up.sql: failed")):
        migrator.up()  # its up would run on top of the half-undone schema
    assert tables(engine) == {"schema_migrations", "a2"}

    with engine.begin() as conn:  # the operator finishes the rollback by hand
        conn.execute(text("DROP TABLE a2"))
    migrator.repair("0001", "rolled_back")
    assert [r.version for r in migrator.up().migrations] == ["0001"]
    assert tables(engine) == {"schema_migrations", "a", "a2"}


def test_failed_up_of_a_migration_whose_down_runs_outside_a_transaction_asks_for_repair(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\nSELECT * FROM no_such_table;\n",
            "0001_a.down.sql": "-- sqlmig:no-transaction\nDROP TABLE a;\n",
        },
    )
    migrator = Migrator(engine, migrations)
    with pytest.raises(MigrationError) as caught:
        migrator.up()

    assert caught.value.state == (
        "Its transaction was rolled back: nothing of 0001 remains, and it is recorded as "
        "'failed'. Fix the script, then `sqlmig repair 0001 --rolled-back` and `sqlmig up`: "
        "its down script runs outside a transaction, so `sqlmig up` cannot tell this failure "
        "from a down that stopped part-way."
    )
    write(migrations, {"0001_a.up.sql": "CREATE TABLE a (id int);\n"})
    with pytest.raises(StateError):
        migrator.up()
    migrator.repair("1", "rolled_back")
    assert [r.version for r in migrator.up().migrations] == ["0001"]


# --- scripts are sent exactly as written ----------------------------------------------


AS_WRITTEN = r"""
CREATE TABLE notes (id int, body text);
-- a comment; with a semicolon and 100% of a :name and a %s
/* a block comment; /* nested; */ still ; comment */
INSERT INTO notes VALUES (1, '100% sure; really');
INSERT INTO notes VALUES (2, '%s and %(name)s and %%');
INSERT INTO notes VALUES (3, ':name and :other::text');
INSERT INTO notes VALUES (4, E'it''s \'quoted\'; \\ done');
INSERT INTO notes VALUES (5, $$dollar; 'quoted' $1 %s$$);
INSERT INTO notes VALUES (6, $tag$tagged $$ ; inside$tag$);
CREATE FUNCTION add_note(integer, text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO notes VALUES ($1, $2 || '; via $1 %');
$$;
SELECT add_note(7, 'param');
INSERT INTO notes VALUES (8, ':name'::text || '%');
SELECT 10 % 3 AS "percent; column", 'x' AS ":name";
"""

AS_WRITTEN_ROWS = [
    (1, "100% sure; really"),
    (2, "%s and %(name)s and %%"),
    (3, ":name and :other::text"),
    (4, "it's 'quoted'; \\ done"),
    (5, "dollar; 'quoted' $1 %s"),
    (6, "tagged $$ ; inside"),
    (7, "param; via $1 %"),
    (8, ":name%"),
]


@pytest.mark.parametrize("directive", ["", "-- sqlmig:no-transaction\n"])
def test_scripts_are_sent_as_written_with_percent_colon_and_dollar_text(
    engine: Engine, migrations: Path, directive: str
) -> None:
    write(migrations, {"0001_notes.up.sql": directive + AS_WRITTEN})
    Migrator(engine, migrations).up()

    assert query(engine, "SELECT id, body FROM notes ORDER BY id") == AS_WRITTEN_ROWS


# --- refused before anything runs -------------------------------------------------------


@pytest.mark.parametrize("command", ["COMMIT", "ROLLBACK", "BEGIN", "commit work"])
def test_transaction_control_in_a_transactional_script_is_refused_before_anything_runs(
    engine: Engine, migrations: Path, command: str
) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            "0002_b.up.sql": f"CREATE TABLE b (id int);\n\n{command};\nCREATE TABLE c (id int);\n",
        },
    )
    with pytest.raises(MigrationFileError) as caught:
        Migrator(engine, migrations).up()

    [problem] = caught.value.problems
    assert (problem.path, problem.line) == (str(migrations / "0002_b.up.sql"), 3)
    assert f"{migrations / '0002_b.up.sql'}:3: {command.split()[0].upper()} inside a migration" in (
        str(caught.value)
    )
    assert "nothing was run" in str(caught.value)
    assert tables(engine) == set()  # not even the tracking table


def test_psql_meta_command_is_refused_before_anything_runs(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            "0002_b.up.sql": "CREATE TABLE b (id int);\n\\i x.sql\n",
        },
    )
    with pytest.raises(MigrationFileError) as caught:
        Migrator(engine, migrations).up()

    assert f"{migrations / '0002_b.up.sql'}:2: psql meta-command \\i cannot run" in str(
        caught.value
    )
    assert tables(engine) == set()


# --- drift ------------------------------------------------------------------------------


def test_edited_applied_file_stops_up_before_anything_runs(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, table_migration("0001", "a"))
    migrator = Migrator(engine, migrations)
    migrator.up()
    recorded_sum = migrator.status()[0].checksum
    write(migrations, {"0001_a.up.sql": "CREATE TABLE a (id bigint);\n"})
    write(migrations, table_migration("0002", "b"))
    edited_sum = migrator.status()[0].checksum

    with pytest.raises(StateError) as caught:
        migrator.up()

    assert caught.value.problems == [
        f"0001 0001_a.up.sql: checksum {edited_sum} differs from recorded {recorded_sum}"
    ]
    assert "if an edit was intentional, `sqlmig repair 0001 --checksum`" in str(caught.value)
    assert tables(engine) == {"schema_migrations", "a"}  # 0002 did not run
    with pytest.raises(StateError):
        migrator.validate()

    assert migrator.repair("0001", "checksum") == (
        f"recorded checksum of 0001 0001_a.up.sql as {edited_sum}"
    )
    assert states(migrator) == {"0001": "applied", "0002": "pending"}
    assert [r.version for r in migrator.up().migrations] == ["0002"]


def test_allow_drift_runs_despite_an_edited_file(engine: Engine, migrations: Path) -> None:
    write(migrations, table_migration("0001", "a"))
    Migrator(engine, migrations).up()
    write(migrations, {"0001_a.up.sql": "CREATE TABLE a (id bigint);\n"})
    write(migrations, table_migration("0002", "b"))

    result = Migrator(engine, migrations, allow_drift=True).up()

    assert [r.version for r in result.migrations] == ["0002"]
    assert tables(engine) == {"schema_migrations", "a", "b"}


def test_deleted_applied_file_stops_up_before_anything_runs(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    migrator = Migrator(engine, migrations)
    migrator.up(steps=1)
    (migrations / "0001_a.up.sql").unlink()
    (migrations / "0001_a.down.sql").unlink()

    with pytest.raises(StateError) as caught:
        migrator.up()

    assert "  0001 0001_a.up.sql: file is gone\n" in str(caught.value)
    assert tables(engine) == {"schema_migrations", "a"}
    assert states(migrator) == {"0001": "missing", "0002": "pending"}
    assert [r.version for r in Migrator(engine, migrations, allow_drift=True).up().migrations] == [
        "0002"
    ]


def test_crlf_and_bom_reencoding_of_an_applied_file_is_not_drift(
    engine: Engine, migrations: Path
) -> None:
    script = "-- users\nCREATE TABLE a (\n  id int\n);\n"
    write(
        migrations,
        {
            "0001_a.up.sql": script,
            "0002_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"
            "-- migrate:down\nDROP TABLE b;\n",
        },
    )
    migrator = Migrator(engine, migrations)
    migrator.up()
    write(
        migrations,
        {
            "0001_a.up.sql": b"\xef\xbb\xbf" + script.replace("\n", "\r\n").encode(),
            "0002_b.sql": b"\xef\xbb\xbf-- migrate:up\r\nCREATE TABLE b (id int);\r\n"
            b"-- migrate:down\r\nDROP TABLE b;\r\n",
            **table_migration("0003", "c"),
        },
    )

    assert states(migrator) == {"0001": "applied", "0002": "applied", "0003": "pending"}
    assert [r.version for r in migrator.up().migrations] == ["0003"]


# --- out of order -----------------------------------------------------------------------


def test_out_of_order_migration_is_refused_by_name_unless_allowed(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, {**table_migration("0001", "a"), **table_migration("0003", "c")})
    Migrator(engine, migrations).up()
    write(migrations, table_migration("0002", "b"))

    with pytest.raises(StateError) as caught:
        Migrator(engine, migrations).up()
    assert caught.value.problems == ["0002 0002_b.up.sql: pending"]
    assert "older than the newest applied one (3)" in str(caught.value)
    assert tables(engine) == {"schema_migrations", "a", "c"}

    result = Migrator(engine, migrations, allow_out_of_order=True).up()
    assert [r.version for r in result.migrations] == ["0002"]
    assert tracking(engine) == {"0001": "applied", "0002": "applied", "0003": "applied"}


# --- down and redo ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "rolled_back", "left"),
    [
        pytest.param({}, ["0004"], {"a", "b", "c"}, id="one-by-default"),
        pytest.param({"steps": 2}, ["0004", "0003"], {"a", "b"}, id="steps"),
        pytest.param({"target": "2"}, ["0004", "0003"], {"a", "b"}, id="target"),
        pytest.param({"target": "0"}, ["0004", "0003", "0002", "0001"], set(), id="target-0"),
        pytest.param({"steps": None}, ["0004", "0003", "0002", "0001"], set(), id="all"),
    ],
)
def test_down_rolls_back_newest_first(
    engine: Engine,
    migrations: Path,
    kwargs: dict[str, object],
    rolled_back: list[str],
    left: set[str],
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)
    migrator.up()

    result = migrator.down(**kwargs)  # type: ignore[arg-type]

    assert result.direction == "down"
    assert [(r.version, r.direction) for r in result.migrations] == [
        (v, "down") for v in rolled_back
    ]
    assert tables(engine) == {"schema_migrations", *left}
    assert tracking(engine) == {
        v: "rolled_back" if v in rolled_back else "applied"
        for v in ("0001", "0002", "0003", "0004")
    }


def test_down_without_a_down_script_stops_before_anything_runs(
    engine: Engine, migrations: Path
) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            **table_migration("0002", "b", down=False),
            **table_migration("0003", "c"),
        },
    )
    migrator = Migrator(engine, migrations)
    migrator.up()

    with pytest.raises(StateError) as caught:
        migrator.down(steps=3)

    assert caught.value.problems == ["0002 0002_b.up.sql: no down script"]
    assert tables(engine) == {"schema_migrations", "a", "b", "c"}  # not even 0003
    assert set(tracking(engine).values()) == {"applied"}
    assert [r.version for r in migrator.down().migrations] == ["0003"]


def test_redo_rolls_back_the_newest_and_applies_it_again(engine: Engine, migrations: Path) -> None:
    write(
        migrations,
        {
            **table_migration("0001", "a"),
            "0002_b.up.sql": "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n",
            "0002_b.down.sql": "DROP TABLE b;\n",
        },
    )
    migrator = Migrator(engine, migrations)
    migrator.up()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO b VALUES (2)"))

    result = migrator.redo()

    assert [(r.version, r.direction) for r in result.migrations] == [
        ("0002", "down"),
        ("0002", "up"),
    ]
    assert query(engine, "SELECT id FROM b") == [(1,)]  # a new table b
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


# --- baseline and repair -----------------------------------------------------------------


def test_baseline_records_migrations_as_applied_without_running_them(
    engine: Engine, migrations: Path
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)

    with pytest.raises(UsageError, match="baseline version 5 is not a known migration file"):
        migrator.baseline("5")
    assert migrator.baseline("2") == ["0001", "0002"]

    assert tables(engine) == {"schema_migrations"}  # recorded, not run
    assert states(migrator) == {
        "0001": "applied",
        "0002": "applied",
        "0003": "pending",
        "0004": "pending",
    }
    with pytest.raises(AlreadyTrackedError) as caught:
        migrator.baseline("3")
    assert (caught.value.table, caught.value.recorded) == ("schema_migrations", 2)
    assert str(caught.value).startswith(
        "cannot baseline: the tracking table schema_migrations already records migrations; "
        "nothing was run:\n  0001 0001_a.up.sql: applied\n  0002 0002_b.up.sql: applied\n"
    )
    assert [r.version for r in migrator.up().migrations] == ["0003", "0004"]


def test_baseline_sends_the_callers_statements_in_the_records_transaction(
    engine: Engine, migrations: Path
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)
    marker = text("CREATE TABLE marker (id int)")

    with pytest.raises(QueryError) as caught:
        migrator.baseline(lambda: Baseline("2", before=[marker], after=[text("SELECT 1 / 0")]))

    assert caught.value.sqlstate == "22012"
    assert tables(engine) == set()  # nor the tracking table: it commits with the records
    assert migrator.baseline(lambda: Baseline("2", after=[marker])) == ["0001", "0002"]
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}
    assert tables(engine) == {"schema_migrations", "marker"}


def test_repair_refuses_an_unknown_version_or_action(engine: Engine, migrations: Path) -> None:
    write(migrations, table_migration("0001", "a"))
    migrator = Migrator(engine, migrations)
    migrator.up()

    with pytest.raises(UsageError, match="no tracking row for version 2"):
        migrator.repair("2", "applied")
    with pytest.raises(UsageError, match="repair action must be one of"):
        migrator.repair("1", "delete")
    assert tracking(engine) == {"0001": "applied"}


def test_repair_marks_an_applied_migration_rolled_back_and_applied_again(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    migrator = Migrator(engine, migrations)
    migrator.up()
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE b"))

    assert migrator.repair("2", "rolled_back") == (
        "marked 0002 0002_b.up.sql rolled_back (was applied)"
    )
    assert states(migrator) == {"0001": "applied", "0002": "rolled_back"}
    assert migrator.repair("0002", "applied") == (
        "marked 0002 0002_b.up.sql applied (was rolled_back)"
    )
    assert states(migrator) == {"0001": "applied", "0002": "applied"}
    assert migrator.repair("2", "forget") == "forgot 0002 0002_b.up.sql (was applied)"
    assert [r.version for r in migrator.up().migrations] == ["0002"]
    assert tables(engine) == {"schema_migrations", "a", "b"}


# --- dry run ------------------------------------------------------------------------------


def test_plan_returns_the_exact_sql_and_changes_nothing(engine: Engine, migrations: Path) -> None:
    up_a = "-- users\nCREATE TABLE a (id int, note text DEFAULT '100%: yes');\n"
    write(
        migrations,
        {
            "0001_a.up.sql": up_a,
            "0002_idx.up.sql": "-- sqlmig:no-transaction\n"
            "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"
            "CREATE INDEX CONCURRENTLY a_note ON a (note);\n",
        },
    )
    migrator = Migrator(engine, migrations)

    statements = migrator.plan("up")

    def recorded_as(sql: str, version: str, filename: str, status: str) -> bool:
        checksum = next(s.checksum for s in migrator.status() if s.version == version)
        return (
            "INSERT INTO schema_migrations (version, filename, checksum, applied_at, "
            f"duration_ms, status) VALUES ('{version}', '{filename}', '{checksum}', now(), "
            in sql
            and f"'{status}') ON CONFLICT (version) DO UPDATE SET version = '{version}'" in sql
            and "WHERE schema_migrations.status != 'applied'" in sql
        )

    assert [s for i, s in enumerate(statements) if i not in (2, 4, 7)] == [
        "BEGIN",
        "CREATE TABLE a (id int, note text DEFAULT '100%: yes')",
        "COMMIT",
        "CREATE INDEX CONCURRENTLY a_id ON a (id)",
        "CREATE INDEX CONCURRENTLY a_note ON a (note)",
    ]
    assert recorded_as(statements[2], "0001", "0001_a.up.sql", "applied")
    # in its transaction, refusing to overwrite another run's 'applied' row
    assert statements[2].startswith("WITH recorded AS")
    assert statements[2].endswith("SELECT 1 / CAST(count(*) AS NUMERIC) AS anon_1 \nFROM recorded")
    # as the run marks it before starting
    assert recorded_as(statements[4], "0002", "0002_idx.up.sql", "failed")
    assert recorded_as(statements[7], "0002", "0002_idx.up.sql", "applied")
    assert len(statements) == 8
    assert migrator.plan("up", steps=1) == statements[:4]
    assert tables(engine) == set()  # no tracking table, no table a


def test_plan_down_shows_the_down_scripts_and_the_bookkeeping(
    engine: Engine, migrations: Path
) -> None:
    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    migrator = Migrator(engine, migrations)
    migrator.up()

    assert migrator.plan("down") == [
        "BEGIN",
        "DROP TABLE b",
        "UPDATE schema_migrations SET applied_at=now(), status='rolled_back' "
        "WHERE schema_migrations.version = '0002'",
        "COMMIT",
    ]
    assert tables(engine) == {"schema_migrations", "a", "b"}
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


def test_plan_takes_the_same_steps_and_target_as_up_and_down(
    engine: Engine, migrations: Path
) -> None:
    four_tables(migrations)
    migrator = Migrator(engine, migrations)

    def planned(direction: str, **kwargs: object) -> list[str]:
        scripts = migrator.plan(direction, **kwargs)  # type: ignore[arg-type]
        return [s.split()[2] for s in scripts if s.startswith(("CREATE", "DROP"))]

    assert planned("up") == ["a", "b", "c", "d"]
    assert planned("up", steps=None) == ["a", "b", "c", "d"]
    assert planned("up", steps=2) == ["a", "b"]
    assert planned("up", target="3") == ["a", "b", "c"]
    migrator.up()
    assert planned("down") == ["d"]
    assert planned("down", steps=2) == ["d", "c"]
    assert planned("down", steps=None) == ["d", "c", "b", "a"]  # as down(steps=None): all
    assert planned("down", target="2") == ["d", "c"]
    assert planned("down", target="0") == ["d", "c", "b", "a"]
    assert tables(engine) == {"schema_migrations", "a", "b", "c", "d"}


# --- an application's engine ------------------------------------------------------------


def app_engine(database_url: str, name: str = "app") -> Engine:
    """An engine as an application would make it, with its own pool settings."""
    url = make_url(database_url).set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=3, connect_args={"application_name": name})


def gone(observer: psycopg.Connection, application: str) -> bool:
    """Whether every session of ``application`` has ended; a backend leaves
    pg_stat_activity a moment after its client closed the connection."""
    deadline = time.monotonic() + 5
    while sessions(observer, application) and time.monotonic() < deadline:
        time.sleep(0.01)
    return sessions(observer, application) == 0


def test_application_engine_is_left_usable_undisposed_with_the_same_pool(
    database_url: str, migrations: Path, observer: psycopg.Connection
) -> None:
    four_tables(migrations)
    engine = app_engine(database_url)
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    most: list[int] = []

    def progress(event: Event) -> None:
        most.append(sessions(observer, "app"))

    try:
        with Migrator(engine, migrations, on_event=progress) as migrator:
            migrator.up()
            migrator.down(steps=None)
        assert engine.pool is pool
        assert pool.checkedout() == 0
        assert pool.checkedin() == 2  # lock and work connections, given back
        assert sessions(observer, "app") == 2
        assert max(most) == 2 and len(most) == 16
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar() == 4
    finally:
        engine.dispose()


def test_migrator_given_a_url_disposes_its_own_engine_on_close(
    database_url: str, migrations: Path, observer: psycopg.Connection
) -> None:
    write(migrations, table_migration("0001", "a"))
    during: list[int] = []

    def progress(event: Event) -> None:
        during.append(sessions(observer, "sqlmig"))

    with Migrator(database_url, migrations, on_event=progress) as migrator:
        migrator.up()
        assert sessions(observer, "sqlmig") >= 1
    assert during == [2, 2]
    assert gone(observer, "sqlmig")


def test_migration_session_settings_are_reset_before_connections_go_back_to_the_pool(
    database_url: str, migrations: Path
) -> None:
    seen = (
        "INSERT INTO seen SELECT '{}', current_setting('lock_timeout'), "
        "current_setting('statement_timeout');\n"
    )
    write(
        migrations,
        {
            "0001_seen.up.sql": "CREATE TABLE seen (migration text, lock text, statement text);\n"
            + seen.format("transactional"),
            "0002_seen.up.sql": "-- sqlmig:no-transaction\n" + seen.format("no-transaction"),
        },
    )
    engine = app_engine(database_url)

    def pooled() -> list[tuple[object, ...]]:
        """pid, lock_timeout, statement_timeout and autocommit of two pooled connections."""
        with engine.connect() as first, engine.connect() as second:
            return sorted(
                (
                    *c.exec_driver_sql(
                        "SELECT pg_backend_pid(), current_setting('lock_timeout'), "
                        "current_setting('statement_timeout')"
                    ).one(),
                    c.connection.dbapi_connection.autocommit,  # type: ignore[union-attr]
                )
                for c in (first, second)
            )

    try:
        before = pooled()
        assert [row[1:] for row in before] == [("0", "0", False), ("0", "0", False)]

        Migrator(engine, migrations, migration_lock_timeout=1.5, statement_timeout=30).up()

        assert query(engine, "SELECT * FROM seen ORDER BY migration DESC") == [
            ("transactional", "1500ms", "30s"),
            ("no-transaction", "1500ms", "30s"),
        ]
        assert pooled() == before  # the same sessions, back as they were
    finally:
        engine.dispose()


def test_the_advisory_lock_is_held_during_the_run_and_free_afterwards(
    engine: Engine, migrations: Path, observer: psycopg.Connection
) -> None:
    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    free: list[bool] = []

    def progress(event: Event) -> None:
        row = observer.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,)).fetchone()
        assert row is not None
        free.append(bool(row[0]))
        if row[0]:
            observer.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))

    Migrator(engine, migrations, on_event=progress).up()

    assert free == [False, False, False, False]
    row = observer.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,)).fetchone()
    assert row == (True,)


def test_a_line_per_migration_with_its_duration_is_logged(
    engine: Engine, migrations: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        migrations,
        {**table_migration("0001", "users"), **table_migration("0002", "orders")},
    )
    migrator = Migrator(engine, migrations)
    with caplog.at_level(logging.INFO, logger="sqlmig"):
        migrator.up()
        migrator.down()

    timed = [
        r.getMessage()
        for r in caplog.records
        if r.name == "sqlmig" and re.fullmatch(r".* in \d+ ms", r.getMessage())
    ]
    assert [re.sub(r"\d+ ms", "N ms", m) for m in timed] == [
        "applied 0001 users in N ms",
        "applied 0002 orders in N ms",
        "rolled back 0002 orders in N ms",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "sqlmig")


def test_a_work_connection_closed_before_a_migration_is_lost_not_applied(
    database_url: str, migrations: Path, engine: Engine
) -> None:
    """The driver's own error (a closed connection) is never taken for success."""
    from sqlalchemy import event

    from sqlmig.errors import ConnectionLostError

    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    raw: list[object] = []
    event.listen(engine, "checkout", lambda dbapi, record, proxy: raw.append(dbapi))

    def progress(event: Event) -> None:
        if isinstance(event, MigrationStarted) and event.migration.version == "0002":
            raw[-1].close()  # type: ignore[attr-defined]  # the work connection

    with pytest.raises(ConnectionLostError) as lost:
        Migrator(engine, migrations, on_event=progress).up()

    assert lost.value.version == "0002"
    assert [m.version for m in lost.value.completed] == ["0001"]
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT version, status FROM schema_migrations"))
        assert [tuple(r) for r in recorded] == [("0001", "applied")]


def test_an_interrupt_after_the_run_reports_what_it_completed(
    database_url: str, migrations: Path, engine: Engine
) -> None:
    """Ctrl-C landing as the run hands its work connection back: the migrations are
    committed, and the error says so instead of "nothing was in progress"."""
    from sqlalchemy import event

    from sqlmig.errors import MigrationInterrupted

    write(migrations, {**table_migration("0001", "a"), **table_migration("0002", "b")})
    checkins: list[int] = []

    def interrupt_once_done(dbapi: object, record: object) -> None:
        checkins.append(1)
        if len(checkins) == 1:  # the work connection, given back after both migrations
            raise KeyboardInterrupt("SIGINT")

    event.listen(engine, "checkin", interrupt_once_done)
    with pytest.raises(MigrationInterrupted) as stopped:
        Migrator(engine, migrations).up()

    assert [m.version for m in stopped.value.completed] == ["0001", "0002"]
    assert (stopped.value.outcome, stopped.value.signal) == (Outcome.BETWEEN, "SIGINT")
    assert "while it was releasing the lock; they are committed." in str(stopped.value)
    with engine.connect() as conn:
        recorded = conn.execute(text("SELECT version, status FROM schema_migrations"))
        assert sorted(tuple(r) for r in recorded) == [("0001", "applied"), ("0002", "applied")]

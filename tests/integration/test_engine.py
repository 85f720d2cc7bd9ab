"""The run engine on a real PostgreSQL: what is sent, in how many round trips, and how
every failure is told apart (a SQL error is exit 1 wherever it happens, a lost
connection exit 4), located in its file, and left in a true state."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pgserver
import psycopg
import pytest
from helpers import libpq, tables, tracking, write
from sqlalchemy.engine import make_url
from wire import captured

from sqlmig.errors import ConnectionLostError, MigrationError, UsageError
from sqlmig.migrator import Migrator
from sqlmig.outcome import Outcome

pytestmark = pytest.mark.integration

PSQL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"


# --- SQL errors are the migration's, wherever they happen ---------------------------------


DEFERRED = {
    "0001_parents.up.sql": "CREATE TABLE parent (id int PRIMARY KEY);\n"
    "CREATE TABLE child (parent_id int REFERENCES parent (id) "
    "DEFERRABLE INITIALLY DEFERRED);\n",
    "0002_orphan.up.sql": "INSERT INTO child VALUES (42);\nINSERT INTO parent VALUES (1);\n",
}


def test_a_deferred_constraint_failing_at_commit_is_the_migrations_sql_error(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(tmp_path / "m", DEFERRED)

    with pytest.raises(MigrationError) as caught, Migrator(database_url, folder) as m:
        m.up()

    error = caught.value
    assert not isinstance(error, ConnectionLostError)
    assert (error.exit_code, error.version, error.sqlstate) == (1, "0002", "23503")
    assert error.constraint == "child_parent_id_fkey"
    assert error.outcome is Outcome.ROLLED_BACK
    assert 'its COMMIT failed: insert or update on table "child" violates foreign key' in str(error)
    assert "Its transaction was rolled back: nothing of 0002 remains" in str(error)
    assert tracking(observer) == {"0001": "applied", "0002": "failed"}
    assert observer.execute("SELECT count(*) FROM child").fetchone() == (0,)


def test_a_tracking_table_the_role_cannot_write_is_a_sql_error_with_nothing_applied(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(tmp_path / "m", {"0001_a.up.sql": "CREATE TABLE a (id int);\n"})
    with Migrator(database_url, folder) as m:
        m.baseline("1")  # the table exists, owned by the admin
    write(folder, {"0002_b.up.sql": "CREATE TABLE b (id int);\n"})
    role = f"reader_{observer.info.backend_pid}"
    observer.execute(f"CREATE ROLE {role} LOGIN")
    try:
        database = observer.info.dbname
        observer.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        observer.execute(f"GRANT CONNECT ON DATABASE {database} TO {role}")
        observer.execute(f"GRANT SELECT ON schema_migrations TO {role}")
        as_reader = make_url(database_url).set(username=role, password=None)

        with pytest.raises(MigrationError) as caught, Migrator(as_reader, folder) as m:
            m.up()

        error = caught.value
        assert (error.exit_code, error.version, error.sqlstate) == (1, "0002", "42501")
        assert error.server_message.startswith(
            "recording it in the tracking table failed: permission denied for table "
            "schema_migrations"
        )
        assert error.outcome is Outcome.ROLLED_BACK
        assert "b" not in tables(observer)
        assert tracking(observer) == {"0001": "applied"}
    finally:
        observer.execute(f"DROP OWNED BY {role}")
        observer.execute(f"DROP ROLE {role}")


# --- every error has a line, psql's when the server gives no position ---------------------

NO_POSITION = {
    "missing relation": "CREATE TABLE t (a int);\nDROP TABLE nope;\n",
    "missing column": "CREATE TABLE t (a int);\n\nCOMMENT ON COLUMN t.nope\n  IS 'x';\n",
    "missing role": "CREATE TABLE t (a int);\nGRANT SELECT ON t TO nobody_at_all;\n",
    "missing function": "CREATE TABLE t (a int);\nDROP FUNCTION no_such_function(int);\n",
    "duplicate object": "CREATE TABLE t (a int);\n-- again\nCREATE TABLE t (a int);\n",
    "bad cast": "CREATE TABLE t (a int);\nINSERT INTO t\n  SELECT 'x'::int;\n",
    "duplicate key": "CREATE TABLE t (a int UNIQUE);\nINSERT INTO t VALUES (1);\n"
    "INSERT INTO t\nVALUES (1);\n",
}


def psql_line(url: str, script: Path) -> int:
    """The line psql names for the first error of the script."""
    done = subprocess.run(
        [str(PSQL), libpq(url), "-v", "ON_ERROR_STOP=1", "-q", "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    prefix = f"psql:{script}:"
    line = next(x for x in done.stderr.splitlines() if x.startswith(prefix))
    return int(line[len(prefix) :].split(":", 1)[0])


@pytest.mark.parametrize("case", NO_POSITION)
def test_the_line_of_every_error_is_the_one_psql_names(
    case: str, pg_admin_url: str, tmp_path: Path
) -> None:
    import pgsource

    folder = write(tmp_path / "m", {"0001_case.up.sql": NO_POSITION[case]})
    with pgsource.fresh_database(pg_admin_url) as url:
        expected = psql_line(url, folder / "0001_case.up.sql")
    with (
        pgsource.fresh_database(pg_admin_url) as url,
        pytest.raises(MigrationError) as caught,
        Migrator(url, folder) as m,
    ):
        m.up()

    assert caught.value.line == expected
    assert caught.value.column is not None
    assert f"0001_case.up.sql:{expected}:{caught.value.column}: " in str(caught.value)


# --- what is shown is what is sent, in one round trip per migration -----------------------

SCRIPTS = {
    "0001_accounts.up.sql": "-- Accounts.\nCREATE TABLE accounts (id int, note text DEFAULT "
    "'100%: yes; really');\n/* a comment; */\nINSERT INTO accounts VALUES (1, $$a;b$$);\n",
    "0002_fn.up.sql": "CREATE FUNCTION one() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n"
    "  SELECT 1;\nEND;\nSELECT one();\n",
    "0003_idx.up.sql": "-- sqlmig:no-transaction\n"
    "CREATE INDEX CONCURRENTLY accounts_id ON accounts (id);\n",
    "0004_more.up.sql": "ALTER TABLE accounts ADD COLUMN e text;\n"
    "UPDATE accounts SET e = E'it''s \\\\ done';\n",
}


def test_a_dry_run_shows_exactly_what_the_server_then_receives(
    database_url: str, tmp_path: Path
) -> None:
    folder = write(tmp_path / "m", SCRIPTS)
    with captured(database_url) as (proxy, capture), Migrator(proxy.url(database_url), folder) as m:
        planned = m.plan("up")
        capture.sent.clear()
        m.up()

    work = next(s.connection for s in capture.sent if s.sql == "BEGIN")
    executed = [s for s in capture.sent if s.connection == work and "set_config" not in s.sql]
    assert len(executed) == len(planned)
    for shown, sent in zip(planned, executed, strict=True):
        if sent.params is None:  # the scripts, BEGIN and COMMIT: byte for byte
            assert shown == sent.sql
        else:  # sqlmig's own records: the same statement, its values shown inline
            assert shown.split("(", 1)[0] == sent.sql.split("(", 1)[0]
            assert all(value is None or f"'{value}'" in shown for value in sent.params[:3])


def test_each_transactional_migration_costs_one_round_trip(
    database_url: str, tmp_path: Path
) -> None:
    files = {
        f"{n:04d}_t{n}.up.sql": f"CREATE TABLE t{n} (id int);\nINSERT INTO t{n} VALUES (1);\n"
        for n in range(1, 11)
    }
    folder = write(tmp_path / "m", files)
    with captured(database_url) as (proxy, capture):
        with Migrator(proxy.url(database_url), folder) as m:
            m.up()
        work = next(s.connection for s in capture.sent if s.sql == "BEGIN")
        # the session settings, then one per migration
        assert capture.round_trips[work] == 1 + 10
        assert sum(capture.round_trips.values()) <= 8 + 10


# --- all or nothing ------------------------------------------------------------------------


def test_single_transaction_applies_all_or_nothing(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(
        tmp_path / "m",
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\n",
            "0002_b.up.sql": "CREATE TABLE b (id int);\n",
            "0003_c.up.sql": "CREATE TABLE c (id int);\nSELECT * FROM nope;\n",
        },
    )
    with pytest.raises(MigrationError) as caught, Migrator(database_url, folder) as m:
        m.up(single_transaction=True)

    assert (caught.value.version, caught.value.line, caught.value.outcome) == (
        "0003",
        2,
        Outcome.ROLLED_BACK,
    )
    assert tables(observer) == {"schema_migrations"}
    assert tracking(observer) == {"0003": "failed"}
    assert caught.value.completed == ()

    write(folder, {"0003_c.up.sql": "CREATE TABLE c (id int);\n"})
    with Migrator(database_url, folder) as m:
        result = m.up(single_transaction=True)
    assert [r.version for r in result.migrations] == ["0001", "0002", "0003"]
    assert tables(observer) == {"schema_migrations", "a", "b", "c"}
    assert set(tracking(observer).values()) == {"applied"}


def test_single_transaction_refuses_a_migration_that_runs_outside_one(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(
        tmp_path / "m",
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\n",
            "0002_i.up.sql": "-- sqlmig:no-transaction\nCREATE INDEX CONCURRENTLY i ON a (id);\n",
        },
    )
    with pytest.raises(UsageError) as caught, Migrator(database_url, folder) as m:
        m.up(single_transaction=True)

    assert caught.value.exit_code == 2
    assert caught.value.options == ("single_transaction", "target")
    assert str(caught.value).startswith(
        "single_transaction=True runs every pending migration in one transaction, but 0002 ("
    )
    assert "must run outside a transaction (-- sqlmig:no-transaction); nothing was run." in str(
        caught.value
    )
    assert "a" not in tables(observer)


# --- one Migrator, two threads -------------------------------------------------------------


def test_one_migrator_used_from_two_threads_applies_each_migration_once(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    files = {
        f"{n:04d}_t{n}.up.sql": f"CREATE TABLE t{n} (id int);\nSELECT pg_sleep(0.01);\n"
        for n in range(1, 21)
    }
    folder = write(tmp_path / "m", files)
    results: list[int] = []
    errors: list[BaseException] = []
    with Migrator(database_url, folder) as m:

        def run() -> None:
            try:
                results.append(len(m.up().migrations))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert errors == []
    assert sorted(results) == [0, 20]
    assert set(tracking(observer).values()) == {"applied"} and len(tracking(observer)) == 20


def test_a_script_that_turns_standard_conforming_strings_off_is_split_as_the_server_reads_it(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    """Backslashes escape in plain strings once it is off: in the script that turned it
    off, and in the next ones on the same session."""
    folder = write(
        tmp_path / "m",
        {
            "0001_off.up.sql": "SET standard_conforming_strings = off;\n"
            "CREATE TABLE notes (body text);\n"
            "INSERT INTO notes VALUES ('it\\'s; one');\n",
            # One statement once it is off; three (the last a comment) while it is on.
            "0002_later.up.sql": "INSERT INTO notes VALUES ('two\\'); SELECT 1; --');\n",
        },
    )
    with Migrator(database_url, folder) as m:
        m.up()

    rows = observer.execute("SELECT body FROM notes ORDER BY body").fetchall()
    assert rows == [("it's; one",), ("two'); SELECT 1; --",)]


# --- BEGIN … COMMIT segments of a no-transaction script ----------------------------------

SEGMENTS = (
    "-- sqlmig:no-transaction\n"
    "CREATE TABLE a (id int);\n"
    "BEGIN;\n"
    "SET LOCAL lock_timeout = '5s';\n"
    "CREATE TABLE b (setting text);\n"
    "INSERT INTO b SELECT current_setting('lock_timeout');\n"
    "COMMIT;\n"
    "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"
    "BEGIN;\n"
    "CREATE TABLE c (id int);\n"
    "INSERT INTO c VALUES (1);\n"
    "COMMIT;\n"
)


def test_a_segment_of_a_no_transaction_script_runs_as_one_transaction_in_one_round_trip(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(tmp_path / "m", {"0001_segments.up.sql": SEGMENTS})
    with captured(database_url) as (proxy, capture), Migrator(proxy.url(database_url), folder) as m:
        m.up()
        work = next(s.connection for s in capture.sent if s.sql == "BEGIN")
        # settings, marking, a, the first segment, the index, the second segment, record
        assert capture.round_trips[work] == 7

    assert observer.execute("SELECT setting FROM b").fetchall() == [("5s",)]  # SET LOCAL held
    assert tables(observer) >= {"a", "b", "c"}
    assert tracking(observer) == {"0001": "applied"}


def test_a_failure_inside_a_segment_rolls_that_segment_back_and_names_what_committed(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    script = SEGMENTS.replace("INSERT INTO c VALUES (1);", "INSERT INTO c SELECT * FROM nope;")
    folder = write(tmp_path / "m", {"0001_segments.up.sql": script})

    with pytest.raises(MigrationError) as caught, Migrator(database_url, folder) as m:
        m.up()

    error = caught.value
    assert (error.outcome, error.line, error.sqlstate) == (Outcome.NEEDS_REPAIR, 11, "42P01")
    assert (
        "It runs outside a transaction: statements 1-7 of 11 were applied and committed "
        "(ending at line 8); the transaction it was in (lines 9-12) was rolled back."
    ) in str(error)
    assert "`sqlmig repair 0001 --applied`, `--rolled-back` or `--forget`" in str(error)
    assert {"a", "b"} <= tables(observer) and "c" not in tables(observer)
    assert tracking(observer) == {"0001": "failed"}
    assert observer.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'"
    ).fetchone() == (0,)


# --- what the server says ------------------------------------------------------------------

WARNS = {
    "0001_warns.up.sql": "CREATE TABLE t (id int);\n"
    "DO $$ BEGIN RAISE WARNING 'check the backfill of %', 't'; END $$;\n"
    "DO $$ BEGIN RAISE NOTICE 'just so you know'; END $$;\n",
}


def test_server_warnings_reach_the_events_the_log_and_the_results(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from sqlmig.events import Event, ServerNotice

    folder = write(tmp_path / "m", WARNS)
    seen: list[Event] = []
    with (
        caplog.at_level(logging.INFO, logger="sqlmig"),
        Migrator(database_url, folder, on_event=seen.append) as m,
    ):
        result = m.up()

    notices = [e for e in seen if isinstance(e, ServerNotice)]
    assert [(n.severity, n.message, n.version) for n in notices] == [
        ("WARNING", "check the backfill of t", "0001"),
        ("NOTICE", "just so you know", "0001"),
    ]
    assert result.migrations[0].notices == tuple(notices)
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if "0001: " in r.getMessage()]
    assert logged == [
        ("WARNING", "0001: WARNING: check the backfill of t"),
        ("INFO", "0001: NOTICE: just so you know"),
    ]


def test_the_command_line_shows_warnings_and_json_carries_every_notice(
    database_url: str, tmp_path: Path
) -> None:
    import json
    import os
    import sys

    folder = write(tmp_path / "m", WARNS)
    script = Path(sys.executable).parent / "sqlmig"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLMIG_")}
    env.update(DATABASE_URL=database_url, SQLMIG_DIR=str(folder))

    text_run = subprocess.run([str(script), "up"], env=env, capture_output=True, text=True)
    assert text_run.returncode == 0, text_run.stderr
    assert "0001: WARNING: check the backfill of t\n" in text_run.stderr
    assert "just so you know" not in text_run.stderr  # a NOTICE shows with -v only

    again = WARNS["0001_warns.up.sql"].replace("TABLE t ", "TABLE t2 ")
    write(folder, {"0002_again.up.sql": again})
    json_run = subprocess.run(
        [str(script), "--format", "json", "up"], env=env, capture_output=True, text=True
    )
    doc = json.loads(json_run.stdout)
    assert [m["version"] for m in doc["migrations"]] == ["0002"]
    assert [n["severity"] for n in doc["migrations"][0]["notices"]] == ["WARNING", "NOTICE"]

"""Crashes and signals in the middle of a run, with the real `sqlmig` command and a real
PostgreSQL: afterwards the database holds a true, recoverable state, the lock is free,
and a fresh run completes with every migration applied exactly once.

- SIGKILL: nothing can run on the way out; the server must clean up by itself.
- SIGINT / SIGTERM: the run unwinds, rolls back or records what it did, releases the
  lock, exits 130 and says which migration stopped and what to run next.
- An application calling the library and getting KeyboardInterrupt finds its engine
  and pool as they were.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import write
from procs import (
    GATE_SQL,
    SIGNALS,
    Gate,
    Observer,
    closed_gate,
    observer,
    runner,
    wait_for,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from sqlmig.cli import app
from sqlmig.errors import MigrationInterrupted, StateError
from sqlmig.events import Event, MigrationDone
from sqlmig.migrator import Migrator

pytestmark = pytest.mark.integration

TRANSACTIONAL = {
    "0001_a.up.sql": "CREATE TABLE a (id int);\n",
    "0002_b.up.sql": f"CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n{GATE_SQL}\n"
    "INSERT INTO b VALUES (2);\n",
    "0003_c.up.sql": "CREATE TABLE c (id int);\n",
}
NO_TRANSACTION = {
    **TRANSACTIONAL,
    "0002_b.up.sql": f"-- sqlmig:no-transaction\nCREATE TABLE b (id int);\n{GATE_SQL}\n"
    "CREATE INDEX CONCURRENTLY b_id ON b (id);\n",
}
ALL = {"0001": "applied", "0002": "applied", "0003": "applied"}


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        yield o


def indexes(db: Observer, table: str) -> list[str]:
    return [
        name for (name,) in db.rows("SELECT indexname FROM pg_indexes WHERE tablename = %s", table)
    ]


# --- SIGKILL -------------------------------------------------------------------------


def test_sigkill_mid_migration_leaves_no_trace_frees_the_lock_and_a_fresh_up_completes(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(
        tmp_path / "migrations",
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\n",
            "0002_slow.up.sql": "CREATE TABLE slow_made (id int);\n"
            "INSERT INTO slow_made VALUES (1);\nSELECT pg_sleep(30) FROM sleepy;\n",
            "0003_c.up.sql": "CREATE TABLE c (id int);\n",
        },
    )
    db.conn.execute("CREATE TABLE sleepy (x int)")
    db.conn.execute("INSERT INTO sleepy VALUES (1)")  # 0002 sleeps 30 s once per row
    with runner(database_url, tmp_path) as r:
        up = r.start("up")
        wait_for(
            lambda: [q for _, state, q in db.sqlmig_backends() if "pg_sleep(30)" in q],
            "the run to be sleeping inside 0002",
        )
        assert db.lock_holders()
        up.signal(signal.SIGKILL)
        killed = up.wait(10)
        since = time.monotonic()
        wait_for(lambda: not db.lock_holders(), "the migration lock to be free", timeout=10)
        lock_free_after = time.monotonic() - since
        # The backend stuck in pg_sleep notices its client is gone (client
        # connection check) long before the 30 s are over.
        wait_for(lambda: not db.sqlmig_backends(), "the killed run's sessions to end", timeout=15)

        assert killed.returncode == -signal.SIGKILL
        assert lock_free_after < 5
        assert db.tracking() == {"0001": "applied"}
        assert "slow_made" not in db.tables()

        db.conn.execute("DELETE FROM sleepy")
        fresh = r.run("up")

    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("applied 2 migrations in ")
    assert db.tracking() == ALL
    assert db.rows("SELECT id FROM slow_made") == [(1,)]
    assert db.lock_holders() == []


# --- SIGINT and SIGTERM -------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_during_a_transactional_migration_rolls_it_back_and_exits_130(
    database_url: str, tmp_path: Path, db: Observer, name: str
) -> None:
    write(tmp_path / "migrations", TRANSACTIONAL)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start("-q", "--format", "json", "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        up.signal(SIGNALS[name])
        stopped = up.wait(30)
        after = (db.tracking(), db.tables(), db.lock_holders(), db.sqlmig_backends())
        gate.open()
        fresh = r.run("up")

    message = (
        f"interrupted by {name} while applying 0002 (migrations/0002_b.up.sql). Its "
        "transaction was rolled back: nothing of 0002 remains. Before it, this run applied "
        "1: 0001. Run `sqlmig up` to continue."
    )
    assert stopped.returncode == 130
    assert stopped.stderr == f"error: {message}\n"
    doc = stopped.json()
    assert doc["ok"] is False and doc["command"] == "up"
    assert doc["error"] == {
        "type": "MigrationInterrupted",
        "exit_code": 130,
        "message": message,
        "version": "0002",
        "direction": "up",
        "outcome": "rolled_back",
        "transactional": True,
        "signal": name,
    }
    assert [m["version"] for m in doc["migrations"]] == ["0001"]
    assert after == ({"0001": "applied"}, {"schema_migrations", "a"}, [], [])

    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("applied 2 migrations in ")
    assert db.tracking() == ALL
    assert db.rows("SELECT id FROM b ORDER BY id") == [(1,), (2,)]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_during_a_no_transaction_migration_records_it_failed_and_exits_130(
    database_url: str, tmp_path: Path, db: Observer, name: str
) -> None:
    write(tmp_path / "migrations", NO_TRANSACTION)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start("-q", "--format", "json", "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        up.signal(SIGNALS[name])
        stopped = up.wait(30)
        after = (db.tracking(), db.tables(), indexes(db, "b"), db.lock_holders())
        gate.open()
        status = r.run("--format", "json", "status")
        refused = r.run("up")
        db.conn.execute("DROP TABLE b")  # the operator undoes statement 1 by hand
        repaired = r.run("repair", "0002", "--rolled-back")
        fresh = r.run("up")

    assert stopped.returncode == 130
    document = stopped.json()
    error = document["error"]
    assert (error["version"], error["outcome"], error["transactional"], error["signal"]) == (
        "0002",
        "needs_repair",
        False,
        name,
    )
    assert [m["version"] for m in document["migrations"]] == ["0001"]
    assert stopped.stderr == f"error: {error['message']}\n"
    assert (
        "statement 1 of 3 was applied and committed, and statement 2 (line 3) was cancelled "
        "while it ran and may or may not have taken effect" in error["message"]
    )
    assert "`sqlmig repair 0002 --applied`, `--rolled-back` or `--forget`" in error["message"]
    assert after == (
        {"0001": "applied", "0002": "failed"},
        {"schema_migrations", "a", "b"},
        [],
        [],
    )
    assert [m["state"] for m in status.json()["migrations"]] == ["applied", "failed", "pending"]
    assert refused.returncode == 1
    assert "0002 0002_b.up.sql: failed" in refused.stderr
    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stdout == "marked 0002 0002_b.up.sql rolled_back (was failed)\n"
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("applied 2 migrations in ")
    assert db.tracking() == ALL
    assert indexes(db, "b") == ["b_id"]


def test_signal_while_waiting_for_the_lock_changes_nothing_and_exits_130(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", TRANSACTIONAL)
    db.conn.execute("SELECT pg_advisory_lock(123456789)")
    with runner(database_url, tmp_path) as r:
        up = r.start("up")
        wait_for(lambda: "waiting up to 60s" in up.stderr_so_far(), "the run to wait")
        up.signal(signal.SIGTERM)
        stopped = up.wait(30)
        after = (db.tracking(), db.lock_holders())
        db.conn.execute("SELECT pg_advisory_unlock(123456789)")
        fresh = r.run("up")

    assert stopped.returncode == 130
    assert stopped.stderr.startswith(
        f"waiting up to 60s for the migration lock, held by pid {db.conn.info.backend_pid} ("
    )
    assert stopped.stderr.endswith(
        "\nerror: interrupted by SIGTERM before anything ran (while checking the files or "
        "waiting for the migration lock): nothing was changed.\n"
    )
    assert after == ({}, [db.conn.info.backend_pid])
    assert fresh.returncode == 0, fresh.stderr
    assert db.tracking() == ALL


# --- the library, in-process -----------------------------------------------------------


@pytest.mark.parametrize("files", [TRANSACTIONAL, NO_TRANSACTION], ids=["transaction", "no-tx"])
def test_keyboard_interrupt_in_the_library_leaves_the_application_engine_and_pool_intact(
    database_url: str, tmp_path: Path, db: Observer, files: dict[str, str]
) -> None:
    folder = write(tmp_path / "migrations", files)
    engine = create_engine(
        make_url(database_url).set(drivername="postgresql+psycopg"), pool_size=3, max_overflow=0
    )
    try:
        with closed_gate(database_url) as gate:
            try:
                with sigint_at_the_gate(database_url, gate):
                    Migrator(engine, folder).up()
            except KeyboardInterrupt as exc:  # caught here: it would end the pytest session
                interrupted = exc
            else:
                pytest.fail("the run finished although it was interrupted")
            assert engine.pool.checkedout() == 0
            assert db.lock_holders() == []
            assert session_states(db) <= {"idle"}  # none left inside a transaction
            with engine.connect() as conn:  # pooled connections carry no run settings
                assert conn.execute(text("SHOW client_connection_check_interval")).scalar() == "0"
                assert conn.execute(text("SELECT 1")).scalar() == 1
        transactional = files is TRANSACTIONAL
        assert isinstance(interrupted, MigrationInterrupted)
        assert not isinstance(interrupted, Exception)  # `except Exception` cannot swallow it
        assert (interrupted.version, interrupted.transactional, interrupted.signal) == (
            "0002",
            transactional,
            None,
        )
        assert interrupted.outcome == ("rolled_back" if transactional else "needs_repair")
        assert [r.version for r in interrupted.completed] == ["0001"]
        assert str(interrupted).startswith(
            f"interrupted while applying 0002 ({folder / '0002_b.up.sql'}). "
        )

        migrator = Migrator(engine, folder)
        if not transactional:
            with pytest.raises(StateError):
                migrator.up()
            db.conn.execute("DROP TABLE b")
            migrator.repair("0002", "rolled_back")
        assert [r.version for r in migrator.up().migrations] == ["0002", "0003"]
        assert db.tracking() == ALL
        assert engine.pool.checkedout() == 0
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
    finally:
        engine.dispose()


class sigint_at_the_gate:
    """Send SIGINT to the main thread once a migration waits at the gate, as Ctrl-C would.

    If the interrupt never lands, the gate is opened after a while so that the run
    finishes and the test fails instead of hanging.
    """

    def __init__(self, url: str, gate: Gate) -> None:
        self.url = url
        self.gate = gate
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._interrupt, daemon=True)

    def _interrupt(self) -> None:
        with observer(self.url) as watcher:
            deadline = time.monotonic() + 30
            while not watcher.waiting_at_gate():
                if self.finished.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        if not self.finished.wait(30):
            self.gate.open()

    def __enter__(self) -> None:
        self.previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.finished.set()
        self.thread.join()
        signal.signal(signal.SIGINT, self.previous)


def test_interrupt_between_migrations_reports_exactly_what_the_run_completed(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    """Ctrl-C landing after 0002 committed (here: in the progress callback) counts it done."""
    folder = write(tmp_path / "migrations", TRANSACTIONAL | {"0002_b.up.sql": "CREATE TABLE b ();"})

    def progress(event: Event) -> None:
        if isinstance(event, MigrationDone) and event.index == 1:
            raise KeyboardInterrupt

    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
    try:
        try:
            Migrator(engine, folder, on_event=progress).up()
        except KeyboardInterrupt as exc:
            interrupted = exc
        else:
            pytest.fail("the run finished although it was interrupted")
        assert isinstance(interrupted, MigrationInterrupted)
        assert (interrupted.outcome, interrupted.version) == ("between", None)
        assert str(interrupted).startswith("interrupted between migrations.")
        assert str(interrupted).endswith("Run `sqlmig up` to continue.")
        assert [r.version for r in interrupted.completed] == ["0001", "0002"]
        assert db.tracking() == {"0001": "applied", "0002": "applied"}
        assert db.lock_holders() == []
        assert engine.pool.checkedout() == 0
        assert [r.version for r in Migrator(engine, folder).up().migrations] == ["0003"]
        assert db.tracking() == ALL
    finally:
        engine.dispose()


def session_states(db: Observer) -> set[str]:
    return {
        state
        for (state,) in db.rows(
            "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    }


def test_the_cli_puts_signal_handlers_back_after_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATABASE_URL", "SQLMIG_DATABASE_URL", "SQLMIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    write(tmp_path / "migrations", TRANSACTIONAL)

    def own(signum: int, frame: object) -> None:
        raise AssertionError("never called")

    # Python's defaults, whatever this test process inherited (a background job
    # starts with SIGINT ignored).
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = CliRunner().invoke(app, ["--dir", str(tmp_path / "migrations"), "validate"])
        assert result.exit_code == 0, result.output
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        signal.signal(signal.SIGTERM, own)  # an application's own handler stays its own
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # and an ignored signal stays ignored
        result = CliRunner().invoke(app, ["--dir", str(tmp_path / "migrations"), "validate"])
        assert result.exit_code == 0, result.output
        assert signal.getsignal(signal.SIGTERM) is own
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


# --- a no-transaction migration that fails half-way ----------------------------------------


HALF = {
    "0001_a.up.sql": "CREATE TABLE a (id int);\n",
    "0002_b.up.sql": "-- sqlmig:no-transaction\nCREATE TABLE b (id int);\n"
    "CREATE INDEX CONCURRENTLY b_id ON no_such_table (id);\n",
    "0003_c.up.sql": "CREATE TABLE c (id int);\n",
}


@pytest.mark.parametrize(
    ("flag", "by_hand", "then_runs"),
    [
        ("--applied", "CREATE INDEX b_id ON b (id)", ["0003"]),
        ("--rolled-back", "DROP TABLE b", ["0002", "0003"]),
    ],
)
def test_no_transaction_migration_failing_half_way_is_repaired_through_the_cli(
    database_url: str, tmp_path: Path, db: Observer, flag: str, by_hand: str, then_runs: list[str]
) -> None:
    folder = write(tmp_path / "migrations", HALF)
    with runner(database_url, tmp_path) as r:
        failed = r.run("up")
        status = r.run("--format", "json", "status")
        refused = r.run("up")
        # The operator fixes the file, then finishes or undoes statement 1 by hand.
        write(folder, {"0002_b.up.sql": HALF["0002_b.up.sql"].replace("no_such_table", "b")})
        db.conn.execute(by_hand)
        repaired = r.run("repair", "0002", flag)
        fresh = r.run("--format", "json", "up")

    assert failed.returncode == 1
    assert "migration 0002 (up) failed at migrations/0002_b.up.sql:3:" in failed.stderr
    assert "statement 1 of 2 was applied and committed (ending at line 2)" in failed.stderr
    assert "`sqlmig repair 0002 --applied`, `--rolled-back` or `--forget`" in failed.stderr
    assert [(m["version"], m["state"]) for m in status.json()["migrations"]] == [
        ("0001", "applied"),
        ("0002", "failed"),
        ("0003", "pending"),
    ]
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "error: a migration that runs outside a transaction failed part-way and may have "
        "left partial changes; nothing was run:\n  0002 0002_b.up.sql: failed\n"
    )
    assert re.search(r"`sqlmig repair (0002|VERSION) --applied`", refused.stderr)
    assert repaired.returncode == 0, repaired.stderr
    state = flag.removeprefix("--").replace("-", "_")
    assert repaired.stdout == f"marked 0002 0002_b.up.sql {state} (was failed)\n"
    assert fresh.returncode == 0, fresh.stderr
    assert [m["version"] for m in fresh.json()["migrations"]] == then_runs
    assert db.tracking() == ALL
    assert db.tables() == {"schema_migrations", "a", "b", "c"}
    assert indexes(db, "b") == ["b_id"]

"""Guarded table locks against a real server: while one session holds a long transaction
on table `t`, `sqlmig up` runs `ALTER TABLE t ...` with a DDL lock timeout and retries,
and another session keeps reading `t`.

The property that matters: no read waits much longer than the lock timeout at any
point, since the ALTER gives up instead of queueing everyone behind it. The migration
succeeds when the long transaction ends between tries; when it never ends, `up` exits
1 naming the blocking session and leaves the table as it was. Without the timeout, the
ALTER waits as it always did.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from helpers import libpq, write
from procs import Observer, observer, runner, wait_for

pytestmark = pytest.mark.integration

ALTER = {"0001_widen.up.sql": "ALTER TABLE t ADD COLUMN note text;\n"}
TIMEOUT = 1.0
MARGIN = 0.75  # scheduling on a loaded 2-core machine; a queued read would wait seconds


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        o.conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        o.conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
        yield o


@contextmanager
def long_transaction(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A session that read `t` in a transaction it keeps open: its ACCESS SHARE lock
    is what the ALTER must wait for."""
    conn = psycopg.connect(libpq(url), application_name="long-reader")
    conn.execute("SELECT count(*) FROM t")
    try:
        yield conn
    finally:
        conn.close()


class Reads:
    """Another session reading `t` in a loop, keeping the longest a read took."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(libpq(url), autocommit=True)
        self.longest = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            self.conn.execute("SELECT count(*) FROM t")
            self.longest = max(self.longest, time.monotonic() - start)
            self.count += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.conn.close()


@contextmanager
def reads(url: str) -> Iterator[Reads]:
    r = Reads(url)
    try:
        yield r
    finally:
        r.stop()


def columns(db: Observer) -> list[str]:
    return [
        name
        for (name,) in db.rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum"
        )
    ]


def test_the_migration_succeeds_when_the_long_transaction_ends_between_tries(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", ALTER)
    with runner(database_url, tmp_path) as r, reads(database_url) as reader:
        with long_transaction(database_url) as holder:
            proc = r.start("--ddl-lock-timeout", "1", "--lock-retries", "3", "up")
            wait_for(lambda: "(try 1 of 4)" in proc.stderr_so_far(), "the first lock timeout")
            holder.rollback()  # the long transaction ends while up waits to retry
        done = proc.wait(60)
        time.sleep(0.2)  # a last read or two after the ALTER committed

    assert done.returncode == 0, done.stderr
    assert columns(db) == ["id", "note"]
    assert db.tracking() == {"0001": "applied"}
    assert "long-reader" in done.stderr  # the wait named whom it waited for
    assert reader.count > 10
    assert reader.longest < TIMEOUT + MARGIN


def test_when_the_long_transaction_never_ends_up_exits_1_naming_it_with_the_table_unchanged(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", ALTER)
    with (
        runner(database_url, tmp_path) as r,
        reads(database_url) as reader,
        long_transaction(database_url) as holder,
    ):
        holder_pid = holder.info.backend_pid
        started = time.monotonic()
        done = r.run(
            "--format", "json", "--ddl-lock-timeout", "1", "--lock-retries", "3", "up", timeout=90
        )
        took = time.monotonic() - started

    assert done.returncode == 1, done.stderr
    error = done.json()["error"]
    assert error["sqlstate"] == "55P03"
    assert error["outcome"] == "rolled_back"
    assert [(b["pid"], b["application"]) for b in error["blockers"]] == [
        (holder_pid, "long-reader")
    ]
    assert error["blockers"][0]["state"] == "idle in transaction"
    assert "SELECT count(*) FROM t" in error["blockers"][0]["query"]
    message = error["message"]
    assert "on each of its 4 tries" in message
    assert f"pid {holder_pid} (application long-reader, idle in transaction" in message
    assert done.stderr.count("waited 1s for a table lock at line 1") == 3  # each retry
    assert columns(db) == ["id"]  # nothing half-done
    assert db.tracking() == {"0001": "failed"}
    assert db.value("SELECT count(*) FROM t") == 1000
    assert reader.longest < TIMEOUT + MARGIN
    # Four waits of 1s, and delays of 0.5-1s, 1-2s and 2-4s between them.
    assert 4 + 3.5 <= took < 4 + 7 + 10


def test_a_no_transaction_migration_retries_the_statement_that_timed_out(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(
        tmp_path / "migrations",
        {
            "0001_index.up.sql": "-- sqlmig:no-transaction\n"
            "CREATE TABLE other (id int);\n"
            "ALTER TABLE t ADD COLUMN note text;\n"
            "CREATE INDEX CONCURRENTLY t_note ON t (note);\n"
        },
    )
    with runner(database_url, tmp_path) as r, long_transaction(database_url) as holder:
        proc = r.start("--ddl-lock-timeout", "0.5", "--lock-retries", "5", "up")
        wait_for(lambda: "(try 1 of 6)" in proc.stderr_so_far(), "the first lock timeout")
        holder.rollback()
        done = proc.wait(60)

    assert done.returncode == 0, done.stderr
    assert "0001 index waited 0.5s for a table lock at line 3" in done.stderr
    assert columns(db) == ["id", "note"]
    assert "other" in db.tables()  # ran once: a second CREATE TABLE would have failed
    assert db.tracking() == {"0001": "applied"}


def test_without_a_ddl_lock_timeout_the_alter_waits_as_it_always_did(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", ALTER)
    with runner(database_url, tmp_path) as r, long_transaction(database_url) as holder:
        proc = r.start("up")
        wait_for(
            lambda: db.value(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sqlmig'"
                " AND wait_event_type = 'Lock'"
            ),
            "the ALTER to wait for its lock",
        )
        time.sleep(2 * TIMEOUT)
        assert proc.running()  # still waiting: nothing gave up
        holder.rollback()
        done = proc.wait(60)

    assert done.returncode == 0, done.stderr
    assert "table lock" not in done.stderr
    assert columns(db) == ["id", "note"]


def test_a_later_failure_of_another_kind_is_not_worded_as_a_lock_wait(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(
        tmp_path / "migrations",
        {
            "0001_steps.up.sql": "-- sqlmig:no-transaction\n"
            "ALTER TABLE t ADD COLUMN note text;\n"
            "SELECT pg_sleep(1.5);\n"
            "SELECT * FROM missing;\n"
        },
    )
    with runner(database_url, tmp_path) as r, long_transaction(database_url) as holder:
        proc = r.start("--ddl-lock-timeout", "0.5", "--lock-retries", "5", "up")
        wait_for(lambda: "(try 1 of 6)" in proc.stderr_so_far(), "the first lock timeout")
        holder.rollback()
        done = proc.wait(60)

    assert done.returncode == 1
    assert 'relation "missing" does not exist' in done.stderr
    assert "waited longer than the lock timeout" not in done.stderr
    assert "statements 1-2 of 3 were applied and committed" in done.stderr
    assert columns(db) == ["id", "note"]

"""The migration lock on a real PostgreSQL: exclusion, lifetime, release on every path, waiting."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from helpers import libpq
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from sqlmig.database import new_engine
from sqlmig.errors import LockLostError, LockTimeoutError
from sqlmig.locking import (
    MIGRATION_LOCK_ID,
    advisory_lock,
    lock_holder,
    release_lock,
    try_acquire_lock,
)

pytestmark = pytest.mark.integration


def with_application_name(url: str, name: str) -> str:
    return (
        make_url(url)
        .update_query_dict({"application_name": name})
        .render_as_string(hide_password=False)
    )


@pytest.fixture
def other(database_url: str) -> Iterator[Engine]:
    """A second engine on the same database: sessions that compete for the lock."""
    eng = new_engine(database_url)
    yield eng
    eng.dispose()


def can_take(engine: Engine, lock_id: int = MIGRATION_LOCK_ID) -> bool:
    """Whether a session of ``engine`` can take the lock now (given back at once if so)."""
    with engine.connect() as conn:
        taken = try_acquire_lock(conn, lock_id)
        if taken:
            assert release_lock(conn, lock_id)
        return taken


def backend_pid(conn: Connection) -> int:
    return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def alive(observer: psycopg.Connection, pid: int) -> bool:
    row = observer.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    assert row is not None
    return bool(row[0])


def terminate(observer: psycopg.Connection, pid: int) -> None:
    """End a backend from another session and wait until it is gone."""
    row = observer.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert row == (True,)
    deadline = time.monotonic() + 5
    while alive(observer, pid):
        assert time.monotonic() < deadline, f"backend {pid} still alive after termination"
        time.sleep(0.02)


def advisory_locks_in_database(observer: psycopg.Connection) -> list[tuple[int, int, int]]:
    """(pid, classid, objid) of every advisory lock granted in the test database."""
    rows = observer.execute(
        "SELECT pid, classid::bigint, objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchall()
    return [tuple(r) for r in rows]


# --- exclusion and lifetime ------------------------------------------------


def test_second_session_cannot_take_the_lock_while_held_and_can_after_release(
    engine: Engine, other: Engine
) -> None:
    assert can_take(other)
    with advisory_lock(engine):
        assert not can_take(other)
        assert not can_take(other)
    assert can_take(other)


def test_lock_holds_across_many_transactions_of_the_run(engine: Engine, other: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE work (n int)"))
    with advisory_lock(engine) as held:
        holder_pid = backend_pid(held.connection)
        for n in range(20):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO work VALUES (:n)"), {"n": n})
        assert not can_take(other)
        with other.connect() as conn:
            assert lock_holder(conn).startswith(f"pid {holder_pid} (")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM work")).scalar_one() == 20
    assert can_take(other)


def test_lock_connection_sits_idle_outside_any_transaction(
    engine: Engine, observer: psycopg.Connection
) -> None:
    with advisory_lock(engine) as held:
        pid = backend_pid(held.connection)
        row = observer.execute(
            "SELECT state, xact_start, backend_xid FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        assert row == ("idle", None, None)


def test_lock_outlives_idle_in_transaction_session_timeout(
    database_url: str, other: Engine, observer: psycopg.Connection
) -> None:
    name = make_url(database_url).database
    observer.execute(f'ALTER DATABASE "{name}" SET idle_in_transaction_session_timeout = 300')
    fresh = new_engine(database_url)  # its sessions start after the ALTER, so they get it
    try:
        start = time.monotonic()
        with advisory_lock(fresh) as held:
            setting = held.connection.exec_driver_sql("SHOW idle_in_transaction_session_timeout")
            assert setting.scalar_one() == "300ms"
            holder_pid = backend_pid(held.connection)
            # A session left idle inside a transaction is ended by the timeout...
            control = psycopg.connect(libpq(database_url))
            try:
                control.execute("SELECT 1")
                control_pid = control.info.backend_pid
                deadline = time.monotonic() + 5
                while alive(observer, control_pid):
                    assert time.monotonic() < deadline, "the timeout never ended the control"
                    time.sleep(0.05)
            finally:
                control.close()  # no commit: the server has already ended that session
            # ...while the lock session, idle in AUTOCOMMIT, keeps the lock for longer.
            time.sleep(max(0.0, 1.0 - (time.monotonic() - start)))
            assert alive(observer, holder_pid)
            assert not can_take(other)
            held.ensure_held()
        assert can_take(other)
    finally:
        fresh.dispose()


# --- release on every path --------------------------------------------------


def test_clean_release_returns_the_connection_and_leaves_no_advisory_lock(
    engine: Engine, other: Engine, observer: psycopg.Connection
) -> None:
    before = engine.pool.checkedout()
    with advisory_lock(engine) as held:
        holder_pid = backend_pid(held.connection)
        assert engine.pool.checkedout() == before + 1
        assert advisory_locks_in_database(observer) == [(holder_pid, 0, MIGRATION_LOCK_ID)]
    assert engine.pool.checkedout() == before
    assert advisory_locks_in_database(observer) == []
    assert alive(observer, holder_pid)  # back in the pool, not closed
    assert can_take(other)


def test_lock_connection_goes_back_to_the_pool_out_of_autocommit(database_url: str) -> None:
    single = new_engine(database_url, pool_size=1)  # the next checkout is the lock's connection
    try:
        with single.begin() as conn:
            conn.execute(text("CREATE TABLE t (n int)"))
        with advisory_lock(single) as held:
            lock_pid = backend_pid(held.connection)
        with single.connect() as conn:
            assert backend_pid(conn) == lock_pid
            assert conn.get_isolation_level() == "READ COMMITTED"
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.rollback()
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        single.dispose()


def test_exception_in_the_block_propagates_unchanged_and_releases_the_lock(
    engine: Engine, other: Engine, observer: psycopg.Connection
) -> None:
    before = engine.pool.checkedout()
    boom = ValueError("migration 0003 failed")
    with pytest.raises(ValueError) as raised, advisory_lock(engine):
        raise boom
    assert raised.value is boom
    assert boom.__context__ is None
    assert engine.pool.checkedout() == before
    assert advisory_locks_in_database(observer) == []
    assert can_take(other)


def test_keyboard_interrupt_in_the_block_releases_the_lock(
    engine: Engine, other: Engine, observer: psycopg.Connection
) -> None:
    with pytest.raises(KeyboardInterrupt), advisory_lock(engine):
        raise KeyboardInterrupt
    assert advisory_locks_in_database(observer) == []
    assert can_take(other)


def test_terminated_holder_loses_the_lock_and_ensure_held_raises_lock_lost(
    engine: Engine,
    other: Engine,
    observer: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = engine.pool.checkedout()
    with caplog.at_level(logging.WARNING, logger="sqlmig"), advisory_lock(engine) as held:
        holder_pid = backend_pid(held.connection)
        dbapi_connection = held.connection.connection.dbapi_connection
        terminate(observer, holder_pid)
        assert can_take(other)
        with pytest.raises(LockLostError) as lost:
            held.ensure_held()
        assert "lost" in str(lost.value)
        assert "sqlmig status" in str(lost.value)
        assert lost.value.exit_code == 4
    # Leaving the block raised nothing; the dead connection was thrown away, not pooled.
    assert "could not release the migration lock cleanly" in caplog.text
    assert dbapi_connection.closed
    assert engine.pool.checkedout() == before
    with engine.connect() as conn:
        assert backend_pid(conn) != holder_pid
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    with advisory_lock(engine, timeout=0):
        assert not can_take(other)


def test_after_termination_leaving_the_block_raises_only_what_the_body_raised(
    engine: Engine, other: Engine, observer: psycopg.Connection
) -> None:
    boom = RuntimeError("body failed after the lock was lost")
    with pytest.raises(RuntimeError) as raised, advisory_lock(engine) as held:
        terminate(observer, backend_pid(held.connection))
        raise boom
    assert raised.value is boom
    assert boom.__context__ is None
    assert advisory_locks_in_database(observer) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert can_take(other)


def test_ensure_held_raises_lock_lost_on_every_call_after_the_loss(
    engine: Engine, observer: psycopg.Connection
) -> None:
    with advisory_lock(engine) as held:
        terminate(observer, backend_pid(held.connection))
        for _ in range(2):
            with pytest.raises(LockLostError):
                held.ensure_held()


def test_ensure_held_passes_quietly_while_the_lock_is_healthy(
    engine: Engine, other: Engine
) -> None:
    with advisory_lock(engine) as held:
        held.ensure_held()
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
        time.sleep(0.1)
        held.ensure_held()
        held.ensure_held()
        assert not can_take(other)


# --- waiting for another holder ----------------------------------------------


def test_waiting_succeeds_once_the_holder_lets_go(engine: Engine, other: Engine) -> None:
    holding = threading.Event()
    failures: list[BaseException] = []

    def hold_for_half_a_second() -> None:
        try:
            with advisory_lock(other):
                holding.set()
                time.sleep(0.5)
        except BaseException as exc:
            failures.append(exc)
            holding.set()

    holder = threading.Thread(target=hold_for_half_a_second)
    holder.start()
    try:
        assert holding.wait(5)
        with advisory_lock(engine, timeout=5) as held:
            assert held.waited > 0.3
            assert not can_take(other)
    finally:
        holder.join(5)
    assert not failures


def test_lock_taken_at_once_reports_no_wait(engine: Engine) -> None:
    with advisory_lock(engine, timeout=5) as held:
        assert held.waited == 0.0
        assert held.lock_id == MIGRATION_LOCK_ID


def test_waiting_times_out_naming_the_holder_pid_and_application(
    engine: Engine, database_url: str, observer: psycopg.Connection
) -> None:
    holder_engine = new_engine(with_application_name(database_url, "holder-app"))
    try:
        with holder_engine.connect() as holder:
            assert try_acquire_lock(holder)
            holder_pid = backend_pid(holder)
            before = engine.pool.checkedout()
            start = time.monotonic()
            with pytest.raises(LockTimeoutError) as timed_out, advisory_lock(engine, timeout=0.5):
                pytest.fail("the lock was taken while another session held it")
            elapsed = time.monotonic() - start
            assert release_lock(holder)
    finally:
        holder_engine.dispose()
    error = timed_out.value
    assert (error.lock_id, error.timeout, error.exit_code) == (MIGRATION_LOCK_ID, 0.5, 3)
    assert error.holder is not None and error.holder.startswith(f"pid {holder_pid} (")
    assert "holder-app" in error.holder
    assert f"within 0.5s: it is held by {error.holder}" in str(error)
    assert 0.5 <= elapsed < 2.0
    # The waiting connection was not left checked out, nor holding anything.
    assert engine.pool.checkedout() == before
    assert advisory_locks_in_database(observer) == []


def test_timeout_zero_fails_at_once(engine: Engine, other: Engine) -> None:
    with advisory_lock(other):
        start = time.monotonic()
        with pytest.raises(LockTimeoutError) as timed_out, advisory_lock(engine, timeout=0):
            pytest.fail("the lock was taken while another session held it")
        elapsed = time.monotonic() - start
    assert elapsed < 0.5
    assert timed_out.value.exit_code == 3
    assert "at once" in str(timed_out.value)


def test_on_wait_is_called_once_with_the_holder_when_the_lock_is_busy(
    engine: Engine, other: Engine
) -> None:
    calls: list[str | None] = []
    with advisory_lock(other) as theirs:
        holder_pid = backend_pid(theirs.connection)
        with (
            pytest.raises(LockTimeoutError),
            advisory_lock(engine, timeout=0.4, on_wait=calls.append),
        ):
            pytest.fail("the lock was taken while another session held it")
    assert len(calls) == 1
    assert calls[0] is not None
    assert calls[0].startswith(f"pid {holder_pid} (application sqlmig,")


def test_on_wait_is_not_called_when_the_lock_is_free(engine: Engine) -> None:
    calls: list[str | None] = []
    with advisory_lock(engine, timeout=0, on_wait=calls.append):
        pass
    assert calls == []


# --- lock ids -------------------------------------------------------------------


def test_custom_lock_id_is_independent_of_the_default_one(engine: Engine, other: Engine) -> None:
    with advisory_lock(other):
        with advisory_lock(engine, lock_id=42, timeout=0) as custom:
            assert custom.lock_id == 42
            assert not can_take(other, 42)
            assert not can_take(engine, MIGRATION_LOCK_ID)
        assert can_take(other, 42)
    with advisory_lock(engine, lock_id=42):
        assert can_take(other)


@pytest.mark.parametrize("lock_id", [2**40 + 7, -1, -(2**40) - 3, 2**63 - 1, -(2**63)])
def test_holder_is_named_for_any_bigint_lock_id(
    lock_id: int, engine: Engine, other: Engine
) -> None:
    with advisory_lock(other, lock_id=lock_id) as theirs:
        holder_pid = backend_pid(theirs.connection)
        with (
            pytest.raises(LockTimeoutError) as timed_out,
            advisory_lock(engine, lock_id=lock_id, timeout=0),
        ):
            pytest.fail("the lock was taken while another session held it")
    assert timed_out.value.holder is not None
    assert timed_out.value.holder.startswith(f"pid {holder_pid} (")


def test_lock_holder_ignores_sessions_of_other_databases(engine: Engine, pg_admin_url: str) -> None:
    lock_id = 987_654_321
    elsewhere = new_engine(pg_admin_url)
    try:
        with advisory_lock(elsewhere, lock_id=lock_id), engine.connect() as conn:
            assert lock_holder(conn, lock_id) is None
    finally:
        elsewhere.dispose()

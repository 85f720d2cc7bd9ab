"""The lease (`lock_strategy="table"`) on a real PostgreSQL, through the library.

Its table and columns, exclusion and waiting, renewal by the heartbeat, takeover of
an expired lease (logged), the check before each migration, what `lock_status` and
`release_lock` see, and the Migrator's choice of strategy. The same against PgBouncer
in transaction mode is in tests/reliability/test_pooler.py.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from sqlmig import Migrator
from sqlmig.errors import LockHeldError, LockLostError, LockTimeoutError, UsageError
from sqlmig.lease import LeaseLock, lease_table, lock_table_name
from sqlmig.locking import AdvisoryLock

pytestmark = pytest.mark.integration


@pytest.fixture
def observer(database_url: str) -> Iterator[psycopg.Connection]:
    libpq = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as conn:
        yield conn


def lease_row(observer: psycopg.Connection, table: str = "schema_migrations_lock") -> tuple:
    return observer.execute(
        f'SELECT run_id, pid, heartbeat_at, expires_at FROM "{table}"'
    ).fetchone()


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_text(body)
    return folder


def test_the_lease_table_sits_next_to_the_tracking_table_with_its_columns(
    engine: Engine, observer: psycopg.Connection
) -> None:
    observer.execute("CREATE SCHEMA ops")
    with LeaseLock("deploys", "ops").hold(engine, timeout=0):
        columns = observer.execute(
            "SELECT column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns"
            " WHERE table_schema = 'ops' AND table_name = 'deploys_lock' ORDER BY ordinal_position"
        ).fetchall()
        (run_id, pid, _, _) = observer.execute(
            "SELECT run_id, pid, heartbeat_at, expires_at FROM ops.deploys_lock"
        ).fetchone()

    assert columns == [
        ("lock_id", "bigint", "NO", None),
        ("run_id", "text", "NO", None),
        ("host", "text", "NO", None),
        ("pid", "integer", "NO", None),
        ("application", "text", "NO", None),
        ("acquired_at", "timestamp with time zone", "NO", None),
        ("heartbeat_at", "timestamp with time zone", "NO", None),
        ("expires_at", "timestamp with time zone", "NO", None),
    ]
    assert len(run_id) == 16
    assert pid == os.getpid()
    assert observer.execute("SELECT count(*) FROM ops.deploys_lock").fetchone() == (0,)
    long = "t" * 63
    assert len(lock_table_name(long).encode()) == 63
    assert lock_table_name(long) != lock_table_name("t" * 62 + "u")
    assert lease_table("deploys", "ops").schema == "ops"


def test_a_second_holder_waits_names_the_first_and_times_out(engine: Engine) -> None:
    lease = LeaseLock(ttl=30, heartbeat=10)
    waits: list[str | None] = []
    with lease.hold(engine, timeout=0) as first:
        assert first.waited == 0.0
        started = time.monotonic()
        with (
            pytest.raises(LockTimeoutError) as raised,
            lease.hold(engine, timeout=0.5, on_wait=waits.append),
        ):
            pass
        took = time.monotonic() - started
    message = str(raised.value)

    assert 0.5 <= took < 3
    assert raised.value.exit_code == 3
    assert message.startswith(
        "could not take the migration lock (lease in schema_migrations_lock) within 0.5s: it "
        "is held by run "
    )
    assert len(waits) == 1 and waits[0] is not None and waits[0].startswith("run ")
    assert "remove it with `sqlmig lock release --force`" in message


def test_the_heartbeat_renews_the_lease_and_the_check_before_each_migration_keeps_it(
    engine: Engine, observer: psycopg.Connection
) -> None:
    lease = LeaseLock(ttl=1, heartbeat=0.2)
    with lease.hold(engine, timeout=0) as held:
        _, _, first_beat, _ = lease_row(observer)
        time.sleep(1.5)  # longer than the ttl: only renewals keep it
        _, _, later_beat, expires = lease_row(observer)
        held.ensure_held()
        # Another run cannot take it meanwhile.
        with pytest.raises(LockTimeoutError), lease.hold(engine, timeout=0):
            pass
        live = observer.execute("SELECT %s > now()", (expires,)).fetchone()

    assert later_beat > first_beat
    assert live == (True,)


def test_an_expired_lease_is_taken_over_and_the_takeover_logged(
    engine: Engine, observer: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    lease = LeaseLock(ttl=30, heartbeat=10)
    with lease.hold(engine, timeout=0) as old:
        observer.execute("UPDATE schema_migrations_lock SET expires_at = now() - interval '2s'")
        with (
            caplog.at_level(logging.WARNING, logger="sqlmig"),
            lease.hold(engine, timeout=0) as new,
        ):
            assert new.waited == 0.0
            (run_id, _, _, _) = lease_row(observer)
            with pytest.raises(LockLostError) as raised:
                old.ensure_held()

    old_run = old.owner.run_id  # type: ignore[attr-defined]
    assert run_id == new.owner.run_id != old_run  # type: ignore[attr-defined]
    (record,) = [r for r in caplog.records if "took over" in r.getMessage()]
    assert record.getMessage().startswith(f"took over the expired migration lease of run {old_run}")
    assert "expired 2." in record.getMessage()
    assert raised.value.exit_code == 4
    assert str(raised.value).startswith(
        f"the migration lease of this run ({old_run}, lease in schema_migrations_lock) was "
        f"taken over by run {run_id} "
    )


def test_the_migrator_runs_under_the_lease_on_an_application_engine(
    database_url: str, tmp_path: Path, observer: psycopg.Connection
) -> None:
    folder = write(
        tmp_path / "migrations",
        {f"000{n}_t{n}.up.sql": f"CREATE TABLE t{n} (id int);\n" for n in range(1, 4)},
    )
    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"))
    try:
        with Migrator(engine, folder, lock_strategy="table") as m:
            assert isinstance(m.options.lock, LeaseLock)
            done = m.up()
            status = m.lock_status()
    finally:
        engine.dispose()

    assert [r.version for r in done.migrations] == ["0001", "0002", "0003"]
    assert (status.strategy, status.held, status.holder) == ("table", False, None)
    assert observer.execute("SELECT count(*) FROM schema_migrations_lock").fetchone() == (0,)


def test_lock_status_and_release_through_the_library(engine: Engine, tmp_path: Path) -> None:
    m = Migrator(engine, tmp_path, lock_strategy="table", lock_ttl=30, lock_heartbeat=10)
    never_used = m.lock_status()  # no lease table yet
    asked: list[str] = []
    with LeaseLock(ttl=30, heartbeat=10).hold(engine, timeout=0) as held:
        status = m.lock_status()
        with pytest.raises(LockHeldError) as refused:
            m.release_lock()
        released = m.release_lock(force=True, confirm=lambda s: asked.append(s.lock) or True)
        with pytest.raises(LockLostError):
            held.ensure_held()
    after = m.lock_status()

    assert (never_used.held, never_used.holder) == (False, None)
    assert status.held and status.holder is not None
    assert status.holder.run_id == held.owner.run_id  # type: ignore[attr-defined]
    assert refused.value.exit_code == 1
    assert (released.action, asked) == ("deleted", ["lease in schema_migrations_lock"])
    assert after.holder is None


def test_the_migrator_takes_one_strategy(engine: Engine, tmp_path: Path) -> None:
    assert isinstance(Migrator(engine, tmp_path).options.lock, AdvisoryLock)
    with pytest.raises(UsageError, match="lock strategy must be one of advisory, table"):
        Migrator(engine, tmp_path, lock_strategy="session")
    with pytest.raises(UsageError, match="give lock= or lock_strategy="):
        Migrator(engine, tmp_path, lock=AdvisoryLock(), lock_strategy="table")
    with pytest.raises(UsageError, match="must be less than lock-ttl"):
        Migrator(engine, tmp_path, lock_strategy="table", lock_ttl=5, lock_heartbeat=5)

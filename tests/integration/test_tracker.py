"""The tracking table on a real PostgreSQL: creation, every method, shape checks, races."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, text

from sqlmig.database import new_engine
from sqlmig.errors import ConcurrentRunError, IncompatibleTableError, InvalidIdentifierError
from sqlmig.tracker import RecordParams, Tracker, migrations_table, schema_migrations

pytestmark = pytest.mark.integration


def params(version: str, checksum: str = "sha256:aa", duration_ms: int = 12) -> RecordParams:
    return RecordParams(version, f"{version}_x.up.sql", checksum, duration_ms)


def columns(engine: Engine, table: str, schema: str = "public") -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        )
        return [tuple(r) for r in rows]


def test_ensure_table_creates_the_declared_table(engine: Engine) -> None:
    Tracker(engine).ensure_table()
    assert columns(engine, "schema_migrations") == [
        ("version", "text", "NO"),
        ("filename", "text", "NO"),
        ("checksum", "text", "NO"),
        ("applied_at", "timestamp with time zone", "NO"),
        ("duration_ms", "integer", "NO"),
        ("status", "text", "NO"),
    ]
    with engine.connect() as conn:
        pk = conn.execute(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                "WHERE i.indrelid = 'schema_migrations'::regclass AND i.indisprimary"
            )
        ).scalar_one()
    assert pk == "version"


def test_ensure_table_is_idempotent(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    tracker.record_applied(params("1"))
    tracker.ensure_table()
    assert [m.version for m in tracker.get_all()] == ["1"]


def test_status_check_constraint_rejects_unknown_status(engine: Engine) -> None:
    Tracker(engine).ensure_table()
    with pytest.raises(Exception, match="schema_migrations_status_check"), engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO schema_migrations (version, filename, checksum, duration_ms, status)"
                " VALUES ('1', 'f', 'c', 1, 'bogus')"
            )
        )


def test_record_applied_reads_back_every_column(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    before = datetime.now(timezone.utc)
    tracker.record_applied(RecordParams("0002", "0002_users.up.sql", "sha256:ab", 42))
    (row,) = tracker.get_all()
    assert (row.version, row.filename, row.checksum, row.duration_ms, row.status) == (
        "0002",
        "0002_users.up.sql",
        "sha256:ab",
        42,
        "applied",
    )
    assert row.applied_at.tzinfo is not None
    assert abs((row.applied_at - before).total_seconds()) < 60
    assert tracker.is_applied("0002")
    assert tracker.get_checksum("0002") == "sha256:ab"


def test_rows_are_ordered_by_version_as_numbers(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    for version in ["10", "9", "100", "0011", "20261124153000"]:
        tracker.record_applied(params(version))
    assert [m.version for m in tracker.get_applied()] == [
        "9",
        "10",
        "0011",
        "100",
        "20261124153000",
    ]


def test_reapplying_a_rolled_back_version_updates_its_row(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    tracker.record_applied(params("1", "sha256:old", 5))
    assert tracker.record_rolled_back("1")
    (row,) = tracker.get_all()
    assert row.status == "rolled_back"
    assert not tracker.is_applied("1")
    assert tracker.get_applied() == []
    tracker.record_applied(params("1", "sha256:new", 7))
    (row,) = tracker.get_all()
    assert (row.status, row.checksum, row.duration_ms) == ("applied", "sha256:new", 7)


def test_failed_then_applied_updates_the_failed_row(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    tracker.record_failed(params("3", duration_ms=1))
    assert tracker.get("3").status == "failed"  # type: ignore[union-attr]
    assert not tracker.is_applied("3")
    tracker.record_applied(params("3", duration_ms=9))
    row = tracker.get("3")
    assert row is not None and (row.status, row.duration_ms) == ("applied", 9)


def test_recording_an_already_applied_version_is_refused(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    tracker.record_applied(params("1", "sha256:first"))
    with pytest.raises(ConcurrentRunError, match="already recorded as applied"):
        tracker.record_applied(params("1", "sha256:second"))
    tracker.record_failed(params("1", "sha256:third"))
    assert tracker.get_checksum("1") == "sha256:first"
    assert tracker.is_applied("1")


def test_missing_version_reads_as_absent(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    assert tracker.get_checksum("404") is None
    assert tracker.get("404") is None
    assert not tracker.is_applied("404")
    assert not tracker.record_rolled_back("404")
    assert not tracker.forget("404")


def test_repair_methods_change_only_their_row(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    tracker.record_failed(params("1"))
    tracker.record_applied(params("2"))
    assert tracker.set_status("1", "applied")
    assert tracker.set_checksum("2", "sha256:fixed")
    assert [(m.version, m.status, m.checksum) for m in tracker.get_all()] == [
        ("1", "applied", "sha256:aa"),
        ("2", "applied", "sha256:fixed"),
    ]
    assert tracker.forget("1")
    assert [m.version for m in tracker.get_all()] == ["2"]


def test_records_commit_or_roll_back_with_the_callers_transaction(engine: Engine) -> None:
    tracker = Tracker(engine)
    tracker.ensure_table()
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("CREATE TABLE t_rolled (id int)"))
        tracker.record_applied(params("1"), conn)
        raise RuntimeError("fail after the record")
    assert tracker.get_all() == []
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t_kept (id int)"))
        tracker.record_applied(params("2"), conn)
    assert [m.version for m in tracker.get_all()] == ["2"]


def test_reading_before_the_table_exists_gives_no_rows_and_creates_nothing(engine: Engine) -> None:
    assert Tracker(engine).get_all() == []
    assert columns(engine, "schema_migrations") == []


def test_custom_table_and_schema(engine: Engine) -> None:
    tracker = Tracker(engine, table="deploy_history", schema="ops")
    tracker.ensure_table()
    tracker.record_applied(params("7"))
    assert [c[0] for c in columns(engine, "deploy_history", "ops")] == [
        "version",
        "filename",
        "checksum",
        "applied_at",
        "duration_ms",
        "status",
    ]
    assert columns(engine, "schema_migrations") == []
    assert Tracker(engine, table="deploy_history", schema="ops").is_applied("7")


def test_table_names_are_quoted_never_injected(engine: Engine) -> None:
    name = 'x"; DROP TABLE victim; --'
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE victim (id int)"))
    tracker = Tracker(engine, table=name, schema="Odd.Schema ü")
    tracker.ensure_table()
    tracker.record_applied(params("1"))
    assert tracker.is_applied("1")
    assert columns(engine, "victim") == [("id", "integer", "YES")]
    assert len(columns(engine, name, "Odd.Schema ü")) == 6


@pytest.mark.parametrize("bad", ["", " padded", "a" * 64, "nul\x00"])
def test_invalid_table_names_are_rejected(engine: Engine, bad: str) -> None:
    with pytest.raises(InvalidIdentifierError, match="invalid table name"):
        Tracker(engine, table=bad)


def test_factory_gives_equivalent_tables() -> None:
    custom = migrations_table("other", "s")
    assert [c.name for c in custom.columns] == [c.name for c in schema_migrations.columns]
    assert custom.metadata is not schema_migrations.metadata
    assert migrations_table() is schema_migrations
    assert migrations_table("other", "s") is custom


def test_another_tools_table_is_detected_and_left_untouched(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean)")
        )
        conn.execute(text("INSERT INTO schema_migrations VALUES (20240101, false)"))
    tracker = Tracker(engine)
    with pytest.raises(IncompatibleTableError) as info:
        tracker.ensure_table()
    assert (info.value.table, info.value.columns) == (
        "schema_migrations",
        ["version bigint", "dirty boolean"],
    )
    assert "choose another table name with table=NAME." in str(info.value)
    assert info.value.exit_code == 2
    with pytest.raises(IncompatibleTableError):
        tracker.get_all()
    assert columns(engine, "schema_migrations") == [
        ("version", "bigint", "NO"),
        ("dirty", "boolean", "YES"),
    ]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version, dirty FROM schema_migrations")).all() == [
            (20240101, False)
        ]


def _ensure(url: str, barrier: Any, errors: Any) -> None:
    engine = new_engine(url)
    try:
        barrier.wait()
        Tracker(engine).ensure_table()
        errors.put(None)
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


def test_concurrent_ensure_table_from_several_processes(database_url: str, engine: Engine) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_ensure, args=(database_url, barrier, errors)) for _ in range(6)]
    for p in procs:
        p.start()
    outcomes = [errors.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert outcomes == [None] * 6
    assert [p.exitcode for p in procs] == [0] * 6
    assert len(columns(engine, "schema_migrations")) == 6

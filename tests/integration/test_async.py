"""Running migrations from an asyncio application that has an AsyncEngine.

The Migrator is synchronous. An application with an ``AsyncEngine`` runs it through
``AsyncConnection.run_sync``, giving it the ``Engine`` behind the async one::

    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlmig.migrator import Migrator

    engine = create_async_engine("postgresql+psycopg_async://app@db/app")

    async def migrate() -> None:
        async with engine.connect() as conn:
            await conn.run_sync(lambda sync_conn: Migrator(sync_conn.engine, "migrations").up())

Inside ``run_sync`` the engine's sync facade (``sync_conn.engine``, the same object as
``engine.sync_engine``) works: every query the Migrator makes is awaited on the
application's event loop, through the application's pool. The Migrator never disposes
that engine. It checks out two connections of its own (lock and work) while the one
``run_sync`` runs on stays idle, so the pool must allow three at once (the default
pool of 5 does). Use ``engine.connect()``, not ``engine.begin()``: a transaction left
open on that outer connection could hold locks the migrations wait for.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import pytest
from helpers import connect, sessions, write
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from sqlmig.errors import MigrationError
from sqlmig.events import Event
from sqlmig.migrator import Migrator, RunResult

pytestmark = pytest.mark.integration

if importlib.util.find_spec("greenlet") is None:  # SQLAlchemy's asyncio support needs it
    reason = "SQLAlchemy's asyncio extension needs greenlet (sqlalchemy[asyncio])"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true and {reason}, which is not installed", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402


def async_engine(database_url: str) -> AsyncEngine:
    url = make_url(database_url).set(drivername="postgresql+psycopg_async")
    return create_async_engine(url, pool_size=3, connect_args={"application_name": "async-app"})


MIGRATIONS = {
    "0001_users.up.sql": "CREATE TABLE users (id int, note text);\n"
    "INSERT INTO users VALUES (1, '100% :name $1');\n",
    "0001_users.down.sql": "DROP TABLE users;\n",
    "0002_index.up.sql": "-- sqlmig:no-transaction\n"
    "CREATE INDEX CONCURRENTLY users_id ON users (id);\n"
    "CREATE INDEX CONCURRENTLY users_note ON users (note);\n",
    "0002_index.down.sql": "-- sqlmig:no-transaction\nDROP INDEX CONCURRENTLY users_id;\n"
    "DROP INDEX CONCURRENTLY users_note;\n",
}


def test_async_application_runs_migrations_through_run_sync(
    database_url: str, tmp_path: Path
) -> None:
    """The recommended pattern, up and down, on the application's own AsyncEngine."""
    directory = write(tmp_path / "migrations", MIGRATIONS)
    observed: list[int] = []

    def progress(event: Event) -> None:
        with connect(database_url) as observer:
            observed.append(sessions(observer, "async-app"))

    async def main() -> tuple[RunResult, list[str], RunResult, int]:
        engine = async_engine(database_url)
        pool = engine.sync_engine.pool
        assert isinstance(pool, QueuePool)
        try:
            async with engine.connect() as conn:
                up = await conn.run_sync(
                    lambda sync_conn: Migrator(sync_conn.engine, directory, on_event=progress).up()
                )
                indexes = list(
                    (
                        await conn.execute(
                            text("SELECT indexname FROM pg_indexes WHERE tablename = 'users'")
                        )
                    ).scalars()
                )
                note = (await conn.execute(text("SELECT note FROM users"))).scalar_one()
                assert note == "100% :name $1"
            async with engine.connect() as conn:
                down = await conn.run_sync(
                    lambda sync_conn: Migrator(sync_conn.engine, directory).down(steps=None)
                )
                rows = (
                    await conn.execute(text("SELECT count(*) FROM schema_migrations"))
                ).scalar_one()
            # The application's engine is still its own: same pool, nothing checked out.
            assert engine.sync_engine.pool is pool
            assert pool.checkedout() == 0
            return up, sorted(indexes), down, rows
        finally:
            await engine.dispose()

    up, indexes, down, rows = asyncio.run(main())

    assert [(r.version, r.transactional) for r in up.migrations] == [
        ("0001", True),
        ("0002", False),
    ]
    assert indexes == ["users_id", "users_note"]
    assert [r.version for r in down.migrations] == ["0002", "0001"]
    assert rows == 2
    assert observed == [3, 3, 3, 3]  # run_sync's connection, the lock and the work connection


def test_async_failure_is_reported_like_a_sync_one(database_url: str, tmp_path: Path) -> None:
    directory = write(
        tmp_path / "migrations",
        {"0001_bad.up.sql": "CREATE TABLE a (id int);\nSELECT * FROM no_such_table;\n"},
    )

    async def main() -> tuple[MigrationError, list[tuple[str, str]]]:
        engine = async_engine(database_url)
        try:
            async with engine.connect() as conn:
                with pytest.raises(MigrationError) as caught:
                    await conn.run_sync(lambda c: Migrator(c.engine, directory).up())
                rows = await conn.execute(text("SELECT version, status FROM schema_migrations"))
                tables = (
                    await conn.execute(text("SELECT count(*) FROM pg_tables WHERE tablename = 'a'"))
                ).scalar_one()
                assert tables == 0
                return caught.value, [tuple(r) for r in rows]
        finally:
            await engine.dispose()

    error, rows = asyncio.run(main())

    assert (error.line, error.column, error.sqlstate) == (2, 15, "42P01")
    assert rows == [("0001", "failed")]

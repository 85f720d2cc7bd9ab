"""Adopting a database Alembic migrated: its history recorded in sqlmig's table, nothing run.

``alembic_version`` says which revision the database is at; the imported file whose
header names that revision (see :mod:`alembic_compat.files`) says which sqlmig
version that is. Adopting is :meth:`sqlmig.migrator.Migrator.baseline` up to that
version: under sqlmig's lock, refused when the tracking table records anything,
every record in one transaction, so a concurrent ``sqlmig up`` sees all of it or
none. The revision is read under the lock, and a guard in that transaction keeps it
true until the records commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    cast,
    func,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.schema import DropTable

from alembic_compat.engines import engine_for
from alembic_compat.errors import AdoptError
from alembic_compat.files import recorded_revision, revisions_of
from sqlmig.errors import AlreadyTrackedError, QueryError
from sqlmig.events import Event, LockWaiting
from sqlmig.locking import MIGRATION_LOCK_ID
from sqlmig.migrator import Baseline, Migrator, validate_files
from sqlmig.source import Migration
from sqlmig.tracker import DEFAULT_TABLE

log = logging.getLogger("sqlmig")

ALEMBIC_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class AdoptResult:
    """What adopting recorded."""

    revision: str
    versions: tuple[str, ...]
    dropped_alembic_version: bool


def alembic_version_table(name: str = ALEMBIC_VERSION_TABLE, schema: str | None = None) -> Table:
    """Alembic's version table, as Alembic defines it."""
    return Table(name, MetaData(), Column("version_num", String(32), nullable=False), schema=schema)


def adopt(
    database: Engine | str | URL,
    migrations_dir: str | PathLike[str],
    *,
    drop_alembic_version: bool = False,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
    version_table: str = ALEMBIC_VERSION_TABLE,
    version_table_schema: str | None = None,
    lock_timeout: float = 60.0,
    lock_id: int = MIGRATION_LOCK_ID,
    on_lock_wait: Callable[[str | None], None] | None = None,
) -> AdoptResult:
    """Record every imported migration up to the database's Alembic revision as applied.

    Runs no migration SQL. Under the migration lock, the revision in
    ``alembic_version`` is read, then sqlmig's tracking table (``table`` in
    ``schema``) is created and its rows written in one transaction that also checks
    the revision is unchanged (locking its row, so an ``alembic upgrade`` waits) and,
    with ``drop_alembic_version``, drops Alembic's table. Refuses (AdoptError,
    nothing recorded) when ``alembic_version`` is missing, empty or has several rows,
    when its revision is in no imported file, when it changed before the records
    committed, or when the tracking table already records migrations.
    ``on_lock_wait`` is called with the holder's description when the lock is busy.
    An Engine passed in is used as it is and never disposed.
    """
    migrations = validate_files(migrations_dir)
    by_revision = revisions_of(migrations)
    if not by_revision:
        raise AdoptError(
            f"no migration in {migrations_dir} records an Alembic revision",
            "Import the Alembic history first: sqlmig alembic import --config alembic.ini",
        )
    versions_table = alembic_version_table(version_table, version_table_schema)
    revision = ""

    def lock_waiting(event: Event) -> None:
        if on_lock_wait is not None and isinstance(event, LockWaiting):
            on_lock_wait(event.holder)

    with engine_for(database) as engine:

        def up_to_the_revision() -> Baseline:
            nonlocal revision
            revision = _one_revision(_revisions(engine, versions_table), versions_table)
            target = by_revision.get(revision)
            if target is None:
                raise _unknown_revision(revision, migrations, migrations_dir)
            guard = _still_at(versions_table, revision)
            drop = [DropTable(versions_table)] if drop_alembic_version else []
            return Baseline(target.version, before=[guard], after=drop)

        migrator = Migrator(
            engine,
            migrations_dir,
            table=table,
            schema=schema,
            lock_timeout=lock_timeout,
            lock_id=lock_id,
            on_event=lock_waiting,
        )
        try:
            versions = migrator.baseline(up_to_the_revision)
        except AlreadyTrackedError as exc:
            raise AdoptError(
                f"sqlmig's table {exc.table} already records {exc.recorded} migrations",
                "Adopting is for a database that sqlmig has never migrated; see `sqlmig status`.",
                exc.problems,
            ) from None
        except QueryError:
            # The guard failed, or something else did while the revision stayed put.
            now = _revisions(engine, versions_table) if revision else None
            if not revision or now == [revision]:
                raise
            raise _moved(revision, now, versions_table) from None
    log.info(
        "adopted Alembic revision %s: recorded %d migrations up to %s",
        revision,
        len(versions),
        versions[-1],
    )
    return AdoptResult(
        revision=revision,
        versions=tuple(versions),
        dropped_alembic_version=drop_alembic_version,
    )


def _display(versions_table: Table) -> str:
    if versions_table.schema:
        return f"{versions_table.schema}.{versions_table.name}"
    return versions_table.name


def _revisions(engine: Engine, versions_table: Table) -> list[str] | None:
    """The revisions in ``alembic_version``, sorted; None when there is no such table."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(versions_table.name, schema=versions_table.schema):
            return None
        return sorted(conn.execute(select(versions_table.c.version_num)).scalars())


def _one_revision(revisions: list[str] | None, versions_table: Table) -> str:
    """The one revision; AdoptError for no table, no revision or several."""
    name = _display(versions_table)
    if revisions is None:
        raise AdoptError(
            f"the database has no {name} table, so Alembic has not migrated it",
            "For a database that Alembic never migrated, use `sqlmig up` (or "
            "`sqlmig baseline VERSION` if its schema already exists).",
        )
    if not revisions:
        raise AdoptError(
            f"{name} is empty: the database is at Alembic's base, no revision applied",
            "Nothing is applied, so there is nothing to adopt: run `sqlmig up`.",
        )
    if len(revisions) > 1:
        raise AdoptError(
            f"{name} has {len(revisions)} rows: the database is at several Alembic heads",
            "sqlmig's history is one line; bring the database to a single head with "
            "Alembic first (alembic upgrade head), then adopt.",
            revisions,
        )
    return revisions[0]


def _still_at(versions_table: Table, revision: str) -> Select[Any]:
    """A statement that fails with division_by_zero (SQLSTATE 22012) unless
    ``alembic_version`` holds exactly ``revision``, and so fails the transaction it is
    in. It locks the row: an ``alembic upgrade`` running meanwhile waits for that
    transaction, so the revision recorded is still the database's when it commits."""
    locked = select(versions_table.c.version_num).with_for_update().subquery("locked")
    held = and_(func.count() == 1, func.count().filter(locked.c.version_num == revision) == 1)
    return select(literal_column("1") / cast(held, Integer)).select_from(locked)


def _moved(revision: str, now: list[str] | None, versions_table: Table) -> AdoptError:
    found = "gone" if now is None else ", ".join(now) or "empty"
    return AdoptError(
        f"{_display(versions_table)} changed while adopting: it held {revision} when read, "
        f"it is now {found}",
        "Alembic migrated the database meanwhile. Once it is done, adopt again.",
    )


def _unknown_revision(
    revision: str, migrations: list[Migration], directory: str | PathLike[str]
) -> AdoptError:
    known = [
        f"{m.version} {m.filename}: {r}"
        for m in migrations
        if (r := recorded_revision(m.up.sql)) is not None
    ]
    return AdoptError(
        f"the database is at Alembic revision {revision}, which no migration in "
        f"{directory} records (the newest imported ones are listed)",
        "The files may predate that revision: import the history again from the "
        "current Alembic project, or write the missing revisions by hand with the header "
        f"'-- alembic revision: {revision} (down_revision: ...)'.",
        known[-10:],
    )

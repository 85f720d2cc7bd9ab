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
    or_,
    select,
)
from sqlalchemy.engine import URL
from sqlalchemy.schema import DropTable

from alembic_compat.engines import engine_for
from alembic_compat.errors import AdoptError
from alembic_compat.files import recorded_down_revisions, recorded_revision, revisions_of
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
    """What adopting recorded; ``revision`` is the database's, or its revisions joined
    by commas when ``alembic_version`` has several rows."""

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
    with ``drop_alembic_version``, drops Alembic's table. What is recorded is the
    revision's file and the files of its ancestors, as the headers name them; with
    several rows (unmerged heads of a history imported with --linearize), all of
    theirs. Refuses (AdoptError, nothing recorded) when ``alembic_version`` is
    missing or empty, when a revision is in no imported file, when the files before
    the newest recorded one include a revision the database has not applied, when it
    changed before the records committed, or when the tracking table already records
    migrations.
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
    revisions: list[str] = []

    def lock_waiting(event: Event) -> None:
        if on_lock_wait is not None and isinstance(event, LockWaiting):
            on_lock_wait(event.holder)

    with engine_for(database) as engine:

        def up_to_the_revision() -> Baseline:
            revisions[:] = _present(_revisions(engine, versions_table), versions_table)
            chosen = _applied(revisions, migrations, migrations_dir, versions_table)
            guard = _still_at(versions_table, revisions)
            drop = [DropTable(versions_table)] if drop_alembic_version else []
            return Baseline(chosen[-1].version, before=[guard], after=drop)

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
            now = _revisions(engine, versions_table) if revisions else None
            if not revisions or now == revisions:
                raise
            raise _moved(",".join(revisions), now, versions_table) from None
    revision = ",".join(revisions)
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


def _present(revisions: list[str] | None, versions_table: Table) -> list[str]:
    """The revisions; AdoptError for no table or no revision."""
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
    return revisions


def _applied(
    revisions: list[str],
    migrations: list[Migration],
    directory: str | PathLike[str],
    versions_table: Table,
) -> list[Migration]:
    """The migrations the database has applied: the revisions in ``alembic_version`` and
    their ancestors, as the file headers record them. Several rows (heads not yet
    merged, in a history imported with --linearize) are accepted when their files are
    known; either way what is applied must be the first migrations of the directory,
    or sqlmig would run the others out of order."""
    by_revision = revisions_of(migrations)
    unknown = [r for r in revisions if r not in by_revision]
    if unknown and len(revisions) == 1:
        raise _unknown_revision(revisions[0], migrations, directory)
    if unknown:
        raise AdoptError(
            f"{_display(versions_table)} has {len(revisions)} rows: the database is at "
            "several Alembic heads",
            "sqlmig's history is one line; bring the database to a single head with "
            "Alembic first (alembic upgrade head), then adopt.",
            revisions,
        )
    parents = {r: recorded_down_revisions(m.up.sql) for r, m in by_revision.items()}
    applied: set[str] = set()
    waiting = list(revisions)
    while waiting:
        revision = waiting.pop()
        if revision not in applied and revision in by_revision:
            applied.add(revision)
            waiting.extend(parents[revision])
    last = max(by_revision[r].number for r in revisions)
    before = [m for m in migrations if m.number <= last]
    missing = [
        m for m in before if (r := recorded_revision(m.up.sql)) is not None and r not in applied
    ]
    if missing:
        raise AdoptError(
            f"the database is at Alembic revision {', '.join(revisions)}, but the imported "
            "order puts revisions it has not applied before it",
            "Bring the database to a point of the order first (`alembic upgrade "
            f"{recorded_revision(missing[-1].up.sql)}`, or `alembic upgrade head`), then adopt.",
            [f"{m.version} {m.filename}: {recorded_revision(m.up.sql)}" for m in missing],
        )
    return before


def _still_at(versions_table: Table, revisions: list[str]) -> Select[Any]:
    """A statement that fails with division_by_zero (SQLSTATE 22012) unless
    ``alembic_version`` holds exactly ``revisions``, and so fails the transaction it is
    in. It locks the rows: an ``alembic upgrade`` running meanwhile waits for that
    transaction, so the revisions recorded are still the database's when it commits."""
    locked = select(versions_table.c.version_num).with_for_update().subquery("locked")
    count = len(revisions)
    # One comparison per revision, not IN: the statement is sent with its values inline.
    matching = func.count().filter(or_(*(locked.c.version_num == r for r in revisions)))
    held = and_(func.count() == count, matching == count)
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

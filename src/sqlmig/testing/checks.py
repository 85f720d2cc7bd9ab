"""The ready-made checks on a project's migrations, as plain functions.

The pytest plugin runs each as a test (:mod:`sqlmig.testing.suite`); an application
may call them from tests of its own. Each raises :class:`CheckFailed` with a message
that names the version and the difference. Those that take a database expect an
empty one and leave it migrated. A migration without a down script is applied and
never rolled back: it is irreversible on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, MetaData

from sqlmig.catalog import SchemaDifference, compare_schemas, read_schema
from sqlmig.config import resolve
from sqlmig.errors import SqlmigError
from sqlmig.migrator import Migrator
from sqlmig.source import Migration
from sqlmig.tracker import DEFAULT_TABLE
from sqlmig.validation import validate_files


class CheckFailed(AssertionError):
    """A check found a problem in the migrations; the message says which and where."""


@dataclass(frozen=True)
class Project:
    """The migrations to check: their directory, and the tracking table's name and schema."""

    directory: Path
    table: str = DEFAULT_TABLE
    schema: str | None = None

    @classmethod
    def from_config(cls, root: Path, env: Mapping[str, str]) -> Project:
        """The project's sqlmig config (sqlmig.toml or [tool.sqlmig], at ``root`` or above,
        then ``SQLMIG_*`` variables), a relative directory taken from ``root``."""
        settings = resolve({}, env, root)
        return cls(root / settings.dir, settings.table, settings.schema)

    def migrator(
        self, database: Engine | str, files: Sequence[Migration] | None = None
    ) -> Migrator:
        """A Migrator for these migrations; ``files``: read and checked already, to
        spare a check that runs one migration at a time reading them on every step."""
        return Migrator(database, self.directory, table=self.table, schema=self.schema, files=files)

    def read_schema(self, engine: Engine) -> dict[str, str]:
        """The schema as the migrations made it: the tracking table (and a schema of its
        own) left out, since they are sqlmig's, not the migrations'."""
        with engine.connect() as conn:
            return read_schema(
                conn,
                exclude_tables=[(self.schema, self.table)],
                exclude_schemas=[self.schema] if self.schema else [],
            )


def files_validate(project: Project) -> list[Migration]:
    """Every check of ``sqlmig validate`` on the files; returns the migrations."""
    try:
        return validate_files(project.directory)
    except SqlmigError as exc:
        raise CheckFailed(str(exc)) from None


def upgrade_from_empty(project: Project, database: str) -> None:
    """Every migration applies, in order, to an empty database."""
    with project.migrator(database) as migrator:
        try:
            migrator.up()
        except SqlmigError as exc:
            raise CheckFailed(f"upgrade from an empty database failed: {exc}") from None


def stairway(project: Project, database: str) -> None:
    """For each migration in order: up, down, and up again.

    Finds a down that fails, and a down that leaves something its up then trips on.
    """
    migrations = files_validate(project)
    with project.migrator(database, migrations) as migrator:
        for migration in migrations:
            _step(migrator.up, migration, "up")
            if migration.down is not None:
                _step(migrator.down, migration, "down")
                _step(migrator.up, migration, _AGAIN)


def down_leaves_no_trace(project: Project, database: str) -> None:
    """For each migration in order, the schema after its up and down equals the schema
    before its up, object by object (see :mod:`sqlmig.catalog`).

    Goes on past a migration that leaves a trace, so one run names every such
    migration, unless the trace stops its up from running again.
    """
    traces: list[str] = []
    migrations = files_validate(project)
    with project.migrator(database, migrations) as migrator:
        before = project.read_schema(migrator.engine)
        for migration in migrations:
            _step(migrator.up, migration, "up")
            if migration.down is not None:
                _step(migrator.down, migration, "down")
                differences = compare_schemas(before, project.read_schema(migrator.engine))
                if differences:
                    traces.append(_trace(migration, differences))
                try:
                    _step(migrator.up, migration, _AGAIN)
                except CheckFailed as exc:
                    if not traces:
                        raise
                    traces.append(f"(stopped there: {exc})")
                    break
            before = project.read_schema(migrator.engine)
    if traces:
        raise CheckFailed("\n".join(traces))


def models_match(project: Project, database: Engine | str, metadata: MetaData) -> None:
    """The migrated schema and the models' ``metadata`` agree (through alembic_compat).

    ``database`` is migrated already. Raises AlembicMissingError without Alembic.
    """
    from alembic_compat.compare import check

    differences = check(metadata, database, table=project.table, schema=project.schema)
    if differences:
        head = files_validate(project)[-1]
        lines = "".join(f"\n  {d}" for d in differences)
        raise CheckFailed(
            f"the schema migrated up to {_name(head)} and the models differ in "
            f"{len(differences)} {_plural(len(differences), 'way')}:{lines}"
        )


_AGAIN = "up after its down (does the down leave something behind?)"


def _step(action: Callable[..., object], migration: Migration, what: str) -> None:
    """One migration up or down; a failure names it."""
    try:
        action(steps=1)
    except SqlmigError as exc:
        raise CheckFailed(f"{_name(migration)}: {what} failed: {exc}") from None


def _trace(migration: Migration, differences: list[SchemaDifference]) -> str:
    count = f"{len(differences)} {_plural(len(differences), 'difference')}"
    lines = "".join(f"\n  {d}" for d in differences)
    return (
        f"the down of {_name(migration)} leaves a trace: {count} between the schema before "
        f"its up and the schema after its down:{lines}"
    )


def _name(migration: Migration) -> str:
    return f"{migration.version} ({migration.name})"


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"

"""Alembic's offline ("--sql") mode for PostgreSQL, as a source of SQL text.

The draft runs autogenerate's operations against a ``MigrationContext`` configured
with ``as_sql=True`` for the PostgreSQL dialect, as the import runs revisions
(:mod:`alembic_compat.project`): no database is involved, and every statement
Alembic would send is captured, one string per statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from alembic_compat.project import DIALECT, StatementLog

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation
    from alembic.runtime.migration import MigrationContext


def offline_context(log: StatementLog) -> MigrationContext:
    """A MigrationContext that writes PostgreSQL SQL to ``log`` instead of running it.

    ``literal_binds`` renders values inline, as ``alembic upgrade --sql`` does.
    """
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(
        dialect_name=DIALECT,
        dialect_opts={"paramstyle": "named"},
        opts={
            "as_sql": True,
            "output_buffer": log,
            "literal_binds": True,
            "transactional_ddl": True,
        },
    )


def render_operations(
    operations: Iterable[MigrateOperation],
    *,
    existing_enums: Iterable[tuple[str | None, str]] = (),
) -> list[str]:
    """The SQL of autogenerate operations (containers are walked), one string per statement.

    ``existing_enums`` are (schema, name) of enum types the database already has, so
    a CREATE TABLE that uses one does not create it again.
    """
    from alembic.operations import Operations
    from alembic.operations.ops import OpContainer

    log = StatementLog()
    context = offline_context(log)
    context.impl.memo.setdefault("pg_enum", set()).update(existing_enums)
    runner = Operations(context)

    def invoke(operation: MigrateOperation) -> None:
        if isinstance(operation, OpContainer):
            for child in operation.ops:
                invoke(child)
        else:
            runner.invoke(operation)

    for operation in operations:
        invoke(operation)
    return [tidy(text) for _, text in log.items]


def tidy(statement: str) -> str:
    """SQLAlchemy ends each line of a CREATE TABLE with ", " before the line break;
    trailing spaces are stripped by editors and hooks, which would change the checksum."""
    if statement.upper().startswith("CREATE TABLE"):
        return statement.replace(", \n", ",\n")
    return statement

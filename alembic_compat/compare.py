"""Models against the database: the differences (``check``) and the SQL to remove them (``draft``).

The comparison is Alembic's autogenerate (``produce_migrations``) on a live
connection, with types and server defaults compared, sqlmig's tracking table and
``alembic_version`` left out. Autogenerate does not look at the values of enum
types, so they are compared here too. The SQL of a draft is Alembic's own,
rendered offline for PostgreSQL (:mod:`alembic_compat.offline`), plus what
autogenerate leaves out for PostgreSQL enums: CREATE TYPE before a new column
uses one, DROP TYPE in the downgrade, ALTER TYPE ... ADD VALUE for new values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Column, Connection, Engine, Enum, MetaData, Table, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.schema import Constraint, ForeignKeyConstraint, Index, UniqueConstraint
from sqlalchemy.types import TypeEngine

from alembic_compat.adopt import ALEMBIC_VERSION_TABLE
from alembic_compat.engines import engine_for
from alembic_compat.errors import PendingMigrationsError, require_alembic
from alembic_compat.files import write_new_files
from alembic_compat.offline import render_operations
from sqlmig.migrator import Migrator
from sqlmig.plan import State
from sqlmig.scaffold import next_version, pair_names, slugify
from sqlmig.tracker import DEFAULT_TABLE

if TYPE_CHECKING:
    from alembic.operations.ops import MigrateOperation, UpgradeOps
    from sqlalchemy.dialects.postgresql.base import PGInspector

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
EnumKey = tuple[str | None, str]  # (schema, name); schema None: on the search path


@dataclass(frozen=True)
class Difference:
    """One way the models and the database disagree.

    ``kind`` is Alembic's name for it (``add_table``: in the models only,
    ``remove_column``: in the database only, ``modify_type``...) or
    ``modify_enum`` for enum values; ``name`` names the index, constraint or type.
    """

    kind: str
    table: str | None
    column: str | None
    name: str | None
    detail: str

    @property
    def subject(self) -> str:
        if self.column is not None:
            return f"column {self.table}.{self.column}"
        if self.kind.endswith("_table"):
            return f"table {self.table}"
        what = {
            "add_index": "index",
            "remove_index": "index",
            "add_fk": "foreign key",
            "remove_fk": "foreign key",
            "add_constraint": "constraint",
            "remove_constraint": "constraint",
            "modify_enum": "enum type",
        }.get(self.kind, self.kind)
        return f"{what} {self.name or '(unnamed)'}" + (f" on {self.table}" if self.table else "")

    @property
    def description(self) -> str:
        return f"{self.subject}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.description}

    def __str__(self) -> str:
        return self.description


@dataclass(frozen=True)
class EnumChange:
    """An enum type whose values differ between the models and the database."""

    schema: str | None
    name: str
    database: tuple[str, ...]
    models: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """Everything one comparison found, for describing it or drafting SQL from it."""

    differences: tuple[Difference, ...]
    upgrade_ops: UpgradeOps
    enum_changes: tuple[EnumChange, ...]
    database_enums: frozenset[EnumKey]


def check(
    metadata: MetaData,
    database: Engine | str | URL,
    *,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
) -> list[Difference]:
    """Every difference between the models' ``metadata`` and the database; empty when in sync.

    ``table`` and ``schema`` name sqlmig's tracking table, which is not compared.
    """
    require_alembic()
    with engine_for(database) as engine, engine.connect() as conn:
        return list(compare(metadata, conn, table=table, schema=schema).differences)


def draft(
    name: str,
    metadata: MetaData,
    database: Engine | str | URL,
    migrations_dir: str | PathLike[str],
    *,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> list[Path]:
    """Write a migration pair that brings the database to the models; return its paths.

    The database must be migrated up to the newest file (else PendingMigrationsError:
    the draft would repeat what is pending). No difference: returns [] and writes
    nothing. The version is the next sequence number when the directory uses them,
    else a UTC timestamp; files are never overwritten. ``source`` (the
    ``--metadata`` path) is quoted in the header.
    """
    require_alembic()
    directory = Path(migrations_dir)
    slug = slugify(name)
    with engine_for(database) as engine:
        if directory.exists():
            with Migrator(engine, directory, table=table, schema=schema) as migrator:
                waiting = [
                    f"{s.version} {s.filename}: {s.state.value}"
                    for s in migrator.status()
                    if s.state in (State.PENDING, State.FAILED, State.ROLLED_BACK)
                ]
            if waiting:
                raise PendingMigrationsError(waiting)
        with engine.connect() as conn:
            comparison = compare(metadata, conn, table=table, schema=schema)
    if not comparison.differences:
        return []
    up, down = draft_sql(comparison)
    # The directory's own kind: the next sequence number after an import, else a timestamp.
    version = next_version(directory, sequential=False, now=now)
    up_name, down_name = pair_names(version, slug)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M:%SZ")
    origin = f" from {source}" if source else ""
    listed = "".join(f"\n--   {d.description}" for d in comparison.differences)
    up_text = (
        f"-- {slug}: drafted by `sqlmig alembic draft`{origin} on {stamp}.\n"
        f"-- A draft: review it (data, locks, defaults) before applying.\n"
        f"-- Differences between the models and the database:{listed}\n\n" + _body(up)
    )
    down_text = (
        f"-- {slug}: undoes {up_name} (drafted by `sqlmig alembic draft`).\n"
        "-- A draft: review it before applying.\n\n" + _body(down)
    )
    return write_new_files(directory, {up_name: up_text, down_name: down_text})


# --- comparing ------------------------------------------------------------------


def compare(
    metadata: MetaData,
    conn: Connection,
    *,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
) -> Comparison:
    """Compare the models with the database on ``conn`` (its default schema)."""
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext

    default_schema = inspect(conn).default_schema_name
    ignored = {ALEMBIC_VERSION_TABLE} | ({table} if schema in (None, default_schema) else set())

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return not (type_ == "table" and name in ignored)

    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": include_name,
            "target_metadata": metadata,
        },
    )
    script = produce_migrations(context, metadata)
    upgrade_ops = script.upgrade_ops
    assert upgrade_ops is not None
    database_enums = {
        (None if e["visible"] else e["schema"], e["name"]): tuple(e["labels"])
        for e in cast("PGInspector", inspect(conn)).get_enums(schema="*")
    }
    enum_changes = [
        EnumChange(key[0], key[1], database_enums[key], labels)
        for key, labels in _model_enums(metadata).items()
        if key in database_enums and database_enums[key] != labels
    ]
    differences = [_difference(diff) for diff in _flatten(upgrade_ops.as_diffs())]
    differences += [_enum_difference(change) for change in enum_changes]
    return Comparison(
        tuple(differences), upgrade_ops, tuple(enum_changes), frozenset(database_enums)
    )


def _model_enums(metadata: MetaData) -> dict[EnumKey, tuple[str, ...]]:
    """The named native enum types the models use, with their values."""
    found: dict[EnumKey, tuple[str, ...]] = {}
    for model in metadata.tables.values():
        for column in model.columns:
            kind = column.type
            if isinstance(kind, Enum) and kind.native_enum and kind.name:
                found.setdefault((kind.schema, kind.name), tuple(kind.enums))
    return found


def _flatten(diffs: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """Alembic groups the changes to one column in a list; yield them one by one."""
    for diff in diffs:
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def _difference(diff: tuple[Any, ...]) -> Difference:
    """A Difference from one of Alembic's diff tuples."""
    kind = diff[0]
    where = "in the models, missing from the database"
    if kind.startswith("remove_"):
        where = "in the database, not in the models"
    if kind in ("add_table", "remove_table"):
        table: Table = diff[1]
        return Difference(kind, table.name, None, None, where)
    if kind in ("add_column", "remove_column"):
        column: Column[Any] = diff[3]
        null = "NULL" if column.nullable else "NOT NULL"
        return Difference(
            kind, diff[2], column.name, None, f"{where} ({_type(column.type)} {null})"
        )
    if kind in ("add_index", "remove_index"):
        index: Index = diff[1]
        columns = ", ".join(str(getattr(c, "name", c)) for c in index.expressions)
        unique = "unique " if index.unique else ""
        return Difference(
            kind, _table_name(index.table), None, index.name, f"{unique}on ({columns}), {where}"
        )
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint: Constraint = diff[1]
        return Difference(
            kind,
            _table_name(constraint.table),
            None,
            str(constraint.name) if constraint.name else None,
            f"{_constraint(constraint)}, {where}",
        )
    if kind.startswith("modify_") and len(diff) == 7:
        _, _, table_name, column_name, _, database_value, model_value = diff
        what = {
            "modify_type": "type",
            "modify_nullable": "nullable",
            "modify_default": "server default",
            "modify_comment": "comment",
        }.get(kind, kind.removeprefix("modify_"))
        return Difference(
            kind,
            table_name,
            column_name,
            None,
            f"{what} is {_value(kind, database_value)} in the database, "
            f"{_value(kind, model_value)} in the models",
        )
    return Difference(kind, None, None, None, repr(diff[1:]))


def _enum_difference(change: EnumChange) -> Difference:
    name = f"{change.schema}.{change.name}" if change.schema else change.name
    return Difference(
        "modify_enum",
        None,
        None,
        name,
        f"values are ({_labels(change.database)}) in the database, "
        f"({_labels(change.models)}) in the models",
    )


def _labels(labels: Iterable[str]) -> str:
    return ", ".join(_literal(label) for label in labels)


def _table_name(table: object) -> str | None:
    return getattr(table, "name", None)


def _type(kind: TypeEngine[Any]) -> str:
    try:
        return str(kind.compile(dialect=_DIALECT))
    except Exception:  # a type PostgreSQL cannot express: show what Python knows
        return repr(kind)


def _value(kind: str, value: Any) -> str:
    if kind == "modify_type":
        return _type(value)
    if kind == "modify_nullable":
        return "NULL" if value else "NOT NULL"
    if value is None or value is False:
        return "none"
    text = getattr(value, "arg", value)
    return repr(str(getattr(text, "text", text)))


def _constraint(constraint: Constraint) -> str:
    if isinstance(constraint, ForeignKeyConstraint):
        local = ", ".join(constraint.column_keys)
        remote = ", ".join(e.target_fullname for e in constraint.elements)
        return f"foreign key ({local}) references {remote}"
    if isinstance(constraint, UniqueConstraint):
        return "unique (" + ", ".join(c.name for c in constraint.columns) + ")"
    return type(constraint).__name__


# --- drafting -------------------------------------------------------------------


def draft_sql(comparison: Comparison) -> tuple[list[str], list[str]]:
    """The upgrade and downgrade statements that remove the differences found."""
    from alembic.operations.ops import DowngradeOps

    created = _new_enums(comparison.upgrade_ops.ops, comparison.database_enums)
    known = set(comparison.database_enums) | {key for key, _ in created}
    up = [_create_type(kind) for _, kind in created]
    up += render_operations(comparison.upgrade_ops.ops, existing_enums=known)
    down: list[str] = []
    for change in comparison.enum_changes:
        more_up, more_down = _alter_enum(change)
        up += more_up
        down += more_down
    reverse: DowngradeOps = comparison.upgrade_ops.reverse()
    down += render_operations(reverse.ops, existing_enums=known)
    down += [_drop_type(kind) for _, kind in reversed(created)]
    return up, down


def _new_enums(
    operations: Iterable[MigrateOperation], existing: frozenset[EnumKey]
) -> list[tuple[EnumKey, Enum]]:
    """Enum types the upgrade uses that the database lacks, in the order first used.

    Autogenerate creates them only inside CREATE TABLE, never for a new column, and
    never drops them; so the draft creates each one first and drops it last.
    """
    from alembic.operations.ops import AddColumnOp, AlterColumnOp, CreateTableOp, OpContainer

    found: dict[EnumKey, Enum] = {}

    def visit(operation: MigrateOperation) -> None:
        types: list[Any] = []
        if isinstance(operation, OpContainer):
            for child in operation.ops:
                visit(child)
        elif isinstance(operation, CreateTableOp):
            types = [c.type for c in operation.columns if isinstance(c, Column)]
        elif isinstance(operation, AddColumnOp):
            types = [operation.column.type]
        elif isinstance(operation, AlterColumnOp) and operation.modify_type is not None:
            types = [operation.modify_type]
        for kind in types:
            if isinstance(kind, Enum) and kind.native_enum and kind.name:
                key = (kind.schema, kind.name)
                if key not in existing:
                    found.setdefault(key, kind)

    for operation in operations:
        visit(operation)
    return list(found.items())


def _create_type(kind: Enum) -> str:
    from sqlalchemy.dialects.postgresql.named_types import CreateEnumType

    return str(CreateEnumType(kind).compile(dialect=_DIALECT)).strip() + ";"


def _drop_type(kind: Enum) -> str:
    from sqlalchemy.dialects.postgresql.named_types import DropEnumType

    return str(DropEnumType(kind).compile(dialect=_DIALECT)).strip() + ";"


def _alter_enum(change: EnumChange) -> tuple[list[str], list[str]]:
    """ALTER TYPE ... ADD VALUE for values added to an enum, and what the down must say.

    PostgreSQL can add values but cannot remove or reorder them; such a change is
    left as a comment for the reviewer to write by hand.
    """
    preparer = _DIALECT.identifier_preparer
    name = preparer.quote(change.name)
    if change.schema:
        name = f"{preparer.quote_schema(change.schema)}.{name}"
    kept = [label for label in change.models if label in change.database]
    if kept != list(change.database):
        note = (
            f"-- TODO enum {name}: values removed or reordered (database: "
            f"{_labels(change.database)}; models: {_labels(change.models)}). PostgreSQL "
            "cannot do that with ALTER TYPE: write it by hand (new type, ALTER COLUMN ... "
            "TYPE ... USING, drop the old type)."
        )
        return [note], [f"-- TODO enum {name}: undo the change above by hand."]
    up = []
    for index, label in enumerate(change.models):
        if label in change.database:
            continue
        after = change.models[index - 1] if index > 0 else None
        position = (
            f" AFTER {_literal(after)}" if after else f" BEFORE {_literal(change.database[0])}"
        )
        # IF NOT EXISTS: the down cannot remove the value, so the up may run again.
        up.append(f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS {_literal(label)}{position};")
    added = _labels(label for label in change.models if label not in change.database)
    down = [
        f"-- TODO enum {name}: PostgreSQL cannot remove the values added ({added}); "
        "recreate the type by hand if they must go."
    ]
    return up, down


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _body(statements: list[str]) -> str:
    return "\n\n".join(statements) + "\n" if statements else ""

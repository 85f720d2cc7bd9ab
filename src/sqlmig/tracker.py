"""The tracking table: which migration ran, when, how long, with which checksum.

The table is a SQLAlchemy Core ``Table`` and every statement about it is a Core
expression, so versions and file names only ever reach the server as bound
parameters. A custom table name or schema gets an equivalent ``Table`` from the
same definition, never SQL pasted together from strings.
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property, lru_cache
from typing import Any, TypeVar

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateSchema, CreateTable, ExecutableDDLElement
from sqlalchemy.sql.dml import ReturningInsert, Update

from sqlmig.database import autocommit
from sqlmig.errors import ConcurrentRunError, IncompatibleTableError, InvalidIdentifierError

DEFAULT_TABLE = "schema_migrations"


class TrackerStatus(str, enum.Enum):
    """A tracking row's ``status``."""

    APPLIED = "applied"
    FAILED = "failed"  # failed, or a no-transaction migration in progress
    ROLLED_BACK = "rolled_back"


metadata = MetaData()

# What the table must look like: column name -> information_schema data_type.
_EXPECTED = {
    "version": "text",
    "filename": "text",
    "checksum": "text",
    "applied_at": "timestamp with time zone",
    "duration_ms": "integer",
    "status": "text",
}

# Concurrent CREATE TABLE IF NOT EXISTS can still lose a race on the catalog: unique
# violation, duplicate table, duplicate schema, duplicate object (the row type).
_CREATE_RACE = {"23505", "42P07", "42P06", "42710"}
_UNDEFINED_TABLE = "42P01"
_UNDEFINED_COLUMN = "42703"


_MAX_IDENTIFIER_BYTES = 63


def _constraint_name(table: str) -> str:
    """``<table>_status_check``, shortened with a hash of the table name when too long."""
    name = f"{table}_status_check"
    if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    head = table.encode()[: _MAX_IDENTIFIER_BYTES - len(f"_{digest}_check")]
    return f"{head.decode(errors='ignore')}_{digest}_check"


def _define(name: str, schema: str | None, meta: MetaData) -> Table:
    return Table(
        name,
        meta,
        Column("version", Text, primary_key=True),
        Column("filename", Text, nullable=False),
        Column("checksum", Text, nullable=False),
        Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("duration_ms", Integer, nullable=False),
        Column("status", Text, nullable=False, server_default=text("'applied'")),
        CheckConstraint(
            "status IN ('applied', 'failed', 'rolled_back')", name=_constraint_name(name)
        ),
        schema=schema,
    )


schema_migrations = _define(DEFAULT_TABLE, None, metadata)


@lru_cache(maxsize=64)
def migrations_table(name: str = DEFAULT_TABLE, schema: str | None = None) -> Table:
    """The tracking ``Table`` for a name and schema (the default one is on ``metadata``)."""
    for label, value in (("table", name), ("schema", schema)):
        if value is not None:
            check_identifier(label, value)
    if name == DEFAULT_TABLE and schema is None:
        return schema_migrations
    return _define(name, schema, MetaData())


def check_identifier(label: str, value: str, origin: str = "") -> None:
    """Refuse a table or schema name PostgreSQL would alter or an operator would misread.

    Anything else is used exactly as given, always quoted: case, dots, spaces, quotes
    and semicolons are part of the name, never SQL (``a.b`` is one table, not a schema
    and a table). A name over 63 bytes is refused because PostgreSQL would silently
    cut it, and so make two long names the same.
    """
    problem = None
    if not value or value != value.strip():
        problem = "it is empty or starts or ends with a space"
    elif any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        problem = "it contains a control character"
    elif len(value.encode()) > _MAX_IDENTIFIER_BYTES:
        problem = f"it is {len(value.encode())} bytes long; PostgreSQL allows 63"
    if problem is not None:
        raise InvalidIdentifierError(
            f"invalid {label} name {value!r}{origin}: {problem}. A {label} name is 1 to 63 "
            "bytes, used as given (quoted, so case, spaces and quotes are kept)"
        )


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the tracking table."""

    version: str
    filename: str
    checksum: str
    applied_at: datetime
    duration_ms: int
    status: str


@dataclass(frozen=True)
class RecordParams:
    """What is recorded about a migration that ran (or failed).

    ``duration_ms`` None: the server measures it, from the start of the transaction
    the record is written in to the record itself (a pipelined migration's record
    is sent before its statements have run).
    """

    version: str
    filename: str
    checksum: str
    duration_ms: int | None


def version_key(version: str) -> tuple[int, int | str]:
    """Order versions by numeric value; anything not numeric sorts last, as text."""
    return (0, int(version)) if version.isdigit() else (1, version)


T = TypeVar("T")


class Tracker:
    """Reads and writes the tracking table.

    Every method takes an optional ``conn``: given one, it runs there (so a migration
    and its record commit together); without, it runs in its own transaction.
    """

    def __init__(
        self, engine: Engine, *, table: str = DEFAULT_TABLE, schema: str | None = None
    ) -> None:
        self.engine = engine
        self.table = migrations_table(table, schema)

    @property
    def display_name(self) -> str:
        return f"{self.table.schema}.{self.table.name}" if self.table.schema else self.table.name

    @contextmanager
    def _on(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as own:
                yield own

    def _run(self, conn: Connection | None, work: Callable[[Connection], T]) -> T:
        with self._on(conn) as c:
            return work(c)

    # --- the table itself ---------------------------------------------------

    def ensure_table(self, conn: Connection | None = None) -> None:
        """Create the table when missing; refuse a table of that name with another shape.

        Safe when several processes call it at once.
        """
        for attempt in range(3):
            try:
                with self._on(conn) as c:
                    self._create(c)
                break
            except DBAPIError as exc:
                if _sqlstate(exc) not in _CREATE_RACE or conn is not None or attempt == 2:
                    raise
        self.check_shape(conn)

    def _create(self, conn: Connection) -> None:
        for statement in self._ddl():
            conn.execute(statement)

    def _ddl(self) -> list[ExecutableDDLElement]:
        schema = self.table.schema
        create = CreateTable(self.table, if_not_exists=True)
        return [CreateSchema(schema, if_not_exists=True), create] if schema else [create]

    def ddl(self, dialect: Dialect) -> list[str]:
        """The statements that create the table (and its schema) when missing, as text."""
        return [str(statement.compile(dialect=dialect)) for statement in self._ddl()]

    def check_shape(self, conn: Connection | None = None) -> None:
        """Raise IncompatibleTableError when the table lacks our columns or types."""
        table = self.table
        columns = self._run(conn, lambda c: table_columns(c, table.name, table.schema))
        if not is_tracking_table(columns):
            from sqlmig.adopt import recognise  # adopt reads tables through this module

            tool = recognise(columns)
            raise IncompatibleTableError(
                self.display_name,
                [f"{name} {kind}" for name, kind in columns.items()],
                [f"{name} {kind}" for name, kind in _EXPECTED.items()],
                tool.value if tool else None,
            )

    # --- reading --------------------------------------------------------------

    def _select(self) -> Select[tuple[str, str, str, datetime, int, str]]:
        t = self.table
        return select(
            t.c.version, t.c.filename, t.c.checksum, t.c.applied_at, t.c.duration_ms, t.c.status
        )

    def read(self, conn: Connection) -> list[AppliedMigration] | None:
        """Every row in version order, or None when the table does not exist yet.

        Costs one round trip: existence and shape are only looked at when it fails.
        Runs as a lone statement in autocommit on ``conn``, which must not be inside a
        transaction.
        """
        try:
            with autocommit(conn):
                rows = conn.execute(self._select()).all()
        except DBAPIError as exc:
            if _sqlstate(exc) == _UNDEFINED_TABLE:
                return None
            if _sqlstate(exc) == _UNDEFINED_COLUMN:
                with autocommit(conn):
                    self.check_shape(conn)
            raise
        return _in_order(rows)

    def get_all(self, conn: Connection | None = None) -> list[AppliedMigration]:
        """Every row, in version order; empty when the table does not exist yet."""
        if conn is None:
            with self.engine.connect() as own:
                return self.read(own) or []
        return _in_order(conn.execute(self._select()))

    def get_applied(self, conn: Connection | None = None) -> list[AppliedMigration]:
        """Rows whose status is 'applied', in version order."""
        return [m for m in self.get_all(conn) if m.status == "applied"]

    def get(self, version: str, conn: Connection | None = None) -> AppliedMigration | None:
        query = self._select().where(self.table.c.version == version)
        row = self._run(conn, lambda c: c.execute(query).first())
        return AppliedMigration(**row._mapping) if row is not None else None

    def is_applied(self, version: str, conn: Connection | None = None) -> bool:
        row = self.get(version, conn)
        return row is not None and row.status == "applied"

    def get_checksum(self, version: str, conn: Connection | None = None) -> str | None:
        row = self.get(version, conn)
        return row.checksum if row is not None else None

    # --- writing --------------------------------------------------------------

    def record_applied(self, params: RecordParams, conn: Connection | None = None) -> None:
        """Record a migration as applied; re-applying a failed or rolled-back one updates it.

        Raises ConcurrentRunError when the row is already 'applied': another run got
        there first, and the caller's transaction must roll back.
        """
        if not self._upsert(params, "applied", conn):
            raise ConcurrentRunError(
                f"migration {params.version} ({params.filename}) is already recorded as "
                "applied by another run; this run's transaction was rolled back. Another "
                "sqlmig may be running without the lock; run `sqlmig status`."
            )

    def record_failed(self, params: RecordParams, conn: Connection | None = None) -> None:
        """Record a failure; an 'applied' row is never overwritten."""
        self._upsert(params, "failed", conn)

    def _upsert(self, params: RecordParams, status: str, conn: Connection | None) -> bool:
        values = record_values(params, status)
        return self._run(conn, lambda c: c.execute(self._record, values).first()) is not None

    @cached_property
    def _record(self) -> ReturningInsert[tuple[str]]:
        return self.upsert()

    def upsert(
        self, *, duration_by_server: bool = False, given: dict[str, Any] | None = None
    ) -> ReturningInsert[tuple[str]]:
        """The upsert that records a run, its values parameters named as in
        :func:`record_values` (``given``: their values); it changes nothing when the
        row is 'applied'.

        ``duration_by_server``: ``duration_ms`` is the time from the start of the
        transaction to the record, taken by the server when it writes the row.
        """
        values: dict[str, Any] = {name: _param(key, given) for name, key in _RECORDED}
        if duration_by_server:
            elapsed = func.extract("epoch", func.clock_timestamp() - func.transaction_timestamp())
            values["duration_ms"] = cast(elapsed * 1000, Integer)
        t = self.table
        return (
            insert(t)
            .values(**values, applied_at=func.now())
            .on_conflict_do_update(
                index_elements=[t.c.version],
                set_={**values, "applied_at": func.now()},
                where=t.c.status != TrackerStatus.APPLIED.value,
            )
            .returning(t.c.version)
        )

    @staticmethod
    def or_fail(upsert: ReturningInsert[tuple[str]]) -> Select[Any]:
        """``upsert`` made to fail with division_by_zero (SQLSTATE 22012) when it changed
        no row, because another run recorded the migration as applied meanwhile.

        The record travels in one pipeline with its migration and COMMIT, so the
        server, not the client, must stop that COMMIT: a failed statement aborts the
        transaction and the COMMIT after it becomes a rollback.
        """
        recorded = upsert.cte("recorded")
        return select(literal_column("1") / func.count()).select_from(recorded)

    def status_update(self, *, now: bool = False, given: dict[str, Any] | None = None) -> Update:
        """Set a row's status (parameters ``record_version``, ``record_status``;
        ``given``: their values); ``now`` also moves ``applied_at`` to the server's time."""
        t = self.table
        values: dict[str, Any] = {"status": _param("record_status", given)}
        if now:
            values["applied_at"] = func.now()
        where = t.c.version == _param("record_version", given)
        return update(t).where(where).values(**values)

    def record_rolled_back(self, version: str, conn: Connection | None = None) -> bool:
        """Mark a row 'rolled_back'; False when there is no such row."""
        values = {"record_version": version, "record_status": TrackerStatus.ROLLED_BACK.value}
        return (
            self._run(conn, lambda c: c.execute(self.status_update(now=True), values).rowcount) == 1
        )

    def set_status(
        self,
        version: str,
        status: str,
        conn: Connection | None = None,
        *,
        checksum: str | None = None,
    ) -> bool:
        """Force a row's status (repair), and its checksum when given, in one statement;
        False when there is no such row."""
        t = self.table
        stmt = update(t).where(t.c.version == version).values(status=TrackerStatus(status).value)
        if checksum is not None:
            stmt = stmt.values(checksum=checksum)
        return self._run(conn, lambda c: c.execute(stmt).rowcount) == 1

    def set_checksum(self, version: str, checksum: str, conn: Connection | None = None) -> bool:
        """Realign a recorded checksum with its file (repair); False when no such row."""
        stmt = update(self.table).where(self.table.c.version == version).values(checksum=checksum)
        return self._run(conn, lambda c: c.execute(stmt).rowcount) == 1

    def forget(self, version: str, conn: Connection | None = None) -> bool:
        """Delete a row (repair); False when there is no such row."""
        stmt = self.table.delete().where(self.table.c.version == version)
        return self._run(conn, lambda c: c.execute(stmt).rowcount) == 1


_COLUMNS = text(
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = COALESCE(:schema, current_schema()) AND table_name = :name "
    "ORDER BY ordinal_position"
)


def table_columns(conn: Connection, name: str, schema: str | None) -> dict[str, str]:
    """A table's columns and their types (information_schema's data_type), in order;
    empty when there is no such table (``schema`` None: the current schema)."""
    found = conn.execute(_COLUMNS, {"schema": schema, "name": name})
    return {row.column_name: row.data_type for row in found}


def is_tracking_table(columns: dict[str, str]) -> bool:
    """Whether a table with these columns is a sqlmig tracking table."""
    return all(columns.get(name) == kind for name, kind in _EXPECTED.items())


# The columns a record sets from its parameters (applied_at is the server's now()),
# and the parameters' names: a column's own name is reserved by SQLAlchemy.
_RECORDED = tuple(
    (name, f"record_{name}")
    for name in ("version", "filename", "checksum", "duration_ms", "status")
)


def _param(key: str, given: dict[str, Any] | None) -> Any:
    return bindparam(key) if given is None else bindparam(key, given[key])


def record_values(params: RecordParams, status: str) -> dict[str, Any]:
    """The parameters of :meth:`Tracker.upsert` for one migration."""
    given = (params.version, params.filename, params.checksum, params.duration_ms, status)
    return {key: value for (_, key), value in zip(_RECORDED, given, strict=True)}


def _in_order(rows: Iterable[Sequence[Any]]) -> list[AppliedMigration]:
    # By position (_select() names the columns in this order): a mapping per row costs
    # more than the rest of reading the row.
    found = [AppliedMigration(v, f, c, at, ms, st) for v, f, c, at, ms, st in rows]
    found.sort(key=lambda m: version_key(m.version))
    return found


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)

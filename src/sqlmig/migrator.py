"""The Migrator: brings a database to the wanted version, exactly once, under the lock.

The one object an application needs. Given an Engine it uses it as it is (never
disposes it, never changes its pool, holds at most two connections: lock and work,
and a third for a lease's heartbeat); given a URL it makes its own small engine and
disposes it when closed.

Each call builds a :class:`sqlmig.run.Run`, which owns the lock, the work connection
and the apply body for that call only: a Migrator keeps nothing between calls, so
two threads may use one at once (each waits for the lock like another process).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from sqlmig.adopt import Takeover, Tool, changed_meanwhile, survey
from sqlmig.apply import Applier, Bookkeeping, MigrationResult, RunResult
from sqlmig.database import autocommit, connect, new_engine
from sqlmig.errors import (
    AlreadyTrackedError,
    LintError,
    MigrationInterrupted,
    QueryError,
    UsageError,
)
from sqlmig.events import LintReported, OnEvent, ignore
from sqlmig.lease import DEFAULT_HEARTBEAT, DEFAULT_TTL, LeaseLock
from sqlmig.lint import SMALL_TABLE_ROWS, Guards, Mode, Report, headline, lint, select
from sqlmig.locking import (
    MIGRATION_LOCK_ID,
    AdvisoryLock,
    LockRelease,
    LockState,
    LockStrategy,
    release,
)
from sqlmig.outcome import Direction
from sqlmig.plan import (
    MigrationStatus,
    Plan,
    State,
    check_blockers,
    newest_applied,
    plan_down,
    plan_up,
    statuses,
)
from sqlmig.run import Options, Run, query_failure, refuse_no_transaction
from sqlmig.sink import BEGIN, COMMIT, Collector, Command, Role
from sqlmig.source import Migration, load_migrations
from sqlmig.tracker import DEFAULT_TABLE, AppliedMigration, Tracker, migrations_table
from sqlmig.validation import validate_files as validate_files  # also public here

T = TypeVar("T")

__all__ = [
    "AdoptResult",
    "Baseline",
    "LockRelease",
    "LockState",
    "MigrationResult",
    "Migrator",
    "RepairAction",
    "RunResult",
    "validate_files",
]

STRATEGIES = ("advisory", "table")


class RepairAction(str, enum.Enum):
    """What ``repair`` records about a migration's row."""

    APPLIED = "applied"  # its changes are complete
    ROLLED_BACK = "rolled_back"  # its changes were undone
    FORGET = "forget"  # drop the row
    CHECKSUM = "checksum"  # an intentional edit: record the file's checksum


@dataclass(frozen=True)
class Baseline:
    """What ``Migrator.baseline`` records: every migration up to ``version``.

    ``before`` and ``after`` are the caller's statements (Core expressions), sent in
    the records' transaction before and after them: a guard that fails the
    transaction when the database is no longer as it was read, a table to drop. All
    of it commits, or none.
    """

    version: str
    before: Sequence[ClauseElement] = ()
    after: Sequence[ClauseElement] = ()


@dataclass(frozen=True)
class AdoptResult:
    """What ``adopt`` did, or with ``dry_run`` would do (``statements``: what it would send)."""

    takeover: Takeover
    statements: tuple[str, ...] = ()
    dry_run: bool = False
    lock_wait_s: float = 0.0

    @property
    def versions(self) -> tuple[str, ...]:
        """Recorded as applied (or, in a dry run, to record)."""
        return tuple(m.version for m in self.takeover.applied)


class Migrator:
    """Applies, rolls back and inspects the migrations of one directory on one database."""

    def __init__(
        self,
        engine_or_url: Engine | str | URL,
        directory: str | PathLike[str] = "migrations",
        *,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        lock_timeout: float = 60.0,
        lock_id: int = MIGRATION_LOCK_ID,
        lock: LockStrategy | None = None,
        lock_strategy: str | None = None,
        lock_ttl: float = DEFAULT_TTL,
        lock_heartbeat: float = DEFAULT_HEARTBEAT,
        migration_lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        ddl_lock_timeout: float | None = None,
        lock_retries: int = 0,
        allow_out_of_order: bool = False,
        allow_drift: bool = False,
        search_path: str | None = None,
        lint: str | Mode = Mode.OFF,
        lint_small_table_rows: int = SMALL_TABLE_ROWS,
        on_event: OnEvent = ignore,
        files: Sequence[Migration] | None = None,
    ) -> None:
        """``lock_timeout``: seconds to wait for the migration lock (0 tries once).

        ``migration_lock_timeout`` and ``statement_timeout`` (seconds) apply to the
        migrations' own session: how long DDL may wait for a table lock, and run.
        ``lock_strategy``: how runs exclude each other: ``"advisory"`` (the default, the
        advisory lock ``lock_id`` on a session of its own) or ``"table"`` (a lease in
        ``<table>_lock``, for a URL that goes through a transaction pooler), which
        expires ``lock_ttl`` seconds after its last renewal and is renewed every
        ``lock_heartbeat`` seconds. ``lock``: a strategy object instead.
        ``ddl_lock_timeout`` (seconds) guards each migration's table locks instead: a
        migration whose statement waits longer is rolled back and tried again up to
        ``lock_retries`` times, and each wait names the sessions it waited for.
        ``search_path``: a schema the migrations run in (one tenant's, when the same
        files serve a schema per tenant); the session's own is put back afterwards.
        ``lint``: ``warn`` or ``error`` lints the migrations ``up`` would run before
        taking the lock (see :meth:`lint`), reporting the findings as an event, and
        with ``error`` stops on a warning; tables below ``lint_small_table_rows`` rows
        are small enough that findings about their size are only informational.
        ``on_event``: called with each ``sqlmig.events`` object a run reports.
        ``files``: the directory's migrations, already read and checked (a fleet reads
        the files once for all its targets).
        """
        self.directory = Path(directory)
        migrations_table(table, schema)  # a bad name fails before any engine exists
        if lock is not None and lock_strategy is not None:
            raise UsageError("give lock= or lock_strategy=, not both")
        self.options = Options(
            lock=lock
            or strategy(
                lock_strategy or "advisory",
                table=table,
                schema=schema,
                lock_id=lock_id,
                ttl=lock_ttl,
                heartbeat=lock_heartbeat,
            ),
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            migration_lock_timeout=migration_lock_timeout,
            ddl_lock_timeout=ddl_lock_timeout,
            lock_retries=lock_retries,
            allow_out_of_order=allow_out_of_order,
            allow_drift=allow_drift,
            search_path=search_path,
        )
        self.on_event = on_event
        self._files = None if files is None else list(files)
        self.lint_mode = Mode(lint)
        self.lint_small_table_rows = lint_small_table_rows
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self.engine = (
            engine_or_url
            if isinstance(engine_or_url, Engine)
            else new_engine(engine_or_url, check=False)  # the first connection checks
        )
        self.tracker = Tracker(self.engine, table=table, schema=schema)

    # --- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Dispose the engine if this Migrator made it; an application's engine is left alone."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Migrator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading (no lock) ----------------------------------------------------------

    def migrations(self) -> list[Migration]:
        """The migration files, fully checked (names, encoding, scripts) before anything runs."""
        return self._files if self._files is not None else validate_files(self.directory)

    def status(self) -> list[MigrationStatus]:
        """Every migration known from the files or the table, with its state. Takes no lock.

        Reads the files (names, encoding, sections, checksums) but does not lex their
        SQL: a state needs none of it, and ``validate`` and every run still check it.
        """
        rows = self._rows()
        files = self._files if self._files is not None else load_migrations(self.directory)
        return statuses(files, rows)

    def history(self) -> list[AppliedMigration]:
        """The tracking table's rows, newest first."""
        return sorted(self._rows(), key=lambda r: r.applied_at, reverse=True)

    def validate(self) -> list[MigrationStatus]:
        """Every file check and every drift and repair check, without changing anything."""
        rows = self._rows()
        states = statuses(self.migrations(), rows)
        check_blockers(states, allow_drift=False)
        return states

    def lint(self, versions: Sequence[str] = (), *, pending: bool = False) -> Report:
        """squawk's findings on the migrations of ``versions`` (all when none is named;
        with ``pending``, those not applied yet), read against this database: table
        sizes, what each lock blocks, the timeouts this Migrator sets. Takes no lock.

        Raises UsageError when squawk is not installed (``pip install 'sqlmig[lint]'``).
        """
        migrations = self.migrations()
        chosen = select(migrations, versions)
        if pending:
            waiting = {
                s.version for s in statuses(migrations, self._rows()) if s.state is State.PENDING
            }
            chosen = [m for m in chosen if m.version in waiting]
        return self._lint(chosen)

    def _lint(self, migrations: Sequence[Migration]) -> Report:
        o = self.options
        guards = Guards.of(o.ddl_lock_timeout, o.migration_lock_timeout, o.statement_timeout)
        with connect(self.engine) as conn:
            try:
                return lint(
                    migrations,
                    database=conn,
                    small_table_rows=self.lint_small_table_rows,
                    guards=guards,
                )
            except DBAPIError as exc:
                error = query_failure(self.engine, exc, "read the tables' sizes", gone=False)
        raise error

    def _preflight(self, target: str | None, steps: int | None) -> None:
        """The lint on what ``up`` would run, before the lock: a finding at the level
        the mode stops at stops ``up`` with nothing run."""
        states = statuses(self.migrations(), self._rows())
        check_blockers(states, allow_drift=self.options.allow_drift)
        report = self._lint(self._plan_up(states, target, steps).migrations)
        failing = report.failing(self.lint_mode)
        if failing:
            raise LintError([headline(f) for f in failing], self.lint_mode.fails_at.value)
        self.on_event(LintReported(report, self.lint_mode))

    def plan(
        self,
        direction: str = "up",
        *,
        target: str | None = None,
        steps: int | EllipsisType | None = ...,
        single_transaction: bool = False,
    ) -> list[str]:
        """The exact statements ``up`` or ``down`` would send, in order, bookkeeping included.

        The same apply body as a run, with a sink that collects instead of executing:
        what is shown is what runs (values of sqlmig's own statements shown inline).
        ``target`` and ``steps`` mean what they mean to ``up`` and ``down``: left
        out, all for up and one for down; ``steps=None`` is all for both. Changes
        nothing and takes no lock.
        """
        states = statuses(self.migrations(), self._rows())
        check_blockers(states, allow_drift=self.options.allow_drift)
        count = None if isinstance(steps, EllipsisType) else steps
        if direction == "up":
            chosen = self._plan_up(states, target, count)
        elif direction == "down":
            chosen = plan_down(states, steps=1 if steps is ... else count, target=target)
        else:
            raise UsageError(f"direction must be 'up' or 'down', not {direction!r}")
        if single_transaction:
            refuse_no_transaction(chosen)
        collector = Collector()
        book = Bookkeeping(self.tracker, self.engine.dialect, shown=True)
        applier = Applier(collector, book, retry=self.options.lock_retry)
        applier.run(chosen, single_transaction=single_transaction)
        return collector.statements

    # --- the lock itself ------------------------------------------------------------------

    def lock_status(self) -> LockState:
        """The migration lock under this Migrator's strategy, and who holds it."""
        return self._on_connection(self.options.lock.state, "read the migration lock")

    def release_lock(
        self, *, force: bool = False, confirm: Callable[[LockState], bool] = lambda state: True
    ) -> LockRelease:
        """Free the migration lock of a run that is gone (see :func:`sqlmig.locking.release`):
        an expired lease at once; a live lease, or the session holding the advisory
        lock, only with ``force`` and when ``confirm`` agrees."""
        lock = self.options.lock
        return self._on_connection(
            lambda conn: release(lock, conn, force=force, confirm=confirm),
            "release the migration lock",
        )

    # --- running (under the lock) -------------------------------------------------------

    def up(
        self,
        target: str | None = None,
        steps: int | None = None,
        *,
        single_transaction: bool = False,
    ) -> RunResult:
        """Apply pending migrations in order: all, up to ``target`` (inclusive), or ``steps``.

        ``single_transaction``: all of them and their tracking rows in one transaction,
        all or nothing (refused when one must run outside a transaction). With a lint
        mode, the lint runs first, before the lock.
        """

        def body(run: Run, migrations: list[Migration]) -> RunResult:
            states = run.states(migrations)
            plan = self._plan_up(states, target, steps)
            done = run.apply(plan, single_transaction=single_transaction)
            return RunResult("up", done, run.waited, newest_applied(states))

        if self.lint_mode is not Mode.OFF:
            self._preflight(target, steps)
        return self._locked(body)

    def down(self, steps: int | None = 1, target: str | None = None) -> RunResult:
        """Roll back applied migrations newest first: ``steps`` (None: all), or above ``target``."""

        def body(run: Run, migrations: list[Migration]) -> RunResult:
            states = run.states(migrations)
            plan = plan_down(states, steps=steps, target=target)
            return RunResult("down", run.apply(plan), run.waited, newest_applied(states))

        return self._locked(body)

    def redo(self) -> RunResult:
        """Roll back the newest applied migration and apply it again, under one lock."""

        def body(run: Run, migrations: list[Migration]) -> RunResult:
            states = run.states(migrations)
            undo = plan_down(states, steps=1)
            down = run.apply(undo)
            again = run.apply(Plan("up", undo.migrations[::-1]))
            return RunResult("redo", down + again, run.waited, newest_applied(states))

        return self._locked(body)

    def baseline(self, version: str | Callable[[], Baseline]) -> list[str]:
        """Record every migration up to ``version`` as applied without running it.

        For adopting a database whose schema already exists. Refuses when anything is
        recorded already (AlreadyTrackedError). The tracking table when missing and
        every record commit in one transaction. ``version`` may instead be a function
        returning a :class:`Baseline`, called under the lock once the table is known to
        record nothing, so that what it reads from the database can be guarded until
        the records commit (``alembic_compat.adopt`` reads Alembic's revision there).
        Returns the versions recorded.
        """

        def record(run: Run, migrations: list[Migration]) -> list[str]:
            rows = run.rows()
            if rows:
                raise AlreadyTrackedError(
                    self.tracker.display_name,
                    len(rows),
                    [f"{r.version} {r.filename}: {r.status}" for r in rows[:10]],
                )
            chosen = version() if callable(version) else Baseline(version)
            last = chosen.version
            if not last.isdigit() or all(m.number != int(last) for m in migrations):
                raise UsageError(f"baseline version {last} is not a known migration file")
            recorded = [m for m in migrations if m.number <= int(last)]
            self._record_applied(
                run, recorded, before=chosen.before, after=chosen.after, create=rows is None
            )
            return [m.version for m in recorded]

        return self._locked(record)

    def adopt(
        self,
        tool: str | Tool,
        *,
        from_table: str | None = None,
        rename_to: str | None = None,
        keep: bool = False,
        dry_run: bool = False,
    ) -> AdoptResult:
        """Take over a database that golang-migrate, dbmate or goose migrated.

        Reads the tool's table (``from_table``, by default the tool's own, in this
        Migrator's schema) and records the migrations it applied as ``baseline`` does,
        with checksums from the files, running none. The tool's table is renamed
        ``rename_to`` (default ``<table>_<tool>``), or left as it is with ``keep``
        (then this Migrator's table needs another name). All in one transaction under
        the migration lock, with a guard that fails it if the tool's table changed
        since it was read. AdoptError, nothing changed, when the tool's table says
        what the files cannot stand for (a dirty golang-migrate database, versions
        without a file...). Called again, it says it is done. ``dry_run``: the
        statements it would send, and nothing changed.
        """
        source = Tool.named(tool)

        def take_over(run: Run, migrations: list[Migration]) -> AdoptResult:
            lock = run.lock
            assert lock is not None
            with run.guard(lock.connection, 8):
                plan = survey(
                    lock.connection,
                    self.tracker,
                    source,
                    migrations,
                    table=from_table,
                    rename_to=rename_to,
                    keep=keep,
                )
            statements: list[str] = []
            if not plan.done:
                try:
                    statements = self._record_applied(
                        run, plan.applied, before=plan.before, create=plan.create, dry_run=dry_run
                    )
                except QueryError as error:
                    if error.sqlstate != "22012":  # the guard: the tool's rows changed
                        raise
                    raise changed_meanwhile(plan) from None
            return AdoptResult(plan, tuple(statements), dry_run, run.waited)

        return self._locked(take_over)

    def _record_applied(
        self,
        run: Run,
        recorded: Sequence[Migration],
        *,
        before: Sequence[ClauseElement] = (),
        after: Sequence[ClauseElement] = (),
        create: bool,
        dry_run: bool = False,
    ) -> list[str]:
        """Record migrations as applied without running them: the caller's statements
        before, the tracking table when missing, a row for each, the caller's after, in
        one transaction (a refusal changes nothing). For a dry run, those statements
        instead, as they would be sent."""
        dialect = self.engine.dialect
        book = Bookkeeping(self.tracker, dialect, shown=dry_run)
        commands = [
            *(_command(statement, dialect) for statement in before),
            *(Command(sql, {}, Role.RECORD) for sql in self.tracker.ddl(dialect) if create),
            *(book.done(m, Direction.UP, 0) for m in recorded),
            *(_command(statement, dialect) for statement in after),
        ]
        if dry_run:
            collector = Collector()
            collector.send([BEGIN, *commands, COMMIT])
            return collector.statements
        run.record(commands, f"record {len(recorded)} migrations as applied")
        return []

    def repair(self, version: str, action: str | RepairAction) -> str:
        """Resolve a failed row (``applied``, ``rolled_back``, ``forget``) or, after an
        intentional edit, realign its checksum with the file (``checksum``).

        Returns a sentence saying what changed.
        """
        try:
            act = RepairAction(action)
        except ValueError:
            choices = ", ".join(a.value for a in RepairAction)
            raise UsageError(f"repair action must be one of {choices}") from None

        def fix(run: Run, migrations: list[Migration]) -> str:
            rows = {int(r.version): r for r in run.rows() or [] if r.version.isdigit()}
            row = rows.get(int(version)) if version.isdigit() else None
            if row is None:
                raise UsageError(f"no tracking row for version {version}; see `sqlmig status`")
            file = next((m for m in migrations if m.number == int(version)), None)
            if act is RepairAction.CHECKSUM and file is None:
                raise UsageError(f"the file of {row.version} is gone; nothing to align")
            checksum = file.checksum if file is not None else None
            work = run.work()
            try:
                if act is RepairAction.FORGET:
                    self.tracker.forget(row.version, work)
                    return f"forgot {row.version} {row.filename} (was {row.status})"
                if act is RepairAction.CHECKSUM:
                    self.tracker.set_checksum(row.version, str(checksum), work)
                    return f"recorded checksum of {row.version} {row.filename} as {checksum}"
                # --applied also records the file's checksum: the file is what was applied.
                new = checksum if act is RepairAction.APPLIED else None
                self.tracker.set_status(row.version, act.value, work, checksum=new)
                return f"marked {row.version} {row.filename} {act.value} (was {row.status})"
            except DBAPIError as exc:
                error = run.query_failure(exc, f"repair {row.version}", gone=False)
            raise error

        return self._locked(fix)

    # --- the run itself ---------------------------------------------------------------

    def _rows(self) -> list[AppliedMigration]:
        """The tracking table's rows on a connection of its own; none when it is missing."""
        with connect(self.engine) as conn:
            try:
                return self.tracker.read(conn) or []
            except DBAPIError as exc:
                error = query_failure(self.engine, exc, "read the tracking table", gone=False)
        raise error

    def _on_connection(self, work: Callable[[Connection], T], what: str) -> T:
        """``work`` on a connection of its own in autocommit (single statements, right
        through a transaction pooler); a refused query is a QueryError."""
        with connect(self.engine) as conn:
            try:
                with autocommit(conn):
                    return work(conn)
            except DBAPIError as exc:
                error = query_failure(self.engine, exc, what, gone=conn.invalidated)
        raise error

    def _plan_up(
        self, states: list[MigrationStatus], target: str | None, steps: int | None
    ) -> Plan:
        return plan_up(
            states, target=target, steps=steps, allow_out_of_order=self.options.allow_out_of_order
        )

    def _locked(self, body: Callable[[Run, list[Migration]], T]) -> T:
        """Check the files, then run ``body`` in a Run holding the lock.

        An interrupt (Ctrl-C, SIGTERM) leaves as MigrationInterrupted, worded while the
        run's connections can still be asked, raised once the lock is released and the
        connections are back in the pool.
        """
        run = Run(
            self.engine, self.tracker, self.options, self.on_event, owns_engine=self._owns_engine
        )
        interrupted: MigrationInterrupted | None = None
        try:
            migrations = self.migrations()
            with run:
                try:
                    result = body(run, migrations)
                except KeyboardInterrupt as exc:
                    interrupted = run.interrupted(exc)
                except DBAPIError as exc:  # sqlmig's own statements, outside any migration
                    failure = run.query_failure(exc, "read or record the run's state", gone=False)
                    raise failure from None
                else:
                    run.finished = getattr(result, "migrations", ())
                    return result
        except MigrationInterrupted:
            raise
        except KeyboardInterrupt as exc:
            raise run.interrupted(exc) from None
        assert interrupted is not None
        raise interrupted from None


def _command(statement: ClauseElement, dialect: Dialect) -> Command:
    """A caller's statement as sqlmig sends its own: values as parameters, and always a
    parameter mapping (compiled SQL doubles any % in a name, which psycopg undoes);
    shown with its values inline, for a dry run."""
    compiled = statement.compile(dialect=dialect)
    shown = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return Command(
        compiled.string,
        dict(compiled.construct_params() or {}),
        Role.RECORD,
        shown=str(shown),
    )


def strategy(
    name: str,
    *,
    table: str = DEFAULT_TABLE,
    schema: str | None = None,
    lock_id: int = MIGRATION_LOCK_ID,
    ttl: float = DEFAULT_TTL,
    heartbeat: float = DEFAULT_HEARTBEAT,
) -> LockStrategy:
    """The lock strategy ``--lock-strategy`` names, for the tracking table ``table``."""
    if name == "advisory":
        return AdvisoryLock(lock_id)
    if name == "table":
        return LeaseLock(table, schema, lock_id=lock_id, ttl=ttl, heartbeat=heartbeat)
    raise UsageError(f"lock strategy must be one of {', '.join(STRATEGIES)}, not {name!r}")

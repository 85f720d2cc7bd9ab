"""The Migrator: brings a database to the wanted version, exactly once, under the lock.

The one object an application needs. Given an Engine it uses it as it is (never
disposes it, never changes its pool, holds at most two connections: lock and work);
given a URL it makes its own small engine and disposes it when closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import TypeVar

import psycopg
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from sqlmig.database import new_engine, scrub
from sqlmig.errors import MigrationError, SqlmigError, StateError, UsageError
from sqlmig.locking import MIGRATION_LOCK_ID, HeldLock, advisory_lock
from sqlmig.plan import (
    MigrationStatus,
    Plan,
    check_blockers,
    may_be_partial,
    plan_down,
    plan_up,
    statuses,
)
from sqlmig.runner import StatementFailure, run_script, run_statements, sql_error
from sqlmig.source import Migration, Script, load_migrations
from sqlmig.sqlscript import split_statements
from sqlmig.tracker import DEFAULT_TABLE, AppliedMigration, RecordParams, Tracker
from sqlmig.validation import check_scripts

log = logging.getLogger("sqlmig")

T = TypeVar("T")

REPAIR_ACTIONS = ("applied", "rolled_back", "forget", "checksum")


@dataclass(frozen=True)
class MigrationResult:
    """One migration that ran."""

    version: str
    name: str
    filename: str
    direction: str
    duration_ms: int
    transactional: bool


@dataclass(frozen=True)
class RunResult:
    """What a command ran, in order, and how long it waited for the lock."""

    direction: str
    migrations: tuple[MigrationResult, ...]
    lock_wait_s: float = 0.0


Progress = Callable[[str, Migration, int, int, str], None]
"""Called with ("start" | "done", migration, index, total, "up" | "down") around each
migration."""


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
        migration_lock_timeout: float | None = None,
        statement_timeout: float | None = None,
        allow_out_of_order: bool = False,
        allow_drift: bool = False,
        on_lock_wait: Callable[[str | None], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        """``lock_timeout``: seconds to wait for the migration lock (0 tries once).

        ``migration_lock_timeout`` and ``statement_timeout`` (seconds) apply to the
        migrations' own session: how long DDL may wait for a table lock, and run.
        """
        self.directory = Path(directory)
        self.tracker_args = {"table": table, "schema": schema}
        self.lock_timeout = lock_timeout
        self.lock_id = lock_id
        self.migration_lock_timeout = migration_lock_timeout
        self.statement_timeout = statement_timeout
        self.allow_out_of_order = allow_out_of_order
        self.allow_drift = allow_drift
        self.on_lock_wait = on_lock_wait
        self.progress = progress
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self.engine = (
            engine_or_url if isinstance(engine_or_url, Engine) else new_engine(engine_or_url)
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

    # --- reading ------------------------------------------------------------------

    def migrations(self) -> list[Migration]:
        """The migration files, fully checked (names, encoding, scripts) before anything runs."""
        return validate_files(self.directory)

    def status(self) -> list[MigrationStatus]:
        """Every migration known from the files or the table, with its state. Takes no lock."""
        migrations = self.migrations()
        with self.engine.connect() as conn:
            rows = self.tracker.read(conn) or []
        return statuses(migrations, rows)

    def history(self) -> list[AppliedMigration]:
        """The tracking table's rows, newest first."""
        rows = self.tracker.get_all()
        return sorted(rows, key=lambda r: r.applied_at, reverse=True)

    def validate(self) -> list[MigrationStatus]:
        """Every file check and every drift and repair check, without changing anything."""
        states = self.status()
        check_blockers(states, allow_drift=False)
        return states

    # --- running --------------------------------------------------------------------

    def up(self, target: str | None = None, steps: int | None = None) -> RunResult:
        """Apply pending migrations in order: all, up to ``target`` (inclusive), or ``steps``."""
        return self._run(
            lambda states: plan_up(
                states, target=target, steps=steps, allow_out_of_order=self.allow_out_of_order
            )
        )

    def down(self, steps: int | None = 1, target: str | None = None) -> RunResult:
        """Roll back applied migrations newest first: ``steps`` (None: all), or above ``target``."""
        return self._run(lambda states: plan_down(states, steps=steps, target=target))

    def redo(self) -> RunResult:
        """Roll back the newest applied migration and apply it again, under one lock."""

        def both(lock: HeldLock, work: Connection, migrations: list[Migration]) -> RunResult:
            undo = plan_down(self._states(work, migrations), steps=1)
            down = self._execute(lock, work, undo)
            again = self._execute(lock, work, Plan("up", undo.migrations[::-1]))
            return RunResult("redo", down.migrations + again.migrations, lock.waited)

        return self._locked(both)

    def plan(
        self,
        direction: str = "up",
        *,
        target: str | None = None,
        steps: int | EllipsisType | None = ...,
    ) -> list[str]:
        """The exact SQL that ``up`` or ``down`` would send, in order, bookkeeping included.

        ``target`` and ``steps`` mean what they mean to ``up`` and ``down``: left out,
        all for up and one for down; ``steps=None`` is all for both. Changes nothing
        and takes no lock. ``duration_ms`` is shown as 0: it is measured when the
        migration runs.
        """
        migrations = self.migrations()
        with self.engine.connect() as conn:
            states = statuses(migrations, self.tracker.read(conn) or [])
        check_blockers(states, allow_drift=self.allow_drift)
        if direction == "up":
            chosen = plan_up(
                states,
                target=target,
                steps=None if isinstance(steps, EllipsisType) else steps,
                allow_out_of_order=self.allow_out_of_order,
            )
        elif direction == "down":
            chosen = plan_down(
                states, steps=1 if isinstance(steps, EllipsisType) else steps, target=target
            )
        else:
            raise UsageError(f"direction must be 'up' or 'down', not {direction!r}")
        return [sql for m in chosen.migrations for sql in self._sql_for(m, chosen.direction)]

    def baseline(self, version: str) -> list[str]:
        """Record every migration up to ``version`` as applied without running it.

        For adopting a database whose schema already exists. Refuses when anything is
        recorded already. Returns the versions recorded.
        """

        def record(lock: HeldLock, work: Connection, migrations: list[Migration]) -> list[str]:
            rows = self.tracker.read(work)
            if rows:
                raise StateError(
                    f"cannot baseline: the tracking table {self.tracker.display_name} already "
                    "records migrations",
                    [f"{r.version} {r.filename}: {r.status}" for r in rows[:10]],
                    "baseline is for a database that sqlmig has never migrated.",
                )
            if not version.isdigit() or all(m.number != int(version) for m in migrations):
                raise UsageError(f"baseline version {version} is not a known migration file")
            chosen = [m for m in migrations if m.number <= int(version)]
            with work.begin():
                self.tracker.ensure_table(work)
                for m in chosen:
                    self.tracker.record_applied(_params(m, 0), work)
            log.info("baselined %d migrations up to %s", len(chosen), version)
            return [m.version for m in chosen]

        return self._locked(record)

    def repair(self, version: str, action: str) -> str:
        """Resolve a failed row (``applied``, ``rolled_back``, ``forget``) or, after an
        intentional edit, realign its checksum with the file (``checksum``).

        Returns a sentence saying what changed.
        """
        if action not in REPAIR_ACTIONS:
            raise UsageError(f"repair action must be one of {', '.join(REPAIR_ACTIONS)}")

        def fix(lock: HeldLock, work: Connection, migrations: list[Migration]) -> str:
            rows = {int(r.version): r for r in self.tracker.read(work) or [] if r.version.isdigit()}
            row = rows.get(int(version)) if version.isdigit() else None
            if row is None:
                raise UsageError(f"no tracking row for version {version}; see `sqlmig status`")
            file = next((m for m in migrations if m.number == int(version)), None)
            with work.begin():
                if action == "forget":
                    self.tracker.forget(row.version, work)
                    return f"forgot {row.version} {row.filename} (was {row.status})"
                if action == "checksum" or action == "applied":
                    if file is None and action == "checksum":
                        raise UsageError(f"the file of {row.version} is gone; nothing to align")
                    if file is not None:
                        self.tracker.set_checksum(row.version, file.checksum, work)
                if action != "checksum":
                    self.tracker.set_status(row.version, action, work)
                    return f"marked {row.version} {row.filename} {action} (was {row.status})"
                return f"recorded checksum of {row.version} {row.filename} as {file.checksum}"  # type: ignore[union-attr]

        return self._locked(fix)

    # --- the run itself ---------------------------------------------------------------

    def _run(self, planner: Callable[[list[MigrationStatus]], Plan]) -> RunResult:
        def go(lock: HeldLock, work: Connection, migrations: list[Migration]) -> RunResult:
            return self._execute(lock, work, planner(self._states(work, migrations)))

        return self._locked(go)

    def _locked(self, body: Callable[[HeldLock, Connection, list[Migration]], T]) -> T:
        """Check the files, then run ``body`` holding the lock and one work connection."""
        migrations = self.migrations()
        with advisory_lock(
            self.engine, lock_id=self.lock_id, timeout=self.lock_timeout, on_wait=self.on_lock_wait
        ) as lock:
            if lock.waited:
                log.info("took the migration lock after waiting %.1fs", lock.waited)
            with self.engine.connect() as work, self._session_settings(work):
                return body(lock, work, migrations)

    def _states(self, work: Connection, migrations: list[Migration]) -> list[MigrationStatus]:
        """Read the tracking table once per run and check nothing blocks running."""
        rows = self.tracker.read(work)
        if rows is None:
            with work.begin():
                self.tracker.ensure_table(work)
            rows = []
        states = statuses(migrations, rows)
        check_blockers(states, allow_drift=self.allow_drift)
        return states

    @contextmanager
    def _session_settings(self, work: Connection) -> Iterator[None]:
        """Timeouts for the migrations' session, put back afterwards: the connection may
        be an application's, going back to its pool."""
        settings: dict[str, str] = {}
        if self.migration_lock_timeout is not None:
            settings["lock_timeout"] = f"{int(self.migration_lock_timeout * 1000)}ms"
        if self.statement_timeout is not None:
            settings["statement_timeout"] = f"{int(self.statement_timeout * 1000)}ms"
        version = work.dialect.server_version_info or (0,)
        if version >= (14,):
            # The backend checks its client while a statement runs, so a migration
            # stops soon after its runner dies instead of running to the end.
            settings["client_connection_check_interval"] = "2000ms"
        previous: Sequence[str] = ()
        if settings:
            with work.begin():
                # The values to put back: set_config() knows no DEFAULT, and the session
                # may carry the application's own settings.
                previous = work.execute(select(*(func.current_setting(k) for k in settings))).one()
                work.execute(select(*(func.set_config(k, v, False) for k, v in settings.items())))
        try:
            yield
        finally:
            if settings and not work.invalidated:
                try:
                    with work.begin():
                        work.execute(
                            select(
                                *(
                                    func.set_config(k, v, False)
                                    for k, v in zip(settings, previous, strict=True)
                                )
                            )
                        )
                except DBAPIError:
                    work.invalidate()

    def _execute(self, lock: HeldLock, work: Connection, plan: Plan) -> RunResult:
        done: list[MigrationResult] = []
        total = len(plan.migrations)
        for index, migration in enumerate(plan.migrations):
            try:
                lock.ensure_held()
                if self.progress:
                    self.progress("start", migration, index, total, plan.direction)
                done.append(self._apply(work, migration, plan.direction, done))
                if self.progress:
                    self.progress("done", migration, index, total, plan.direction)
            except SqlmigError as exc:
                exc.completed = tuple(done)
                raise
        if not total:
            log.info("nothing to %s", "apply" if plan.direction == "up" else "roll back")
        return RunResult(plan.direction, tuple(done), lock.waited)

    def _apply(
        self, work: Connection, m: Migration, direction: str, done: Sequence[MigrationResult]
    ) -> MigrationResult:
        script = m.up if direction == "up" else m.down
        assert script is not None  # the planner only plans down for migrations with one
        log.info(
            "%s %s %s ...", "applying" if direction == "up" else "rolling back", m.version, m.name
        )
        start = time.perf_counter()
        if script.transactional:
            self._apply_in_transaction(work, m, script, direction, start, done)
        else:
            self._apply_outside_transaction(work, m, script, direction, start, done)
        ms = _elapsed_ms(start)
        log.info(
            "%s %s %s in %d ms",
            "applied" if direction == "up" else "rolled back",
            m.version,
            m.name,
            ms,
        )
        return MigrationResult(m.version, m.name, m.filename, direction, ms, script.transactional)

    def _apply_in_transaction(
        self,
        work: Connection,
        m: Migration,
        script: Script,
        direction: str,
        start: float,
        done: Sequence[MigrationResult],
    ) -> None:
        """The script and its record commit or roll back together."""
        failure: psycopg.Error | None = None
        try:
            with work.begin():
                try:
                    run_script(work, script.sql)
                except psycopg.Error as exc:
                    failure = exc
                    raise
                self._record_done(work, m, direction, _elapsed_ms(start))
        except psycopg.Error:
            pass
        except DBAPIError as exc:
            raise self._lost(m, direction, exc, done) from None
        if failure is None:
            return
        recorded = direction == "up" and self._record_failure(work, m, _elapsed_ms(start))
        state = (
            f"Its transaction was rolled back: nothing of {m.version} remains"
            + (", and it is recorded as 'failed'. " if recorded else ". ")
            + _earlier(done)
            + (
                f"{m.version} is still applied. Fix its down script and run again."
                if direction == "down"
                else "Fix the script and run `sqlmig up` again; it will be retried."
                if not may_be_partial(m)
                else f"Fix the script, then `sqlmig repair {m.version} --rolled-back` and "
                "`sqlmig up`: its down script runs outside a transaction, so `sqlmig up` "
                "cannot tell this failure from a down that stopped part-way."
            )
        )
        raise sql_error(failure, script, version=m.version, direction=direction, state=state)

    def _apply_outside_transaction(
        self,
        work: Connection,
        m: Migration,
        script: Script,
        direction: str,
        start: float,
        done: Sequence[MigrationResult],
    ) -> None:
        """Statement by statement in autocommit. Marked 'failed' first, so that a crash
        half-way leaves a row saying its changes may be partial."""
        try:
            with work.begin():
                if direction == "up":
                    self.tracker.record_failed(_params(m, 0), work)
                else:
                    self.tracker.set_status(m.version, "failed", work)
            work.execution_options(isolation_level="AUTOCOMMIT")
            try:
                run_statements(work, script)
            finally:
                if not work.invalidated:
                    work.execution_options(isolation_level=work.default_isolation_level)
            with work.begin():
                self._record_done(work, m, direction, _elapsed_ms(start))
        except StatementFailure as exc:
            ran = exc.statements[: exc.index]
            applied = (
                "no statement before it was applied"
                if not ran
                else (
                    f"statement 1 of {len(exc.statements)} was"
                    if len(ran) == 1
                    else f"statements 1-{len(ran)} of {len(exc.statements)} were"
                )
                + f" applied and committed (ending at line {_line_of(script, ran[-1].start)})"
            )
            state = (
                f"This migration runs outside a transaction: {applied}. It is recorded as "
                f"'failed' and `sqlmig up` will refuse to run until you resolve it: finish "
                f"or undo its changes by hand, then `sqlmig repair {m.version} --applied`, "
                f"`--rolled-back` or `--forget`. " + _earlier(done)
            ).rstrip()
            raise sql_error(
                exc.error,
                script,
                version=m.version,
                direction=direction,
                base_offset=exc.statements[exc.index].start,
                state=state,
            ) from None
        except DBAPIError as exc:
            raise self._lost(m, direction, exc, done) from None

    def _record_done(self, work: Connection, m: Migration, direction: str, ms: int) -> None:
        if direction == "up":
            self.tracker.record_applied(_params(m, ms), work)
        else:
            self.tracker.record_rolled_back(m.version, work)

    def _record_failure(self, work: Connection, m: Migration, ms: int) -> bool:
        """Record a failed transactional migration in its own transaction, if we still can."""
        try:
            with work.begin():
                self.tracker.record_failed(_params(m, ms), work)
            return True
        except DBAPIError:
            log.warning("could not record %s as failed: the connection is gone", m.version)
            return False

    def _lost(
        self, m: Migration, direction: str, exc: DBAPIError, done: Sequence[MigrationResult]
    ) -> MigrationError:
        """The work connection broke mid-migration: say what is known and what to check."""
        message = scrub(str(exc.orig or exc).strip(), self.engine.url.password)
        return MigrationError(
            version=m.version,
            path=str((m.up if direction == "up" else m.down or m.up).path),
            direction=direction,
            message=f"the database connection failed: {message.splitlines()[0]}",
            sqlstate=getattr(exc.orig, "sqlstate", None),
            state=(
                "If the failure came while committing, the migration may or may not have "
                "been recorded: run `sqlmig status` to see the truth, then run again. "
                + _earlier(done)
            ),
        )

    def _sql_for(self, m: Migration, direction: str) -> list[str]:
        """The statements a run would send for one migration, as text."""
        script = m.up if direction == "up" else m.down
        assert script is not None
        record: ClauseElement = (
            self.tracker.record_statement(_params(m, 0), "applied")
            if direction == "up"
            else self.tracker.rolled_back_statement(m.version)
        )
        done = _literal(record, self.engine.dialect)
        if script.transactional:
            return ["BEGIN", script.sql, done, "COMMIT"]
        table = self.tracker.table
        started: ClauseElement = (
            self.tracker.record_statement(_params(m, 0), "failed")
            if direction == "up"
            else update(table).where(table.c.version == m.version).values(status="failed")
        )
        statements = [s.sql for s in split_statements(script.sql)]
        return [_literal(started, self.engine.dialect), *statements, done]


def validate_files(directory: str | PathLike[str]) -> list[Migration]:
    """Load the migration files and check every script; needs no database."""
    migrations = load_migrations(directory)
    check_scripts(migrations)
    return migrations


def _params(m: Migration, duration_ms: int) -> RecordParams:
    return RecordParams(m.version, m.filename, m.checksum, duration_ms)


def _literal(statement: ClauseElement, dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _elapsed_ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _line_of(script: Script, offset: int) -> int:
    return script.first_line + script.sql.count("\n", 0, offset)


def _earlier(done: Sequence[MigrationResult]) -> str:
    if not done:
        return ""
    return f"Before it, this run applied {len(done)}: {', '.join(r.version for r in done)}. "

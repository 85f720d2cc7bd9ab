"""The Migrator: brings a database to the wanted version, exactly once, under the lock.

The one object an application needs. Given an Engine it uses it as it is (never
disposes it, never changes its pool, holds at most two connections: lock and work);
given a URL it makes its own small engine and disposes it when closed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from os import PathLike
from pathlib import Path
from types import EllipsisType, TracebackType
from typing import TypeVar

import psycopg
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from sqlmig.database import autocommit, new_engine, scrub, stalled_error
from sqlmig.errors import (
    ConnectionLostError,
    ConnectionStalledError,
    MigrationInterrupted,
    SqlmigError,
    StateError,
    UsageError,
    signal_name,
)
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
from sqlmig.runner import (
    ScriptFailure,
    StatementFailure,
    StatementInterrupted,
    run_script,
    run_statements,
    sql_error,
)
from sqlmig.source import Migration, Script, load_migrations
from sqlmig.sqlscript import count_statements, split_statements
from sqlmig.tracker import (
    DEFAULT_TABLE,
    AppliedMigration,
    RecordParams,
    Tracker,
    migrations_table,
)
from sqlmig.validation import validate_files as validate_files  # also public here
from sqlmig.watchdog import Watchdog

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


@dataclass
class _Step:
    """How far the migration in progress got, so that an interrupt can say what it left.

    ``phase``: ``starting`` (nothing sent yet), ``running`` (its transaction is open),
    ``committing`` (from the commit until the run has counted it done); outside a
    transaction ``marking`` (recording it 'failed' first), ``statements``,
    ``recording`` (every statement ran).
    """

    migration: Migration
    direction: str
    phase: str = "starting"
    result: MigrationResult | None = None  # set once it is done and counted


Progress = Callable[[str, Migration, int, int, str], None]
"""Called with ("start" | "done", migration, index, total, "up" | "down") around each
migration."""


class Migrator:
    """Applies, rolls back and inspects the migrations of one directory on one database."""

    # During a run with a statement timeout: bounds every round trip (see _run_watchdog).
    _watchdog: Watchdog | None = None

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
        migrations_table(table, schema)  # a bad name fails before any engine exists
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
        """Every migration known from the files or the table, with its state. Takes no lock.

        Reads the files (names, encoding, sections, checksums) but does not lex their
        SQL: a state needs none of it, and ``validate`` and every run still check it.
        """
        return self._status(load_migrations(self.directory))

    def _status(self, migrations: list[Migration]) -> list[MigrationStatus]:
        with self.engine.connect() as conn:
            rows = self.tracker.read(conn) or []
        return statuses(migrations, rows)

    def history(self) -> list[AppliedMigration]:
        """The tracking table's rows, newest first."""
        rows = self.tracker.get_all()
        return sorted(rows, key=lambda r: r.applied_at, reverse=True)

    def validate(self) -> list[MigrationStatus]:
        """Every file check and every drift and repair check, without changing anything."""
        states = self._status(self.migrations())
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
            again = self._execute(
                lock, work, Plan("up", undo.migrations[::-1]), before=down.migrations
            )
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
        states = self._status(self.migrations())
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
        """Check the files, then run ``body`` holding the lock and one work connection.

        An interrupt (Ctrl-C, SIGTERM) leaves as MigrationInterrupted, raised once the
        lock is released and the connections are back in the pool.
        """
        started = False
        finished: list[T] = []  # the body's result, once it has one
        try:
            migrations = self.migrations()
            with (
                self._run_watchdog() as watchdog,
                advisory_lock(
                    self.engine,
                    lock_id=self.lock_id,
                    timeout=self.lock_timeout,
                    on_wait=self.on_lock_wait,
                    watchdog=watchdog,
                ) as lock,
            ):
                if lock.waited:
                    log.info("took the migration lock after waiting %.1fs", lock.waited)
                with self.engine.connect() as work:
                    try:
                        with self._session_settings(work):
                            started = True
                            finished.append(body(lock, work, migrations))
                    except DBAPIError:
                        stalled = watchdog.stalled(work) if watchdog else None
                        if stalled is None:
                            raise
                    else:
                        return finished[0]
                    raise self._stalled_between(stalled)
        except MigrationInterrupted:
            raise
        except KeyboardInterrupt as exc:
            ran = finished[0].migrations if finished and isinstance(finished[0], RunResult) else ()
            raise _stopped(exc, started, ran) from None

    @contextmanager
    def _run_watchdog(self) -> Iterator[Watchdog | None]:
        """With a statement timeout, a run's round trips get deadlines (sqlmig.watchdog):
        a stalled network fails the run instead of hanging it. Without one, a long
        migration cannot be told from a stall; TCP keepalives are all there is."""
        if not self.statement_timeout:
            yield None
            return
        with Watchdog(self.statement_timeout) as watchdog:
            self._watchdog = watchdog
            try:
                yield watchdog
            finally:
                self._watchdog = None

    def _guard(
        self, conn: Connection, round_trips: int | Callable[[], int | None]
    ) -> AbstractContextManager[None]:
        """A deadline on ``conn`` for that many statements, when this run has a watchdog
        (None: no deadline). A callable is only counted then (splitting is not free)."""
        watchdog = self._watchdog
        if watchdog is None:
            return nullcontext()
        count = round_trips if isinstance(round_trips, int) else round_trips()
        return nullcontext() if count is None else watchdog.guard(conn, count)

    def _stalled_between(self, seconds: float) -> ConnectionStalledError:
        """The work connection stalled outside any migration (bookkeeping)."""
        return stalled_error(
            self.engine.url,
            f"no answer within {seconds:g}s while reading or recording the run's state",
            "No migration was in progress. Check the network to the server, run "
            "`sqlmig status`, then run again.",
        )

    def _states(self, work: Connection, migrations: list[Migration]) -> list[MigrationStatus]:
        """Read the tracking table once per run and check nothing blocks running."""
        with self._guard(work, 8):  # reading, and perhaps creating, the table
            rows = self.tracker.read(work)
            if rows is None:
                # Each statement its own transaction: CREATE ... IF NOT EXISTS needs no
                # other, and BEGIN and COMMIT would be two more round trips.
                with autocommit(work):
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
            settings["lock_timeout"] = _ms(self.migration_lock_timeout)
        if self.statement_timeout is not None:
            settings["statement_timeout"] = _ms(self.statement_timeout)
        version = work.dialect.server_version_info or (0,)
        if version >= (14,):
            # The backend checks its client while a statement runs, so a migration
            # stops soon after its runner dies instead of running to the end.
            settings["client_connection_check_interval"] = "2000ms"
        previous: Sequence[str] = ()
        if settings:
            # The values to put back: set_config() knows no DEFAULT, and the session
            # may carry the application's own settings. Read and set in one round trip:
            # the OFFSET keeps the subquery a plan node of its own, so it is read
            # before the outer list sets anything.
            old = select(
                *(func.current_setting(k).label(f"old_{i}") for i, k in enumerate(settings))
            )
            before = old.offset(0).subquery()
            read_and_set = select(
                *before.c, *(func.set_config(k, v, False) for k, v in settings.items())
            )
            with self._guard(work, 1), autocommit(work):
                previous = tuple(work.execute(read_and_set).one())[: len(settings)]
        try:
            yield
        finally:
            if settings and not _gone(work):
                try:
                    with self._guard(work, 1), autocommit(work):
                        work.execute(
                            select(
                                *(
                                    func.set_config(k, v, False)
                                    for k, v in zip(settings, previous, strict=True)
                                )
                            )
                        )
                except (DBAPIError, psycopg.Error):
                    work.invalidate()

    def _execute(
        self,
        lock: HeldLock,
        work: Connection,
        plan: Plan,
        before: Sequence[MigrationResult] = (),
    ) -> RunResult:
        """Run the plan. ``before``: what this run did already (redo's rollback), so that
        an error or an interrupt reports the whole run."""
        done: list[MigrationResult] = list(before)
        total = len(plan.migrations)
        step: _Step | None = None
        for index, migration in enumerate(plan.migrations):
            try:
                lock.ensure_held()
                if self.progress:
                    self.progress("start", migration, index, total, plan.direction)
                step = _Step(migration, plan.direction)
                with self._guard(work, partial(_round_trips, migration, plan.direction)):
                    done.append(self._apply(work, migration, plan.direction, done, step))
                step = None
                if self.progress:
                    self.progress("done", migration, index, total, plan.direction)
            except SqlmigError as exc:
                exc.completed = tuple(done)
                raise
            except KeyboardInterrupt as exc:
                raise _interrupted(exc, step, plan.direction, done) from None
        if not total:
            log.info("nothing to %s", "apply" if plan.direction == "up" else "roll back")
        return RunResult(plan.direction, tuple(done[len(before) :]), lock.waited)

    def _apply(
        self,
        work: Connection,
        m: Migration,
        direction: str,
        done: Sequence[MigrationResult],
        step: _Step,
    ) -> MigrationResult:
        script = m.up if direction == "up" else m.down
        assert script is not None  # the planner only plans down for migrations with one
        log.info(
            "%s %s %s ...", "applying" if direction == "up" else "rolling back", m.version, m.name
        )
        start = time.perf_counter()
        if script.transactional:
            self._apply_in_transaction(work, m, script, direction, start, done, step)
        else:
            self._apply_outside_transaction(work, m, script, direction, start, done, step)
        ms = _elapsed_ms(start)
        step.result = MigrationResult(
            m.version, m.name, m.filename, direction, ms, script.transactional
        )
        log.info(
            "%s %s %s in %d ms",
            "applied" if direction == "up" else "rolled back",
            m.version,
            m.name,
            ms,
        )
        return step.result

    def _apply_in_transaction(
        self,
        work: Connection,
        m: Migration,
        script: Script,
        direction: str,
        start: float,
        done: Sequence[MigrationResult],
        step: _Step,
    ) -> None:
        """The script and its record commit or roll back together."""
        failure: psycopg.Error | None = None
        sent_from = 0
        try:
            with work.begin():
                step.phase = "running"
                try:
                    run_script(work, script.sql)
                except ScriptFailure as exc:
                    failure, sent_from = exc.error, exc.offset
                    raise failure from None
                self._record_done(work, m, direction, _elapsed_ms(start))
                step.phase = "committing"
        except psycopg.Error as exc:
            if failure is None:  # not the script's: the driver's own (a closed connection)
                failure = exc
        except DBAPIError as exc:
            _reraise_interrupt(exc)
            raise self._lost(m, direction, failure or exc, done, step, work) from None
        if failure is None:
            return
        if _gone(work):
            raise self._lost(m, direction, failure, done, step, work) from None
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
        raise sql_error(
            failure,
            script,
            version=m.version,
            direction=direction,
            sent_from=sent_from,
            state=state,
        )

    def _apply_outside_transaction(
        self,
        work: Connection,
        m: Migration,
        script: Script,
        direction: str,
        start: float,
        done: Sequence[MigrationResult],
        step: _Step,
    ) -> None:
        """Statement by statement in autocommit. Marked 'failed' first, so that a crash
        half-way leaves a row saying its changes may be partial."""
        try:
            step.phase = "marking"
            with work.begin():
                if direction == "up":
                    self.tracker.record_failed(_params(m, 0), work)
                else:
                    self.tracker.set_status(m.version, "failed", work)
            step.phase = "statements"
            work.execution_options(isolation_level="AUTOCOMMIT")
            try:
                run_statements(work, script)
            finally:
                if not _gone(work):
                    work.execution_options(isolation_level=work.default_isolation_level)
            step.phase = "recording"
            with work.begin():
                self._record_done(work, m, direction, _elapsed_ms(start))
        except StatementFailure as exc:
            if _gone(work):
                raise self._lost(m, direction, exc.error, done, step, work, exc) from None
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
            _reraise_interrupt(exc)
            raise self._lost(m, direction, exc, done, step, work) from None

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
        self,
        m: Migration,
        direction: str,
        exc: BaseException,
        done: Sequence[MigrationResult],
        step: _Step,
        work: Connection,
        cut: StatementFailure | None = None,
    ) -> ConnectionLostError:
        """The work connection died or stalled mid-migration: say why, and exactly what
        state that left, from how far the migration got (``cut``: the statement of a
        no-transaction script that was running)."""
        script = m.up if direction == "up" else m.down
        assert script is not None
        if not work.invalidated:
            work.invalidate()  # broken: it must not go back to the pool
        stalled = self._watchdog.stalled(work) if self._watchdog else None
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        sqlstate = None if stalled else getattr(orig, "sqlstate", None)
        if stalled is not None:
            message = (
                f"the connection stalled: no answer from the server within {stalled:g}s "
                f"(the statement timeout of {self.statement_timeout:g}s for each statement, "
                "plus a grace period), so sqlmig closed it"
            )
        else:
            reason = scrub(str(orig or exc).strip(), self.engine.url.password)
            message = "the connection to the server was lost: " + (
                reason.splitlines()[0] if reason else type(exc).__name__
            )
        return ConnectionLostError(
            stalled=stalled is not None,
            version=m.version,
            path=str(script.path),
            direction=direction,
            message=message,
            sqlstate=sqlstate,
            state=(
                _state_after_loss(m, script, direction, step.phase, stalled, cut) + _earlier(done)
            ).rstrip(),
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


def _params(m: Migration, duration_ms: int) -> RecordParams:
    return RecordParams(m.version, m.filename, m.checksum, duration_ms)


def _literal(statement: ClauseElement, dialect: Dialect) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _ms(seconds: float) -> str:
    """A timeout for PostgreSQL. Rounded up, so that 0.0004s does not become 0 (no
    limit at all); 0 stays 0, PostgreSQL's "no limit"."""
    return f"{min(math.ceil(seconds * 1000), 2**31 - 1)}ms"


def _round_trips(m: Migration, direction: str) -> int | None:
    """How many statements one migration sends at most, bookkeeping included: each may
    take up to the statement timeout. None when the script sets its own statement
    timeout (``SET statement_timeout = 0`` before a long index build, say): how long
    its statements may take is then its own business, and no deadline is set."""
    script = m.up if direction == "up" else m.down
    assert script is not None
    if "statement_timeout" in script.sql.lower():
        return None
    statements = count_statements(script.sql)
    # BEGIN, the record, COMMIT; outside a transaction also marking it 'failed' first.
    return statements + (3 if script.transactional else 6)


def _gone(conn: Connection) -> bool:
    """Whether the connection is closed or broken (terminated, lost, shut by the watchdog)."""
    if conn.invalidated:
        return True
    try:
        return bool(conn.connection.driver_connection.closed)  # type: ignore[union-attr]
    except Exception:
        return True


def _state_after_loss(
    m: Migration,
    script: Script,
    direction: str,
    phase: str,
    stalled: float | None,
    cut: StatementFailure | None,
) -> str:
    """What a lost connection left of migration ``m``, and what to do next."""
    v, up = m.version, direction == "up"
    again = (
        "Run `sqlmig up` again once the server answers."
        if up
        else "Run `sqlmig status`, then run again once the server answers."
    )
    server = (
        " Until the server notices the connection is gone, its session keeps its locks, "
        "so a new run may wait for the migration lock."
        if stalled
        else ""
    )
    if script.transactional and phase in ("starting", "running"):
        kept = f"nothing of {v} was applied or recorded" if up else f"{v} is still applied"
        return f"Its transaction ended with the connection: {kept}.{server} {again} "
    if script.transactional:
        return (
            f"The connection was lost while committing, so {v} is either "
            f"{'applied' if up else 'rolled back'} and recorded, or not at all.{server} Run "
            "`sqlmig status` to see which, then run again. "
        )
    flag = "--applied" if up else "--rolled-back"
    if phase in ("starting", "marking"):
        return (
            f"It runs outside a transaction and none of its statements ran, but its tracking "
            f"row may say 'failed'.{server} Run `sqlmig status`: if {v} shows 'failed', "
            f"`sqlmig repair {v} {'--rolled-back' if up else '--applied'}`, then run again. "
        )
    if phase == "recording":
        return (
            f"It runs outside a transaction and every one of its statements ran, but its "
            f"tracking row may still say 'failed'.{server} Run `sqlmig status`: if {v} shows "
            f"'failed', `sqlmig repair {v} {flag}`, then run again. "
        )
    if cut is not None:
        running = cut.statements[cut.index]
        part = (
            f"{_committed(cut.index, len(cut.statements))}, and statement {cut.index + 1} "
            f"(line {_line_of(script, running.start)}) was running: it may or may not have "
            "taken effect"
        )
    else:
        part = "some of its statements may have been applied"
    return (
        f"It runs outside a transaction: {part}. It is recorded as 'failed' and `sqlmig up` "
        f"will refuse to run until you resolve it: check what took effect, finish or undo "
        f"it by hand, then `sqlmig repair {v} --applied` or `--rolled-back`.{server} "
    )


def _elapsed_ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _line_of(script: Script, offset: int) -> int:
    return script.first_line + script.sql.count("\n", 0, offset)


def _earlier(done: Sequence[MigrationResult], lead: str = "Before it") -> str:
    """What the run did already: 'Before it, this run applied 2: 0001, 0002. '"""
    parts = []
    for direction, verb in (("down", "rolled back"), ("up", "applied")):
        versions = [r.version for r in done if r.direction == direction]
        if versions:
            parts.append(f"{verb} {len(versions)}: {', '.join(versions)}")
    return f"{lead}, this run {' and '.join(parts)}. " if parts else ""


# --- interrupts -----------------------------------------------------------------------


def _reraise_interrupt(exc: BaseException) -> None:
    """A driver error raised while unwinding from an interrupt (a second Ctrl-C broke
    the connection during the rollback) is reported as the interrupt it follows."""
    cause = exc.__context__
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            raise cause
        cause = cause.__context__


def _stopped(
    exc: KeyboardInterrupt, started: bool, ran: tuple[MigrationResult, ...] = ()
) -> MigrationInterrupted:
    """An interrupt outside any migration: while checking, locking or bookkeeping.
    ``ran``: what the run had completed, when the interrupt came after it."""
    if ran:
        what = (
            f"after the run completed {len(ran)} migration(s), while it was releasing "
            "the lock; they are committed. Run `sqlmig status` to see the state."
        )
    elif started:
        what = (
            "while no migration was in progress (reading or recording the run's "
            "state, or releasing the lock). Run `sqlmig status` to see the state."
        )
    else:
        what = (
            "before anything ran (while checking the files or waiting for the "
            "migration lock): nothing was changed."
        )
    return MigrationInterrupted.between(exc, what, ran)


def _interrupted(
    exc: KeyboardInterrupt, step: _Step | None, direction: str, done: Sequence[MigrationResult]
) -> MigrationInterrupted:
    """Say exactly what state an interrupt left, from how far the migration got."""
    signal = signal_name(exc)
    by = f"interrupted by {signal}" if signal else "interrupted"
    up = direction == "up"
    if step is not None and step.result is not None:  # it finished; the run was told
        if not done or done[-1] is not step.result:
            done = [*done, step.result]
        step = None
    if step is None or step.phase == "starting":
        then = "Run `sqlmig up` to continue." if up else "Run `sqlmig status` to see the state."
        return MigrationInterrupted(
            f"{by} between migrations: none was in progress. {_earlier(done, 'Before that')}"
            + then,
            version=None,
            direction=direction,
            outcome="between",
            transactional=None,
            signal=signal,
            completed=tuple(done),
        )
    m = step.migration
    script = m.up if up else m.down
    assert script is not None
    v = m.version
    earlier = _earlier(done)
    if script.transactional and step.phase == "running":
        outcome = "rolled_back"
        state = (
            f"its transaction was rolled back: nothing of {v} remains and `sqlmig up` will "
            f"run it again. {earlier}Run `sqlmig up` to continue."
            if up
            else f"its transaction was rolled back: {v} is still applied. {earlier}"
            "Run `sqlmig status` to see the state."
        )
    elif script.transactional:
        outcome = "uncertain"
        state = (
            f"the interrupt came while it committed, so {v} is either "
            f"{'applied' if up else 'rolled back'} completely or not at all. {earlier}"
            "Run `sqlmig status` to see which."
        )
    elif step.phase in ("marking", "recording"):
        outcome = "uncertain"
        ran = step.phase == "recording"
        flag = "--applied" if ran == up else "--rolled-back"
        state = (
            "it runs outside a transaction and "
            + ("every one of its statements ran" if ran else "none of its statements ran")
            + f", but its tracking row may say 'failed'. {earlier}Run `sqlmig status`: if "
            f"{v} shows 'failed', record the truth with `sqlmig repair {v} {flag}`."
        )
    else:
        outcome = "needs_repair"
        if isinstance(exc, StatementInterrupted):
            cut = exc.statements[exc.index]
            part = (
                f"{_committed(exc.index, len(exc.statements))}, and statement {exc.index + 1} "
                f"(line {_line_of(script, cut.start)}) was cancelled while it ran and may or "
                "may not have taken effect"
            )
        else:
            part = "some of its statements may have been applied"
        state = (
            f"it runs outside a transaction: {part}. {earlier}It is recorded as 'failed' and "
            "`sqlmig up` will refuse to run until you resolve it: finish or undo its changes "
            f"by hand, then `sqlmig repair {v} --applied` or `sqlmig repair {v} --rolled-back`."
        )
    what = f"{'applying' if up else 'rolling back'} {v} ({script.path})"
    return MigrationInterrupted(
        f"{by} while {what}: {state}".rstrip(),
        version=v,
        direction=direction,
        outcome=outcome,
        transactional=script.transactional,
        signal=signal,
        completed=tuple(done),
    )


def _committed(count: int, total: int) -> str:
    if count == 0:
        return "none of its statements had completed"
    if count == 1:
        return f"statement 1 of {total} was applied and committed"
    return f"statements 1-{count} of {total} were applied and committed"

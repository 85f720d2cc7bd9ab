"""One run: the lock, the work connection, the deadline guard and the apply body, for
the length of one ``up``, ``down``, ``redo``, ``baseline`` or ``repair`` call.

Everything a run holds lives here and dies with it, so a Migrator keeps no state
between calls and two threads can each run their own. The round trips are budgeted:
the lock's connection is taken first and also reads the tracking table; the work
connection is only opened when something is to run, and its session settings cost
one round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, func, literal_column, select, text
from sqlalchemy.exc import DBAPIError

from sqlmig.apply import Applier, Bookkeeping, MigrationResult, Step, script_of
from sqlmig.database import Target, announced_pid, behind_pooler, connect, scrub, stalled_error
from sqlmig.errors import (
    DatabaseUnavailableError,
    MigrationInterrupted,
    QueryError,
    SqlmigError,
    UsageError,
)
from sqlmig.events import LockWaiting, OnEvent
from sqlmig.locking import HeldLock, LockStrategy, enable_keepalives
from sqlmig.lockwait import BlockerWatch, LockRetry, ms
from sqlmig.outcome import Cause, Direction, Outcome, cause_of, sqlstate_of
from sqlmig.plan import MigrationStatus, Plan, check_blockers, statuses
from sqlmig.sink import (
    BEGIN,
    COMMIT,
    Command,
    Executor,
    Guard,
    Role,
    SendFailed,
    gone,
    no_guard,
)
from sqlmig.source import Migration
from sqlmig.tracker import AppliedMigration, Tracker, TrackerStatus
from sqlmig.watchdog import GRACE, Watchdog

log = logging.getLogger("sqlmig")

_BACKEND_START = (
    select(literal_column("backend_start"))
    .select_from(text("pg_stat_activity"))
    .where(literal_column("pid") == func.pg_backend_pid())
    .scalar_subquery()
)
_SESSION = "FROM pg_stat_activity WHERE pid = :pid AND backend_start = :started"
_END_SESSION = text(f"SELECT pg_terminate_backend(pid) {_SESSION}")
_SESSION_ALIVE = text(f"SELECT count(*) {_SESSION}")


@dataclass(frozen=True)
class Options:
    """How a Migrator runs: the lock, its timeouts, and what it lets through."""

    lock: LockStrategy
    lock_timeout: float = 60.0
    statement_timeout: float | None = None
    migration_lock_timeout: float | None = None
    ddl_lock_timeout: float | None = None
    lock_retries: int = 0
    allow_out_of_order: bool = False
    allow_drift: bool = False
    search_path: str | None = None  # a tenant's schema: the one its migrations name none of

    @property
    def lock_retry(self) -> LockRetry | None:
        """The guard on the migrations' table locks, when a DDL lock timeout is set."""
        if self.ddl_lock_timeout is None:
            return None
        return LockRetry(self.ddl_lock_timeout, self.lock_retries)


class Run:
    """Holds the lock and, once something is to run, one work connection.

    Use as a context manager: leaving it closes the work connection (its session
    settings put back when it belongs to an application's pool), then releases the
    lock, on every path.
    """

    def __init__(
        self,
        engine: Engine,
        tracker: Tracker,
        options: Options,
        on_event: OnEvent,
        *,
        owns_engine: bool,
    ) -> None:
        self.engine = engine
        self.tracker = tracker
        self.options = options
        self.on_event = on_event
        self.owns_engine = owns_engine
        self.watchdog: Watchdog | None = None
        self.lock: HeldLock | None = None
        self.finished: tuple[MigrationResult, ...] | None = None  # set when the body returned
        self._stack = ExitStack()
        self._work: Connection | None = None
        self._applier: Applier | None = None
        self._restore: dict[str, str] = {}
        self._backend: tuple[int, Any] | None = None  # the work session: pid, start

    # --- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Run:
        try:
            if self.options.statement_timeout:
                # A long migration cannot be told from a stall without a statement
                # timeout: only with one do round trips get deadlines (sqlmig.watchdog).
                self.watchdog = self._stack.enter_context(Watchdog(self.options.statement_timeout))
            self.lock = self._stack.enter_context(
                self.options.lock.hold(
                    self.engine,
                    timeout=self.options.lock_timeout,
                    on_wait=self._waiting,
                    watchdog=self.watchdog,
                )
            )
        except BaseException:
            self._stack.close()
            raise
        if self.lock.waited:
            log.info("took the migration lock after waiting %.1fs", self.lock.waited)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._close_work()
        finally:
            self._stack.close()

    def _waiting(self, holder: str | None) -> None:
        self.on_event(LockWaiting(holder, self.options.lock_timeout))

    @property
    def waited(self) -> float:
        return self.lock.waited if self.lock is not None else 0.0

    # --- state ------------------------------------------------------------------------

    def rows(self) -> list[AppliedMigration] | None:
        """The tracking table's rows, read on the lock's connection; None when it does
        not exist yet."""
        conn = self._lock_connection()
        with self.guard(conn):
            return self.tracker.read(conn)

    def states(self, migrations: list[Migration]) -> list[MigrationStatus]:
        """Every migration's state, the tracking table created when missing; refuses
        when a failure needs repair or applied files drifted."""
        rows = self.rows()
        if rows is None:
            self.create_table()
            rows = []
        states = statuses(migrations, rows)
        check_blockers(states, allow_drift=self.options.allow_drift)
        return states

    def create_table(self) -> None:
        """The tracking table (and its schema), in one round trip on the lock's connection.

        Called when reading found no table; under the lock, no other sqlmig can be
        creating it, so IF NOT EXISTS is all the race needs.
        """
        conn = self._lock_connection()
        # Parameters, if none: compiled SQL doubles any % in a name, which psycopg undoes.
        ddl = [Command(sql, {}, Role.RECORD) for sql in self.tracker.ddl(self.engine.dialect)]
        self.bookkeeping(Executor(conn), ddl, "create the tracking table")

    def _lock_connection(self) -> Connection:
        assert self.lock is not None, "the run has not taken the lock"
        return self.lock.connection

    # --- running ------------------------------------------------------------------------

    @property
    def applier(self) -> Applier:
        """The apply body on the work connection, opened (and set up) on first use."""
        if self._applier is None:
            work = self.work()
            watchdog = self.watchdog
            self._applier = Applier(
                Executor(work),
                Bookkeeping(self.tracker, self.engine.dialect),
                on_event=self.on_event,
                guard=self._group_guard(work),
                stalled=(lambda: watchdog.stalled(work)) if watchdog else (lambda: None),
                before_each=self.lock.ensure_held if self.lock else (lambda: None),
                settle_orphan=self._settle_orphan,
                statement_timeout=self.options.statement_timeout,
                password=self._password,
                retry=self.options.lock_retry,
                watch=self._blocker_watch(),
            )
        return self._applier

    def apply(self, plan: Plan, *, single_transaction: bool = False) -> tuple[MigrationResult, ...]:
        """Run the plan; nothing is opened for an empty one."""
        if not plan.migrations:
            log.info("nothing to %s", "apply" if plan.direction == "up" else "roll back")
            return ()
        if single_transaction:
            refuse_no_transaction(plan)
        return self.applier.run(plan, single_transaction=single_transaction)

    def work(self) -> Connection:
        """The connection migrations run on: autocommit (sqlmig sends BEGIN and COMMIT
        itself), with the run's session settings."""
        if self._work is None:
            conn = connect(self.engine)
            try:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                enable_keepalives(conn)
                conn.connection.driver_connection.add_notice_handler(self._notice)  # type: ignore[union-attr]
                self._restore = self._set_session(conn)
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            self._work = conn
        return self._work

    def record(self, commands: Sequence[Command], what: str) -> None:
        """sqlmig's own statements, in one transaction on the work connection."""
        executor = Executor(self.work())
        self.bookkeeping(executor, [BEGIN, *commands, COMMIT], what)

    def bookkeeping(self, executor: Executor, commands: Sequence[Command], what: str) -> None:
        """Send sqlmig's own statements; a failure is sqlmig's, said plainly."""
        try:
            executor.send(commands)
        except SendFailed as failed:
            executor.settle()
            error = self.query_failure(failed.error, what, gone=executor.gone)
        else:
            return
        raise error

    def query_failure(self, exc: BaseException, what: str, *, gone: bool) -> SqlmigError:
        """The error for a query of sqlmig's own that failed (not a migration's)."""
        stalled = None
        if self.watchdog is not None:
            for conn in (self._work, self.lock.connection if self.lock else None):
                stalled = stalled or (self.watchdog.stalled(conn) if conn else None)
        return query_failure(self.engine, exc, what, gone=gone, stalled=stalled)

    def interrupted(self, interrupt: KeyboardInterrupt) -> MigrationInterrupted:
        """What an interrupt anywhere in the run left, said once."""
        if self.finished is not None:
            return MigrationInterrupted.between(
                interrupt,
                f"after the run completed {len(self.finished)} migration(s), while it was "
                "releasing the lock; they are committed. Run `sqlmig status` to see the state.",
                self.finished,
            )
        if self._applier is not None and (self._applier.step or self._applier.done):
            return self._applier.interrupted(interrupt)
        if self.lock is None:
            return MigrationInterrupted.between(
                interrupt,
                "before anything ran (while checking the files or waiting for the migration "
                "lock): nothing was changed.",
            )
        return MigrationInterrupted.between(
            interrupt,
            "while no migration was in progress (reading or recording the run's state, or "
            "releasing the lock). Run `sqlmig status` to see the state.",
        )

    # --- the pieces ------------------------------------------------------------------

    def guard(self, conn: Connection, round_trips: int = 1) -> Any:
        """A deadline on ``conn`` for that many statements, when the run has a watchdog."""
        if self.watchdog is None:
            return no_guard(round_trips)
        return self.watchdog.guard(conn, round_trips)

    def _blocker_watch(self) -> BlockerWatch | None:
        """Whom the work session waits for, asked on the lock's connection: it is idle
        while migrations run, and a third connection per run would cost a pool slot."""
        retry = self.options.lock_retry
        if retry is None or self.lock is None or self._backend is None:
            return None
        interval = min(max(retry.timeout / 4, 0.05), 0.25)
        return BlockerWatch(self.lock.connection, self._backend[0], interval, self.guard)

    def _group_guard(self, conn: Connection) -> Callable[[Sequence[Migration], Direction], Guard]:
        watchdog = self.watchdog

        def guard(group: Sequence[Migration], direction: Direction) -> Guard:
            # A script that sets its own statement_timeout (to 0 before a long index
            # build, say) decides how long it may take: no deadline then.
            if watchdog is None or any(
                "statement_timeout" in script_of(m, direction).sql.lower() for m in group
            ):
                return no_guard
            return lambda statements: watchdog.guard(conn, statements)

        return guard

    @property
    def _password(self) -> str | None:
        password = self.engine.url.password
        return str(password) if password else None

    def _set_session(self, conn: Connection) -> dict[str, str]:
        """Timeouts for the migrations' session, in one round trip that also reads the
        values they replace (the connection may be an application's, going back to
        its pool)."""
        settings: dict[str, str] = {}
        # The DDL lock timeout wins: it is also set in each transaction (see apply), but
        # statements outside one run with the session's.
        lock_timeout = self.options.ddl_lock_timeout
        if lock_timeout is None:
            lock_timeout = self.options.migration_lock_timeout
        if lock_timeout is not None:
            settings["lock_timeout"] = ms(lock_timeout)
        if self.options.statement_timeout is not None:
            settings["statement_timeout"] = ms(self.options.statement_timeout)
        if self.options.search_path is not None:
            settings["search_path"] = quote_identifier(self.options.search_path)
        if (conn.dialect.server_version_info or (0,)) >= (14,):
            # The backend checks its client while a statement runs, so a migration
            # stops soon after its runner dies instead of running to the end.
            settings["client_connection_check_interval"] = "2000ms"
        # Read and set in one statement: the OFFSET keeps the subquery a plan node of
        # its own, so it is read before the outer list sets anything. The session's
        # pid and start name it later, should it outlive its connection. Through a
        # pooler (another session than the one announced) the settings are set for
        # that statement only: they could not follow our transactions, and must not
        # stay behind on a server connection that other clients get next.
        local = func.pg_backend_pid() != announced_pid(conn)
        old = select(
            func.pg_backend_pid(),
            _BACKEND_START,
            *(func.current_setting(k).label(f"old_{i}") for i, k in enumerate(settings)),
        )
        before = old.offset(0).subquery()
        read_and_set = select(
            *before.c, *(func.set_config(k, v, local) for k, v in settings.items())
        )
        with self.guard(conn):
            row = conn.execute(read_and_set).one()
        if behind_pooler(conn, row[0]):
            self._pooled(settings)
            return {}
        self._backend = (row[0], row[1])
        return dict(zip(settings, row[2 : 2 + len(settings)], strict=True))

    def _pooled(self, settings: dict[str, str]) -> None:
        """Behind a pooler no session is ours: none of the work connection's settings
        stay set, and a server session left running by a lost connection may be serving
        someone else now, so it is never ended (``_settle_orphan``)."""
        asked = [k for k in ("statement_timeout", "lock_timeout") if k in settings]
        if asked:
            log.warning(
                "the URL goes through a connection pooler: %s cannot be kept for the "
                "migrations' session and is not set; set it in the migrations (SET LOCAL) "
                "or for the role instead",
                " and ".join(asked),
            )

    def _settle_orphan(self, step: Step) -> Outcome | None:
        """How a transaction ended whose connection died after its COMMIT went out.

        The server may still be running it in the session the connection left behind.
        When the lock's connection still answers, that session (this run's own, which
        nobody waits for any more) is ended, and the tracking table then says which way
        the transaction went. None when that cannot be found out.
        """
        lock, backend = self.lock, self._backend
        stalled = self.watchdog is not None and self.watchdog.fired
        if lock is None or backend is None or stalled or gone(lock.connection):
            return None
        conn = lock.connection
        session = {"pid": backend[0], "started": backend[1]}
        try:
            with self.guard(conn, 3):
                conn.execute(_END_SESSION, session)
                deadline = time.monotonic() + GRACE
                while conn.execute(_SESSION_ALIVE, session).scalar():
                    if time.monotonic() > deadline:
                        return None
                    time.sleep(0.05)
                recorded = {r.version: r.status for r in self.tracker.read(conn) or []}
        except DBAPIError:
            return None
        done = (
            TrackerStatus.APPLIED if step.direction is Direction.UP else TrackerStatus.ROLLED_BACK
        )
        committed = all(recorded.get(m.version) == done.value for m in step.migrations)
        log.info(
            "the session of the lost connection has ended: the migration %s",
            "committed" if committed else "rolled back",
        )
        return Outcome.APPLIED if committed else Outcome.ROLLED_BACK

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        """The server's WARNINGs and NOTICEs on the work connection, to the apply body."""
        if self._applier is not None:
            severity = diag.severity_nonlocalized or diag.severity or "NOTICE"
            message = diag.message_primary or ""
            self._applier.notice(severity, message, diag.message_detail, diag.message_hint)

    def _close_work(self) -> None:
        conn, self._work = self._work, None
        if conn is None:
            return
        with suppress(Exception):  # the application's connection must not keep our handler
            conn.connection.driver_connection.remove_notice_handler(self._notice)  # type: ignore[union-attr]
        try:
            # An engine sqlmig made dies with the Migrator; an application's keeps
            # its connections, which must go back as they came.
            if self._restore and not self.owns_engine and not gone(conn):
                restore = select(*(func.set_config(k, v, False) for k, v in self._restore.items()))
                with self.guard(conn):
                    conn.execute(restore)
        except (DBAPIError, psycopg.Error):
            conn.invalidate()
        finally:
            if gone(conn) and not conn.invalidated:
                conn.invalidate()  # broken: it must not go back to the pool
            conn.close()


def refuse_no_transaction(plan: Plan) -> None:
    """One transaction for the whole plan cannot hold a migration that must run
    outside one."""
    direction = Direction(plan.direction)
    outside = [m for m in plan.migrations if not script_of(m, direction).transactional]
    if outside:
        raise UsageError(
            "single_transaction=True runs every pending migration in one transaction, but "
            + ", ".join(f"{m.version} ({script_of(m, direction).path})" for m in outside)
            + " must run outside a transaction (-- sqlmig:no-transaction); nothing was run. "
            "Run without single_transaction=True, or apply up to the migration before it "
            "first (target=VERSION).",
            options=("single_transaction", "target"),
        )


def query_failure(
    engine: Engine, exc: BaseException, what: str, *, gone: bool, stalled: float | None = None
) -> SqlmigError:
    """The error for a query of sqlmig's own that failed (reading or recording state)."""
    if stalled is not None:
        return stalled_error(
            engine.url,
            f"no answer within {stalled:g}s while reading or recording the run's state",
            "No migration was in progress. Check the network to the server, run "
            "`sqlmig status`, then run again.",
        )
    orig: Any = getattr(exc, "orig", None) or exc
    password = engine.url.password
    lines = str(orig).strip().splitlines()
    text = scrub(lines[0] if lines else type(orig).__name__, str(password) if password else None)
    if cause_of(orig, gone=gone) is Cause.LOST:
        target = Target.of(engine.url)
        return DatabaseUnavailableError(
            "the connection to the server was lost",
            host=target.host,
            port=target.port,
            database=target.database,
            detail=text,
            advice="No migration was in progress. Run `sqlmig status` once the server "
            "answers, then run again.",
        )
    return QueryError(
        f"could not {what}: {text} [SQLSTATE {sqlstate_of(orig)}]. No migration was in "
        "progress; check the role's privileges on the tracking table and its schema.",
        sqlstate_of(orig),
    )


def quote_identifier(name: str) -> str:
    """``name`` as PostgreSQL reads one identifier in a setting: quoted, as given."""
    return '"' + name.replace('"', '""') + '"'

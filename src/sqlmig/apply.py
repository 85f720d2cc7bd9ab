"""The one apply body: how migrations become commands, and what a failure left.

Transactional or not, executed or collected for a dry run, every migration goes
through :class:`Applier`. What differs is how its statements are grouped into
transactions, and the sink that receives them (``sqlmig.sink``):

- a transactional migration is one group: BEGIN, its statements, its tracking row,
  COMMIT, pipelined into one round trip; with ``single_transaction`` every
  migration of the plan joins one such group;
- a no-transaction migration is marked 'failed' first, then runs one statement per
  round trip in autocommit, then is recorded; a stop half-way leaves a row that
  says its changes may be partial.

With a guarded lock timeout (``sqlmig.lockwait``), a group whose statement timed out
waiting for a table lock is rolled back and sent again after a delay; outside a
transaction, the statement that timed out is.

When a group fails, the sink says how far it got; from that, and from the kind of
failure (``sqlmig.outcome.cause_of``), the Applier tells exactly what the stop left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import partial
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from sqlmig.database import scrub
from sqlmig.errors import (
    ConcurrentRunError,
    ConnectionLostError,
    MigrationError,
    MigrationInterrupted,
    SqlmigError,
    signal_name,
)
from sqlmig.events import (
    LockRetrying,
    MigrationDone,
    MigrationStarted,
    OnEvent,
    ServerNotice,
    ignore,
)
from sqlmig.lockwait import LOCK_NOT_AVAILABLE, Blocker, BlockerWatch, LockRetry
from sqlmig.lockwait import describe as describe_blockers
from sqlmig.outcome import Cause, Direction, Outcome, Progress, Stop, account, cause_of
from sqlmig.plan import Plan, may_be_partial
from sqlmig.sink import (
    BEGIN,
    COMMIT,
    Command,
    Guard,
    Reached,
    Role,
    SendFailed,
    SendInterrupted,
    Sink,
    no_guard,
)
from sqlmig.source import Migration, Script
from sqlmig.sqlscript import (
    Statement,
    excerpt,
    iter_statements,
    line_col,
    server_position_to_offset,
    split_statements,
    transaction_control,
)
from sqlmig.tracker import RecordParams, Tracker, TrackerStatus, record_values
from sqlmig.validation import ENDS, OPENS

log = logging.getLogger("sqlmig")


@dataclass(frozen=True)
class MigrationResult:
    """One migration that ran."""

    version: str
    name: str
    filename: str
    direction: Direction
    duration_ms: int
    transactional: bool
    notices: tuple[ServerNotice, ...] = ()  # what the server said while it ran


@dataclass(frozen=True)
class RunResult:
    """What a command ran, in order, and how long it waited for the lock."""

    direction: str  # "up", "down" or "redo"
    migrations: tuple[MigrationResult, ...]
    lock_wait_s: float = 0.0
    before: str | None = None  # the newest applied version when the run began


class Phase(str, Enum):
    STARTING = "starting"  # nothing of it sent yet
    SENT = "sent"  # a transaction: its commands, COMMIT included, are going out
    MARKING = "marking"  # no transaction: recording it 'failed' before it starts
    STATEMENTS = "statements"  # no transaction: its statements run one by one
    RECORDING = "recording"  # no transaction: every statement ran; recording that
    DONE = "done"  # committed and recorded


@dataclass
class Step:
    """The migration in progress (all of them, for one --single-transaction group)."""

    migrations: tuple[Migration, ...]
    direction: Direction
    transactional: bool
    phase: Phase = Phase.STARTING
    commit_index: int | None = None  # its COMMIT's place among the group's commands
    statements: tuple[Statement, ...] = ()  # no transaction: the script, split
    committed: int = 0  # no transaction: statements that ran
    segment: tuple[int, int] | None = None  # no transaction: its BEGIN…COMMIT in flight
    notices: list[ServerNotice] = field(default_factory=list)
    lock_tries: int = 0  # tries of the group in flight that timed out waiting for a lock
    blockers: tuple[Blocker, ...] = ()  # whom the last of them waited for

    @property
    def migration(self) -> Migration:
        return self.migrations[0]

    def script(self, m: Migration | None = None) -> Script:
        return script_of(m or self.migration, self.direction)


def script_of(m: Migration, direction: Direction) -> Script:
    script = m.up if direction is Direction.UP else m.down
    assert script is not None  # the planner only plans down for migrations with one
    return script


class Bookkeeping:
    """The tracking-table statements of a run as commands, each compiled once.

    ``shown``: also render each with its values inline, for a dry run to print.
    """

    def __init__(self, tracker: Tracker, dialect: Dialect, *, shown: bool = False) -> None:
        self._shown = shown

        def in_transaction(given: dict[str, Any] | None) -> ClauseElement:
            return Tracker.or_fail(tracker.upsert(duration_by_server=True, given=given))

        def after_statements(given: dict[str, Any] | None) -> ClauseElement:
            return Tracker.or_fail(tracker.upsert(given=given))

        def failed(given: dict[str, Any] | None) -> ClauseElement:
            return tracker.upsert(given=given)

        def status(given: dict[str, Any] | None) -> ClauseElement:
            return tracker.status_update(now=True, given=given)

        self._in_transaction = _Compiled(in_transaction, dialect)
        self._after_statements = _Compiled(after_statements, dialect)
        self._failed = _Compiled(failed, dialect)
        self._status = _Compiled(status, dialect)

    def done(self, m: Migration, direction: Direction, duration_ms: int | None = None) -> Command:
        """The record that makes ``m`` done; inside its transaction (duration None: the
        server measures it), or after its last statement."""
        if direction is Direction.DOWN:
            return self._status_of(m, TrackerStatus.ROLLED_BACK)
        params = RecordParams(m.version, m.filename, m.checksum, duration_ms)
        compiled = self._in_transaction if duration_ms is None else self._after_statements
        return self._command(compiled, record_values(params, TrackerStatus.APPLIED), m)

    def failed(self, m: Migration, direction: Direction, duration_ms: int = 0) -> Command:
        """The record that says ``m`` failed or may be half-done; never overwrites
        an 'applied' row when going up."""
        if direction is Direction.DOWN:
            return self._status_of(m, TrackerStatus.FAILED)
        params = RecordParams(m.version, m.filename, m.checksum, duration_ms)
        return self._command(self._failed, record_values(params, TrackerStatus.FAILED), m)

    def _status_of(self, m: Migration, status: TrackerStatus) -> Command:
        values = {"record_version": m.version, "record_status": status.value}
        return self._command(self._status, values, m)

    def _command(self, compiled: _Compiled, values: dict[str, Any], m: Migration) -> Command:
        shown = compiled.literal(values) if self._shown else None
        return Command(compiled.sql, compiled.params(values), Role.RECORD, m, shown=shown)


class _Compiled:
    """A Core statement compiled once; each use only binds its values.

    ``build(None)`` is the statement with its values as parameters; ``build(values)``
    carries them, for a dry run to show them inline.
    """

    def __init__(
        self, build: Callable[[dict[str, Any] | None], ClauseElement], dialect: Dialect
    ) -> None:
        self.build = build
        self.dialect = dialect
        self.compiled = build(None).compile(dialect=dialect)
        self.sql = self.compiled.string

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        return dict(self.compiled.construct_params(values) or {})

    def literal(self, values: dict[str, Any]) -> str:
        statement = self.build(values)
        return str(statement.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))


def _no_stall() -> float | None:
    return None


@dataclass
class Applier:
    """Runs plans through a sink, keeping what the run did and the migration in progress.

    One per run; its state is the run's own, so runs in different threads share
    nothing. ``guard`` gives the deadline for a group of migrations (the watchdog);
    ``stalled`` says whether the watchdog closed the connection, and after how long;
    ``before_each`` runs before each migration (the lock check); ``settle_orphan``
    finds out how a transaction ended whose connection died before the answer came
    (None: it cannot tell); ``password`` is scrubbed from any driver text shown.
    ``retry`` guards table locks (a lock timeout for each migration, and retries);
    ``watch`` sees whom a waiting statement waits for.
    """

    sink: Sink
    book: Bookkeeping
    on_event: OnEvent = ignore
    guard: Callable[[Sequence[Migration], Direction], Guard] = lambda group, d: no_guard
    stalled: Callable[[], float | None] = _no_stall
    before_each: Callable[[], None] = lambda: None
    settle_orphan: Callable[[Step], Outcome | None] = lambda step: None
    statement_timeout: float | None = None
    password: str | None = None
    retry: LockRetry | None = None
    watch: BlockerWatch | None = None
    done: list[MigrationResult] = field(default_factory=list)
    step: Step | None = None

    def run(self, plan: Plan, *, single_transaction: bool = False) -> tuple[MigrationResult, ...]:
        """Apply or roll back the plan's migrations in order; what this call completed."""
        direction = Direction(plan.direction)
        first = len(self.done)
        total = len(plan.migrations)
        try:
            if single_transaction and total:
                self._together(plan.migrations, direction)
            for index, m in enumerate(() if single_transaction else plan.migrations):
                self.before_each()
                self.on_event(MigrationStarted(m, index, total, direction))
                result = self._apply(m, direction)
                self.on_event(MigrationDone(m, index, total, direction, result.duration_ms))
        except SqlmigError as exc:
            exc.completed = tuple(self.done)  # what the whole run did, for its report
            raise
        if not total:
            log.info("nothing to %s", "apply" if direction is Direction.UP else "roll back")
        return tuple(self.done[first:])

    # --- one migration --------------------------------------------------------------

    def _apply(self, m: Migration, direction: Direction) -> MigrationResult:
        script = script_of(m, direction)
        log.info("%s %s %s ...", direction.doing, m.version, m.name)
        if script.empty:
            log.info("%s %s has no SQL, only comments: it runs nothing", m.version, m.name)
        self.step = Step((m,), direction, script.transactional)
        start = time.perf_counter()
        try:
            if script.transactional:
                self._transaction((m,), direction)
            else:
                self._statements(m, script, direction, start)
        except SendFailed as failed:
            raise self._failure(failed) from None
        result = MigrationResult(
            m.version,
            m.name,
            m.filename,
            direction,
            _ms_since(start),
            script.transactional,
            tuple(self.step.notices),
        )
        self.done.append(result)
        self.step = None
        log.info("%s %s %s in %d ms", direction.done, m.version, m.name, result.duration_ms)
        return result

    def _together(self, group: tuple[Migration, ...], direction: Direction) -> None:
        """Every migration of the plan in one transaction, all or nothing."""
        self.before_each()
        total = len(group)
        for index, m in enumerate(group):
            self.on_event(MigrationStarted(m, index, total, direction))
        log.info("%s %d migrations in one transaction ...", direction.doing, total)
        self.step = Step(group, direction, True)
        start = time.perf_counter()
        try:
            self._transaction(group, direction)
        except SendFailed as failed:
            raise self._failure(failed) from None
        ms = _ms_since(start)
        for index, m in enumerate(group):
            result = MigrationResult(m.version, m.name, m.filename, direction, ms, True)
            self.done.append(result)
            self.on_event(MigrationDone(m, index, total, direction, ms))
        self.step = None

    def _transaction(self, group: Sequence[Migration], direction: Direction) -> None:
        step = self.step
        assert step is not None

        def send() -> None:
            step.phase = Phase.SENT
            with self._watching():
                self.sink.send(self._commands(group, direction, step), self.guard(group, direction))

        self._guarded(send, step)
        step.phase = Phase.DONE

    def _commands(
        self, group: Sequence[Migration], direction: Direction, step: Step
    ) -> Iterator[Command]:
        yield BEGIN
        count = 1
        standard_strings = self.sink.standard_strings
        for m in group:
            script = script_of(m, direction)
            if self.retry is not None and not self.retry.sets_its_own(script.sql):
                yield Command(self.retry.setting(), role=Role.SETTING, migration=m)
                count += 1
            # A script's own BEGIN and COMMIT give way to the group's: one transaction.
            wrapper = script.wrapper.offsets if script.wrapper else ()
            for statement in iter_statements(
                script.sql, standard_conforming_strings=standard_strings
            ):
                if statement.start not in wrapper:
                    yield Command(statement.sql, migration=m, statement=statement)
                    count += 1
            yield self.book.done(m, direction)
            count += 1
        step.commit_index = count
        yield COMMIT

    def _statements(self, m: Migration, script: Script, direction: Direction, start: float) -> None:
        """Outside a transaction: marked 'failed' first, so that a crash half-way leaves
        a row saying its changes may be partial; then each statement on its own."""
        step = self.step
        assert step is not None
        step.phase = Phase.MARKING
        self.sink.send([self.book.failed(m, direction)])
        standard_strings = self.sink.standard_strings
        step.statements = tuple(
            split_statements(script.sql, standard_conforming_strings=standard_strings)
        )
        step.phase = Phase.STATEMENTS
        guard = self.guard((m,), direction)
        with self._watching():
            for first, stop in transaction_segments(step.statements):
                step.segment = (first, stop) if stop - first > 1 else None
                statements = step.statements[first:stop]
                commands = [Command(s.sql, migration=m, statement=s) for s in statements]
                # A BEGIN … COMMIT of the script's own is a transaction: it is retried whole.
                self._guarded(partial(self.sink.send, commands, guard), step)
                step.committed = stop
        step.segment = None
        step.phase = Phase.RECORDING
        self.sink.send([self.book.done(m, direction, _ms_since(start))])
        step.phase = Phase.DONE

    # --- guarded locks ------------------------------------------------------------------

    def _watching(self) -> AbstractContextManager[None]:
        return self.watch.watching() if self.watch is not None else nullcontext()

    def _guarded(self, send: Callable[[], None], step: Step, *, retry: bool = True) -> None:
        """Send one group; with a guarded lock timeout, send it again after a delay each
        time a statement timed out waiting for a lock, up to the retries allowed."""
        policy = self.retry
        step.lock_tries, step.blockers = 0, ()  # the account is of this group's waits
        while True:
            if self.watch is not None:
                self.watch.seen = ()
            try:
                send()
                step.lock_tries, step.blockers = 0, ()
                return
            except SendFailed as failed:
                if policy is None or failed.error.sqlstate != LOCK_NOT_AVAILABLE:
                    raise
                step.lock_tries += 1
                step.blockers = self.watch.seen if self.watch is not None else ()
                if not retry or step.lock_tries > policy.retries:
                    raise
                if (step.transactional or step.segment) and not self.sink.settle():
                    raise  # the connection is gone: that is the failure to report
                self._wait_to_retry(failed, step, policy)

    def _wait_to_retry(self, failed: SendFailed, step: Step, policy: LockRetry) -> None:
        if step.transactional:
            step.phase = Phase.STARTING  # rolled back: nothing of it is left
        command = failed.command
        m = command.migration if command is not None and command.migration else step.migration
        at = command.statement if command is not None else None
        line = _line_of(step.script(m), at.start) if at is not None else None
        delay = policy.delay(step.lock_tries)
        log.info(
            "%s %s waited %gs for a table lock at line %s and gave up (try %d of %d), behind "
            "%s; trying again in %.1fs",
            m.version,
            m.name,
            policy.timeout,
            line,
            step.lock_tries,
            policy.retries + 1,
            describe_blockers(step.blockers),
            delay,
        )
        self.on_event(
            LockRetrying(
                m,
                step.direction,
                step.lock_tries,
                policy.retries + 1,
                policy.timeout,
                delay,
                line,
                step.blockers,
            )
        )
        time.sleep(delay)
        self.before_each()  # the lock is still ours

    # --- what a stop left ------------------------------------------------------------------

    def _failure(self, failed: SendFailed) -> SqlmigError:
        """The error for a failed send, after settling what can be settled."""
        step = self.step
        assert step is not None
        stalled = self.stalled()
        cause = Cause.STALLED if stalled else cause_of(failed.error, gone=self.sink.gone)
        m = failed.command.migration if failed.command and failed.command.migration else None
        m = m or step.migration
        if cause is Cause.SQL and (step.transactional or step.segment is not None):
            self.sink.settle()  # the aborted transaction rolls back
        stop = self._stop(step, cause, failed.reached, failed.command)
        if stop.outcome is Outcome.APPLIED:  # it committed before the connection went
            self._count_done(step)
        if stop.outcome is Outcome.ROLLED_BACK and cause is Cause.SQL:
            recorded = step.direction is Direction.UP and self._record_failure(m)
            stop = replace(stop, recorded_failed=recorded, may_be_partial=may_be_partial(m))
        elif (
            cause is Cause.SQL
            and failed.command is not None
            and failed.command.role is Role.RECORD
            and failed.error.sqlstate == "22012"
        ):
            return ConcurrentRunError(
                f"migration {m.version} ({m.filename}) is already recorded as applied by "
                "another run; this run's transaction was rolled back. Another sqlmig may be "
                "running without the lock; run `sqlmig status`."
            )
        if cause is Cause.SQL:
            return self._sql_error(failed, m, stop)
        return self._lost_error(failed, m, stop, stalled)

    def _stop(
        self, step: Step, cause: Cause, reached: Reached | None, command: Command | None
    ) -> Stop:
        """What the step left, from how far its commands got."""
        failing = command.migration if command is not None else None
        common: dict[str, Any] = {
            "cause": cause,
            "direction": step.direction,
            "version": (failing or step.migration).version,
            "transactional": step.transactional,
            "done": tuple(self.done),
            "lock_tries": step.lock_tries,
            "blockers": step.blockers,
            "lock_timeout": self.retry.timeout if self.retry is not None else None,
        }
        if step.phase is Phase.DONE:
            return Stop(Outcome.APPLIED, **common)
        if step.transactional:
            return Stop(self._transaction_outcome(step, cause, reached), **common)
        if step.phase is Phase.STATEMENTS:
            return Stop(Outcome.NEEDS_REPAIR, progress=self._progress(step, reached), **common)
        if step.phase is Phase.MARKING and cause is Cause.SQL:
            return Stop(Outcome.ROLLED_BACK, **common)  # the marking itself was refused
        ran = step.phase is Phase.RECORDING
        return Stop(Outcome.UNCERTAIN, statements_ran=ran, **common)

    def _transaction_outcome(self, step: Step, cause: Cause, reached: Reached | None) -> Outcome:
        commit = step.commit_index
        if step.phase is Phase.STARTING:
            return Outcome.ROLLED_BACK
        if reached is not None and commit is not None and reached.index > commit:
            return Outcome.APPLIED  # the COMMIT was answered: only an interrupt gets here
        if cause is Cause.SQL or (reached is not None and reached.answered):
            return Outcome.ROLLED_BACK  # the server stopped the transaction before COMMIT
        if reached is not None and (commit is None or not reached.sent(commit)):
            return Outcome.ROLLED_BACK  # the COMMIT never left: the session rolls back
        if cause is Cause.INTERRUPT and self.sink.settle():
            return Outcome.ROLLED_BACK  # psycopg cancelled it and the session answered
        # Sent whole, COMMIT included, and no answer: the server may still be running it.
        return self.settle_orphan(step) or Outcome.UNCERTAIN

    def _progress(self, step: Step, reached: Reached | None = None) -> Progress:
        script = step.script()
        done = step.committed
        last = _line_of(script, step.statements[done - 1].start) if done else None
        running_index = done + (reached.index if reached is not None else 0)
        if step.segment is not None and reached is not None:
            running_index = step.segment[0] + reached.index
        running = (
            _line_of(script, step.statements[running_index].start)
            if running_index < len(step.statements)
            else None
        )
        segment = None
        if step.segment is not None:
            first, stop = step.segment
            segment = (
                _line_of(script, step.statements[first].start),
                _line_of(script, step.statements[stop - 1].end),
            )
        return Progress(done, len(step.statements), last, running, segment, running_index + 1)

    def _record_failure(self, m: Migration) -> bool:
        """Record a failed transactional migration in its own transaction, if we still can."""
        try:
            self.sink.send([self.book.failed(m, Direction.UP)])
            return True
        except SendFailed:
            log.warning("could not record %s as failed", m.version)
            return False

    def _sql_error(self, failed: SendFailed, m: Migration, stop: Stop) -> MigrationError:
        script = script_of(m, stop.direction)
        diag = failed.error.diag
        command = failed.command
        message = diag.message_primary or str(failed.error).strip() or type(failed.error).__name__
        line = column = None
        snippet = None
        if command is not None and command.statement is not None:
            line, column, snippet = _locate(script, command.statement, diag.statement_position)
        elif command is not None and command.role is Role.RECORD:
            message = f"recording it in the tracking table failed: {message}"
        elif command is COMMIT:
            message = f"its COMMIT failed: {message}"
        return MigrationError(
            version=m.version,
            path=str(script.path),
            direction=stop.direction.value,
            message=message,
            sqlstate=diag.sqlstate,
            line=line,
            column=column,
            detail=diag.message_detail,
            hint=diag.message_hint or _hint(diag.sqlstate, script),
            excerpt=snippet,
            constraint=diag.constraint_name,
            state=account(stop),
            outcome=stop.outcome,
            blockers=stop.blockers,
        )

    def _lost_error(
        self, failed: SendFailed, m: Migration, stop: Stop, stalled: float | None
    ) -> ConnectionLostError:
        script = script_of(m, stop.direction)
        if stalled is not None:
            message = (
                f"the connection stalled: no answer from the server within {stalled:g}s "
                f"(the statement timeout of {self.statement_timeout or 0:g}s for each "
                "statement, plus a grace period), so sqlmig closed it"
            )
        else:
            reason = scrub(str(failed.error).strip(), self.password)
            message = "the connection to the server was lost: " + (
                reason.splitlines()[0] if reason else type(failed.error).__name__
            )
        return ConnectionLostError(
            stalled=stalled is not None,
            version=m.version,
            path=str(script.path),
            direction=stop.direction.value,
            message=message,
            sqlstate=None if stalled else failed.error.sqlstate,
            state=account(stop),
            outcome=stop.outcome,
        )

    def interrupted(self, interrupt: KeyboardInterrupt) -> MigrationInterrupted:
        """Say exactly what state an interrupt left, from how far the migration got."""
        signal = signal_name(interrupt)
        by = f"interrupted by {signal}" if signal else "interrupted"
        step = self.step
        done = tuple(self.done)
        if step is None or step.phase is Phase.STARTING:
            direction = step.direction if step else self._direction()
            stop = Stop(Outcome.BETWEEN, Cause.INTERRUPT, direction, done=done)
            return MigrationInterrupted(
                f"{by} between migrations. {account(stop)}",
                version=None,
                direction=direction.value,
                outcome=stop.outcome,
                transactional=None,
                signal=signal,
                completed=done,
            )
        reached = interrupt.reached if isinstance(interrupt, SendInterrupted) else None
        stop = self._stop(step, Cause.INTERRUPT, reached, None)
        if stop.outcome is Outcome.APPLIED:
            self._count_done(step)
        what = f"{step.direction.doing} {stop.version} ({step.script().path})"
        return MigrationInterrupted(
            f"{by} while {what}. {account(stop)}",
            version=stop.version,
            direction=step.direction.value,
            outcome=stop.outcome,
            transactional=step.transactional,
            signal=signal,
            completed=tuple(self.done),
        )

    def notice(self, severity: str, message: str, detail: str | None, hint: str | None) -> None:
        """A message from the server: told, logged, and kept with its migration."""
        step = self.step
        # Which migration of a --single-transaction group said it is not known.
        m = step.migration if step is not None and len(step.migrations) == 1 else None
        notice = ServerNotice(
            severity,
            message,
            detail,
            hint,
            m.version if m is not None else None,
            step.direction if step is not None else None,
        )
        if step is not None:
            step.notices.append(notice)
        level = logging.WARNING if severity in ("WARNING", "ERROR") else logging.INFO
        log.log(level, "%s%s", f"{notice.version}: " if notice.version else "", notice)
        self.on_event(notice)

    def _count_done(self, step: Step) -> None:
        """A migration that committed although the run stopped: it is done."""
        for m in step.migrations:
            if not any(r.version == m.version and r.direction == step.direction for r in self.done):
                self.done.append(
                    MigrationResult(m.version, m.name, m.filename, step.direction, 0, True)
                )

    def _direction(self) -> Direction:
        return self.done[-1].direction if self.done else Direction.UP


def transaction_segments(statements: Sequence[Statement]) -> Iterator[tuple[int, int]]:
    """``(first, stop)`` index ranges that cover the statements in order: each
    BEGIN … COMMIT of a no-transaction script is one range, sent together in one round
    trip; every other statement is a range of its own (validation has refused a BEGIN
    left open)."""
    first: int | None = None
    for index, statement in enumerate(statements):
        keyword = transaction_control(statement)
        if first is None and keyword in OPENS:
            first = index
        elif first is not None and keyword in ENDS:
            yield first, index + 1
            first = None
        elif first is None:
            yield index, index + 1
    if first is not None:
        yield first, len(statements)


def _ms_since(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _line_of(script: Script, offset: int) -> int:
    return script.first_line + line_col(script.sql, offset)[0] - 1


def _locate(script: Script, statement: Statement, position: str | None) -> tuple[int, int, str]:
    """File line, column and excerpt of a failed statement.

    With the server's position, the character it points at; without one, psql's
    line (the one where the statement ends), at the statement's first character
    when it starts on that line.
    """
    if position is not None and position.isdigit() and int(position) >= 1:
        offset = statement.start + server_position_to_offset(int(position))
        line, column = line_col(script.sql, min(offset, len(script.sql)))
    else:
        line, column = line_col(script.sql, max(statement.end - 1, statement.start))
        first, start_column = line_col(script.sql, statement.start)
        column = start_column if first == line else 1
    return (
        script.first_line + line - 1,
        column,
        excerpt(script.sql, line, column, first_line=script.first_line),
    )


def _hint(sqlstate: str | None, script: Script) -> str | None:
    if sqlstate == "25001" and script.transactional:  # active_sql_transaction
        return (
            "this statement cannot run inside a transaction: add `-- sqlmig:no-transaction` "
            "to the leading comments of the file"
        )
    return None

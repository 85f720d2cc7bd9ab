"""What a stopped run left behind, in one table, and the one place that words it.

Every way a run can stop part-way (a SQL error, a lost or stalled connection, Ctrl-C
or SIGTERM) leaves one of a few outcomes for the migration that was in progress.
The errors carry the outcome as data (``outcome``, JSON's ``outcome``) and their
message ends with :func:`account`, so an operator reads the same sentence for the
same state whatever stopped the run, and a script can act on the field.

Driver exceptions are sorted here too, once (:func:`cause_of`): everything above
works with the cause, never with psycopg's or SQLAlchemy's exception types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlmig.lockwait import Blocker
    from sqlmig.migrator import MigrationResult


class Direction(str, Enum):
    UP = "up"
    DOWN = "down"

    @property
    def doing(self) -> str:
        return "applying" if self is Direction.UP else "rolling back"

    @property
    def done(self) -> str:
        return "applied" if self is Direction.UP else "rolled back"


class Outcome(str, Enum):
    """The state a stop left the migration in progress in."""

    ROLLED_BACK = "rolled_back"  # its transaction rolled back: nothing of it remains
    APPLIED = "applied"  # it committed with its record before the run stopped
    NEEDS_REPAIR = "needs_repair"  # no transaction, stopped part-way, recorded 'failed'
    UNCERTAIN = "uncertain"  # no answer came back: `sqlmig status` tells which way it went
    BETWEEN = "between"  # no migration was in progress


class Cause(str, Enum):
    """Why a run stopped; decides the exit code (1, 4, 4, 130)."""

    SQL = "sql"  # the server refused a statement: the migration's own failure
    LOST = "lost"  # the connection died: terminated, restarted, network reset
    STALLED = "stalled"  # no answer within the deadline, so sqlmig closed the connection
    INTERRUPT = "interrupt"  # Ctrl-C or SIGTERM


# SQLSTATEs that mean the session is gone rather than that a statement failed: the
# connection exception class and the server shutting the session down.
_SESSION_ENDED = ("57P01", "57P02", "57P03")


def cause_of(exc: BaseException, *, gone: bool) -> Cause:
    """Sort a failure: ``gone`` says whether the connection it came from is closed.

    Anything the server said about a statement on a live session is that statement's
    failure, also at COMMIT (a deferred constraint, a serialization failure).
    """
    if isinstance(exc, KeyboardInterrupt):
        return Cause.INTERRUPT
    sqlstate = sqlstate_of(exc)
    if gone or sqlstate is None or sqlstate.startswith("08") or sqlstate in _SESSION_ENDED:
        return Cause.LOST
    return Cause.SQL


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, or of the one a SQLAlchemy error wraps."""
    orig: Any = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


@dataclass(frozen=True)
class Progress:
    """How far a no-transaction script got: ``committed`` of ``total`` statements ran,
    the last of them ending at ``last_line``; ``running_line`` is the statement that
    failed or was cut, when known."""

    committed: int
    total: int
    last_line: int | None = None
    running_line: int | None = None
    segment: tuple[int, int] | None = None  # lines of the BEGIN…COMMIT it stopped in
    running: int | None = None  # the number of the statement that failed or was cut

    def committed_phrase(self) -> str:
        if self.committed == 0:
            return "none of its statements had completed"
        if self.committed == 1:
            return f"statement 1 of {self.total} was applied and committed"
        return f"statements 1-{self.committed} of {self.total} were applied and committed"


@dataclass(frozen=True)
class Stop:
    """Everything :func:`account` needs to say what a stop left."""

    outcome: Outcome
    cause: Cause
    direction: Direction
    version: str | None = None
    transactional: bool | None = None
    recorded_failed: bool = False  # a SQL failure was recorded 'failed' in its own transaction
    may_be_partial: bool = False  # its down runs outside a transaction (see plan.may_be_partial)
    statements_ran: bool | None = None  # no transaction, UNCERTAIN: all ran (True) or none
    progress: Progress | None = None  # no transaction, NEEDS_REPAIR
    done: tuple[MigrationResult, ...] = ()  # what the run completed before
    lock_tries: int = 0  # tries that timed out waiting for a table lock (guarded locks)
    blockers: tuple[Blocker, ...] = ()  # whom the last of them waited for
    lock_timeout: float | None = None  # the guarded lock timeout, seconds


def account(stop: Stop) -> str:
    """What the stop left and what to do next, for the end of an error message."""
    up = stop.direction is Direction.UP
    v = stop.version
    before = _earlier(stop.done, "Before that" if stop.outcome is Outcome.BETWEEN else "Before it")
    stalled = (
        " Until the server notices the connection is gone, its session keeps its locks, "
        "so a new run may wait for the migration lock."
        if stop.cause is Cause.STALLED
        else ""
    )
    if stop.outcome is Outcome.BETWEEN:
        then = "Run `sqlmig up` to continue." if up else "Run `sqlmig status` to see the state."
        return f"{before}{then}"
    if stop.outcome is Outcome.APPLIED:
        return f"{v} was {stop.direction.done} and recorded before the run stopped. {before}" + (
            "Run `sqlmig up` to continue." if up else "Run `sqlmig status` to see the state."
        )
    if stop.outcome is Outcome.ROLLED_BACK:
        kept = f"nothing of {v} remains" if up else f"{v} is still applied"
        recorded = ", and it is recorded as 'failed'" if stop.recorded_failed else ""
        return (
            f"Its transaction was rolled back: {kept}{recorded}.{stalled}{_waited(stop)} "
            f"{before}{_after_rollback(stop)}"
        )
    if stop.outcome is Outcome.UNCERTAIN and stop.transactional:
        return (
            f"{v} was sent with its COMMIT and no answer came back, so it is either "
            f"{stop.direction.done} and recorded, or not at all.{stalled} {before}Run "
            "`sqlmig status` to see which once the server has ended that session, then "
            "run again."
        )
    if stop.outcome is Outcome.UNCERTAIN:
        flag = "--applied" if bool(stop.statements_ran) == up else "--rolled-back"
        ran = "every one" if stop.statements_ran else "none"
        return (
            f"It runs outside a transaction and {ran} of its statements ran, but its "
            f"tracking row may say 'failed'.{stalled} {before}Run `sqlmig status`: if {v} "
            f"shows 'failed', `sqlmig repair {v} {flag}`, then run again."
        )
    return (
        f"It runs outside a transaction: {_partial(stop)}.{_waited(stop)} It is recorded as "
        "'failed' and "
        "`sqlmig up` will refuse to run until you resolve it: check what took effect, finish "
        f"or undo its changes by hand, then `sqlmig repair {v} --applied`, `--rolled-back` "
        f"or `--forget`.{stalled} {before}"
    ).rstrip()


def _after_rollback(stop: Stop) -> str:
    v = stop.version
    up = stop.direction is Direction.UP
    if stop.cause is Cause.INTERRUPT:
        return "Run `sqlmig up` to continue." if up else "Run `sqlmig status` to see the state."
    if stop.cause is not Cause.SQL:
        return (
            "Run `sqlmig up` again once the server answers."
            if up
            else "Run `sqlmig status`, then run again once the server answers."
        )
    if stop.lock_tries:
        return (
            "Run again once those sessions have finished (end a stuck one with "
            "pg_terminate_backend(pid)), or at a quieter time; --lock-retries and "
            "--ddl-lock-timeout allow more tries and longer waits."
        )
    if not up:
        return "Fix its down script and run again."
    if stop.may_be_partial:
        return (
            f"Fix the script, then `sqlmig repair {v} --rolled-back` and `sqlmig up`: its "
            "down script runs outside a transaction, so `sqlmig up` cannot tell this failure "
            "from a down that stopped part-way."
        )
    return "Fix the script and run `sqlmig up` again; it will be retried."


def _waited(stop: Stop) -> str:
    """' It waited longer than the lock timeout...' for a stop after guarded lock waits."""
    if not stop.lock_tries:
        return ""
    from sqlmig.lockwait import describe

    tries = "its only try" if stop.lock_tries == 1 else f"each of its {stop.lock_tries} tries"
    limit = f" ({stop.lock_timeout:g}s)" if stop.lock_timeout is not None else ""
    last = "it" if stop.lock_tries == 1 else "the last"
    return (
        f" It waited longer than the lock timeout{limit} for a table lock on {tries}, "
        f"and gave up each time so that queries queued behind it could run; {last} waited "
        f"for {describe(stop.blockers)}."
    )


def _partial(stop: Stop) -> str:
    p = stop.progress
    if p is None:
        return "some of its statements may have been applied"
    rolled_back = (
        f"; the transaction it was in (lines {p.segment[0]}-{p.segment[1]}) was rolled back"
        if p.segment is not None
        else ""
    )
    if stop.cause is Cause.SQL:
        if p.committed == 0:
            return f"no statement before it was applied{rolled_back}"
        return f"{p.committed_phrase()} (ending at line {p.last_line}){rolled_back}"
    how = (
        "was cancelled while it ran and may or may not have taken effect"
        if stop.cause is Cause.INTERRUPT
        else "was running: it may or may not have taken effect"
    )
    if p.segment is not None:
        how += f" (it was in the transaction of lines {p.segment[0]}-{p.segment[1]})"
    number = p.running or p.committed + 1
    return f"{p.committed_phrase()}, and statement {number} (line {p.running_line}) {how}"


def _earlier(done: Sequence[MigrationResult], lead: str) -> str:
    """What the run did already: 'Before it, this run applied 2: 0001, 0002. '"""
    parts = []
    for direction in (Direction.DOWN, Direction.UP):
        versions = [r.version for r in done if r.direction == direction]
        if versions:
            parts.append(f"{direction.done} {len(versions)}: {', '.join(versions)}")
    return f"{lead}, this run {' and '.join(parts)}. " if parts else ""

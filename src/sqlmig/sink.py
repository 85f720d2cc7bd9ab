"""Where a migration's statements go: to the server, pipelined, or into a dry run's list.

Every statement is sent on its own (a script is split first) through psycopg with
no parameters, so it reaches the server exactly as written: ``%``, ``:name``, ``$1``
and ``$$`` bodies are never touched. Sent in pipeline mode, a migration's BEGIN,
statements, tracking row and COMMIT travel together and cost one round trip, and
the statement that failed is still known: it is the first one the server did not
answer with success. Without a pipeline (an async engine's sync facade) the same
commands go one round trip each, with the same answers.

A sink never decides what a failure means; it reports how far the commands got
(:class:`Reached`) and the apply body (``sqlmig.apply``) words the outcome.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from sqlalchemy import Connection

from sqlmig.source import Migration
from sqlmig.sqlscript import Statement

# Commands are sent in batches of about this many characters, one round trip each:
# a script of any size is then held in psycopg's and libpq's buffers a piece at a
# time, and the server parses a piece at a time.
GROUP_CHARS = 1 << 20


class Role(enum.Enum):
    SCRIPT = "script"  # a statement of a migration's script
    RECORD = "record"  # sqlmig's bookkeeping in the tracking table
    CONTROL = "control"  # BEGIN, COMMIT, ROLLBACK
    SETTING = "setting"  # the run's session settings


@dataclass(frozen=True, slots=True)
class Command:
    """One statement to send, and where it comes from."""

    sql: str
    params: Mapping[str, Any] | None = None
    role: Role = Role.SCRIPT
    migration: Migration | None = None
    statement: Statement | None = None  # a SCRIPT command: its place in the script
    shown: str | None = None  # what a dry run prints when ``sql`` has parameters


BEGIN = Command("BEGIN", role=Role.CONTROL)
COMMIT = Command("COMMIT", role=Role.CONTROL)


@dataclass(frozen=True)
class Reached:
    """How far a list of commands got before a failure or an interrupt.

    ``index``: the first command not answered with success (0-based); ``queued``:
    how many were handed to the server; ``answered``: the server answered command
    ``index`` with an error, so nothing after it ran (PostgreSQL skips the rest of
    a pipeline after an error, and a transaction after an error only rolls back).
    """

    index: int
    queued: int
    answered: bool

    def sent(self, index: int) -> bool:
        return index < self.queued


class SendFailed(Exception):
    """A command failed or the connection broke; ``error`` is the driver's error."""

    def __init__(self, error: psycopg.Error, reached: Reached, command: Command | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.reached = reached
        self.command = command


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM while commands were out: psycopg has asked the server to
    cancel what ran, and collected the answers it could."""

    def __init__(self, interrupt: KeyboardInterrupt, reached: Reached) -> None:
        super().__init__(*interrupt.args)
        self.reached = reached


Guard = Callable[[int], AbstractContextManager[None]]
"""A deadline for that many statements (sqlmig.watchdog), or none."""


def no_guard(statements: int) -> AbstractContextManager[None]:
    return nullcontext()


class Sink(Protocol):
    def send(self, commands: Iterable[Command], guard: Guard = no_guard) -> None:
        """Run the commands in order, stopping at the first failure (SendFailed)."""

    @property
    def gone(self) -> bool:
        """Whether the connection is closed or broken."""

    def settle(self) -> bool:
        """Roll back a transaction a failure left open; False when the connection is gone."""

    @property
    def standard_strings(self) -> bool:
        """Whether the session has standard_conforming_strings on, as the next script
        will be lexed by the server."""


class Collector:
    """A dry run's sink: keeps what would be sent, as text a person can run."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def send(self, commands: Iterable[Command], guard: Guard = no_guard) -> None:
        self.statements.extend(c.shown if c.shown is not None else c.sql for c in commands)

    gone = False
    standard_strings = True  # PostgreSQL's default since 9.1

    def settle(self) -> bool:
        return True


class Executor:
    """Sends commands on a connection in autocommit: BEGIN and COMMIT are commands too."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        driver = conn.connection.driver_connection
        self._pipelined: psycopg.Connection[Any] | None = (
            driver
            if isinstance(driver, psycopg.Connection) and psycopg.Pipeline.is_supported()
            else None
        )

    def send(self, commands: Iterable[Command], guard: Guard = no_guard) -> None:
        base = 0
        for batch in _batches(commands):
            with guard(len(batch)):
                if self._pipelined is not None and len(batch) > 1:
                    _pipeline(self._pipelined, batch, base)
                else:
                    _one_by_one(self.conn, batch, base)
            base += len(batch)

    def settle(self) -> bool:
        """End a transaction a failure left open; False when the connection is gone."""
        driver: Any = self.conn.connection.driver_connection
        try:
            if driver.closed or driver.broken:
                return False
            if driver.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            return True
        except psycopg.Error:
            return False

    @property
    def gone(self) -> bool:
        return gone(self.conn)

    @property
    def standard_strings(self) -> bool:
        # Reported by the server whenever it changes, so a script that turned it off
        # is seen by the next one: no round trip.
        try:
            info = self.conn.connection.driver_connection.info  # type: ignore[union-attr]
            return bool(info.parameter_status("standard_conforming_strings") != "off")
        except psycopg.Error:  # closed: sending will say so, with the migration named
            return True


def gone(conn: Connection) -> bool:
    """Whether the connection is closed or broken (terminated, lost, shut by the watchdog)."""
    if conn.invalidated or conn.closed:
        return True
    try:
        driver: Any = conn.connection.driver_connection
        return bool(driver.closed or driver.broken)
    except Exception:
        return True


def _batches(commands: Iterable[Command]) -> Iterator[list[Command]]:
    batch: list[Command] = []
    size = 0
    for command in commands:
        batch.append(command)
        size += len(command.sql)
        if size >= GROUP_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _pipeline(driver: psycopg.Connection[Any], batch: list[Command], base: int) -> None:
    """One round trip: every command queued, then one Sync.

    Errors are caught inside the pipeline block and raised after it: psycopg logs a
    warning when leaving a pipeline with an exception in flight. Each command gets a
    cursor of its own so that the first one without a successful answer is the one
    that failed (the rest were skipped by the server).
    """
    cursors: list[psycopg.Cursor[Any]] = []
    error: psycopg.Error | None = None
    interrupt: KeyboardInterrupt | None = None
    try:
        with driver.pipeline():
            try:
                for command in batch:
                    cursor = driver.cursor()
                    cursors.append(cursor)
                    # Only the tracking upsert repeats; a script's statements run once.
                    prepare = None if command.role is Role.RECORD else False
                    cursor.execute(command.sql, command.params, prepare=prepare)
            except psycopg.Error as exc:
                error = exc
            except KeyboardInterrupt as exc:
                interrupt = exc
    except psycopg.Error as exc:
        error = error or exc
    except KeyboardInterrupt as exc:
        interrupt = interrupt or exc
    if error is None and interrupt is None:
        return
    answered = next((i for i, c in enumerate(cursors) if c.pgresult is None), len(cursors))
    reached = Reached(
        base + answered,
        base + len(cursors),
        answered < len(cursors) and error is not None and error.sqlstate is not None,
    )
    if interrupt is not None:
        raise SendInterrupted(interrupt, reached) from None
    assert error is not None
    raise SendFailed(error, reached, batch[answered] if answered < len(batch) else None)


def _one_by_one(conn: Connection, batch: list[Command], base: int) -> None:
    """A round trip per command: where there is no pipeline, and for a command on its
    own (a pipeline of one would be refused by statements such as CREATE INDEX
    CONCURRENTLY, which must not share their round trip)."""
    cursor = conn.connection.cursor()
    index = 0
    try:
        while index < len(batch):
            cursor.execute(batch[index].sql, batch[index].params)
            index += 1
    except psycopg.Error as exc:
        reached = Reached(base + index, base + index + 1, exc.sqlstate is not None)
        raise SendFailed(exc, reached, batch[index]) from None
    except KeyboardInterrupt as exc:
        # psycopg has asked the server to cancel the statement.
        raise SendInterrupted(exc, Reached(base + index, base + index + 1, False)) from None
    finally:
        cursor.close()

"""Guarded table locks: a lock timeout on each migration, retries, and who was in the way.

A DDL statement that waits for an ACCESS EXCLUSIVE lock behind one long transaction
blocks every query on that table for as long as it waits, since they queue behind it.
With a ``lock_timeout`` it gives up instead (SQLSTATE 55P03) and the queue drains;
the apply body (``sqlmig.apply``) then rolls the migration back and tries it again
after a growing, jittered delay (:class:`LockRetry`), up to a number of retries.

Who was in the way can only be asked while the statement waits:
``pg_blocking_pids()`` answers nothing once it gave up. So while a migration's
commands are out, :class:`BlockerWatch` asks on the run's lock connection, which
sits idle then, every quarter of the timeout or so, and keeps the last answer: no
third connection per run, and no query at all for a migration that finishes sooner.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("sqlmig")

LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class Blocker:
    """A session the migration waited for, as pg_stat_activity showed it then."""

    pid: int
    application: str
    state: str
    transaction_s: float | None  # how long its transaction had been open
    query: str  # the start of its current or last query

    def describe(self) -> str:
        age = f", transaction open {self.transaction_s:.1f}s" if self.transaction_s else ""
        query = " ".join(self.query.split())
        return (
            f"pid {self.pid} (application {self.application or '-'}, {self.state or 'unknown'}"
            f"{age})" + (f": {query}" if query else "")
        )


def describe(blockers: tuple[Blocker, ...]) -> str:
    """'pid 1 (...); pid 2 (...)', or what to say when none was seen."""
    if not blockers:
        return "a session sqlmig could not see (it may have ended as the wait timed out)"
    return "; ".join(b.describe() for b in blockers)


@dataclass(frozen=True)
class LockRetry:
    """How a run guards its migrations' table locks.

    ``timeout`` (seconds) becomes each migration's ``lock_timeout``; a migration whose
    statement times out is tried again ``retries`` times at most, after delays that
    double from ``first_delay`` up to ``max_delay``, each cut by a random factor
    between 0.5 and 1 so that runs on many hosts do not retry in step.
    """

    timeout: float
    retries: int = 0
    first_delay: float = 1.0
    max_delay: float = 30.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** (attempt - 1))
        factor: float = 0.5 + 0.5 * self.random()
        return ceiling * factor

    def setting(self) -> str:
        """The statement that gives a transaction this lock timeout."""
        return f"SET LOCAL lock_timeout = '{ms(self.timeout)}'"

    @staticmethod
    def sets_its_own(sql: str) -> bool:
        """Whether a script sets lock_timeout itself, and so keeps it."""
        return "lock_timeout" in sql.lower()


def ms(seconds: float) -> str:
    """A timeout for PostgreSQL. Rounded up, so that 0.0004s does not become 0 (no
    limit at all); 0 stays 0, PostgreSQL's "no limit"."""
    return f"{min(math.ceil(seconds * 1000), 2**31 - 1)}ms"


_BLOCKERS = text(
    """
    SELECT b.pid, coalesce(b.application_name, ''), coalesce(b.state, ''),
           extract(epoch FROM now() - b.xact_start)::float8, left(coalesce(b.query, ''), 200)
      FROM pg_stat_activity w
      CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocking(pid)
      JOIN pg_stat_activity b ON b.pid = blocking.pid
     WHERE w.pid = :pid AND w.wait_event_type = 'Lock'
     ORDER BY b.xact_start NULLS LAST
    """
)


class BlockerWatch:
    """Asks, on ``conn`` (the lock's connection), whom session ``pid`` waits for.

    ``watching()`` polls every ``interval`` seconds in a thread of its own while a
    migration's commands are out; ``seen`` is the last non-empty answer of the last
    watch. ``guard`` bounds each query (the run's watchdog) when the run has one.
    """

    def __init__(
        self,
        conn: Connection,
        pid: int,
        interval: float,
        guard: Callable[[Connection], AbstractContextManager[None]] = lambda c: nullcontext(),
    ) -> None:
        self.conn = conn
        self.pid = pid
        self.interval = interval
        self.guard = guard
        self.seen: tuple[Blocker, ...] = ()

    @contextmanager
    def watching(self) -> Iterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=self._poll, args=(stop,), name="sqlmig-blockers")
        thread.daemon = True
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()  # the lock's connection is the run's again after this

    def _poll(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                with self.guard(self.conn):
                    rows = self.conn.execute(_BLOCKERS, {"pid": self.pid}).all()
            except DBAPIError as exc:  # the run finds out about its lock itself
                log.debug("could not ask who blocks the migration: %s", exc)
                return
            if rows:
                self.seen = tuple(Blocker(*row) for row in rows)

"""Exclusive access: a session-level PostgreSQL advisory lock on a dedicated connection.

Session-level, never transaction-level, because the lock must hold across the many
transactions of a multi-migration run. The lock connection runs in AUTOCOMMIT so it
never sits idle inside a transaction, where ``idle_in_transaction_session_timeout``
would kill it and drop the lock unseen. Whatever happens, the lock never outlives
the run inside a pooled connection: when it cannot be released cleanly, the
connection is invalidated (closed), and the server drops the lock with the session.

A session lock needs a session: through a pooler in transaction mode (PgBouncer,
pgcat, RDS Proxy) consecutive transactions land on different server sessions, so
the lock would stay behind on a pooled connection or be shared by two runs. That is
refused before the lock is taken; the lease in ``sqlmig.lease`` is the strategy for
poolers. Both strategies answer ``sqlmig lock status`` and ``sqlmig lock release``
through :class:`LockStrategy`, and :func:`release` holds their one policy.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from sqlmig.database import (
    KEEPALIVES,
    announced_pid,
    autocommit,
    behind_pooler,
    connect,
    stalled_error,
)
from sqlmig.errors import (
    LockHeldError,
    LockLostError,
    LockTimeoutError,
    TransactionPoolerError,
    UsageError,
)
from sqlmig.watchdog import Watchdog, socket_fd

log = logging.getLogger("sqlmig")

MIGRATION_LOCK_ID = 123456789

_TRY = text("SELECT pg_try_advisory_lock(:id)")
# The first try also tells whether a pooler sits in between, in the same round trip:
# only a session that is the one the connection was announced takes the lock.
_TRY_DIRECT = text(
    "SELECT CASE WHEN pg_backend_pid() = :announced THEN pg_try_advisory_lock(:id) END"
    " AS locked, pg_backend_pid() AS pid"
)
_PID = text("SELECT pg_backend_pid()")
_UNLOCK = text("SELECT pg_advisory_unlock(:id)")
# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32
# bits) and objsubid 1.
_HOLDER = text(
    """
    SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr,
           a.backend_start, a.state, a.pid = pg_backend_pid() AS own
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid::bigint = :hi AND l.objid::bigint = :lo
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LIMIT 1
    """
)
# The holder found by _HOLDER, if it still holds the lock; never this command's own
# session: through a transaction pooler, the statement may run on the very backend
# that holds the lock.
_TERMINATE = text(
    """
    SELECT pg_terminate_backend(a.pid)
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid::bigint = :hi AND l.objid::bigint = :lo
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND a.pid = :pid AND a.backend_start = :since AND a.pid <> pg_backend_pid()
    """
)


@dataclass(frozen=True)
class LockHolder:
    """Who holds the migration lock, as the server shows it.

    For the advisory lock: the holding session (``pid`` is its server process,
    ``since`` its start, ``state`` what it is doing). For a lease (``sqlmig.lease``):
    the run that took it (``pid`` is its process on ``host``, ``since`` when it took
    the lease), its last heartbeat and its expiry, ages in seconds by the server's clock.
    """

    pid: int | None
    application: str | None
    client_addr: str | None
    since: datetime | None
    state: str | None = None
    own_session: bool = False  # the session of the query that found it
    host: str | None = None
    run_id: str | None = None
    heartbeat_at: datetime | None = None
    heartbeat_age_s: float | None = None
    expires_at: datetime | None = None
    expires_in_s: float | None = None

    @property
    def expired(self) -> bool:
        """A lease whose time is up: the next run takes it over."""
        return self.expires_in_s is not None and self.expires_in_s <= 0

    def __str__(self) -> str:
        since = self.since.isoformat(sep=" ", timespec="seconds") if self.since else "-"
        if self.run_id is None:
            return (
                f"pid {self.pid} (application {self.application or '-'!s}, "
                f"client {self.client_addr or 'local socket'}, connected since {since}, "
                f"state {self.state or 'unknown'})"
            )
        expiry = self.expires_in_s or 0.0
        ends = f"expires in {expiry:.1f}s" if expiry > 0 else f"expired {-expiry:.1f}s ago"
        return (
            f"run {self.run_id} (host {self.host}, pid {self.pid}, application "
            f"{self.application or '-'!s}, since {since}, heartbeat "
            f"{self.heartbeat_age_s or 0.0:.1f}s ago, {ends})"
        )


@dataclass(frozen=True)
class LockState:
    """What ``sqlmig lock status`` shows: the strategy, its lock, and who holds it."""

    strategy: str  # "advisory" or "table"
    lock: str  # "advisory lock N" or "lease in TABLE"
    holder: LockHolder | None  # an expired lease stays here until it is taken over

    @property
    def held(self) -> bool:
        return self.holder is not None and not self.holder.expired


@dataclass(frozen=True)
class LockRelease:
    """What ``sqlmig lock release`` did: ``action`` is "none" (nobody held the lock,
    or its holder let go meanwhile), "deleted" (a lease) or "terminated" (the session
    holding the advisory lock); ``state`` is what it found first."""

    state: LockState
    action: str


def try_acquire_lock(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> bool:
    """Take the lock without waiting; False when another session holds it."""
    return bool(conn.execute(_TRY, {"id": lock_id}).scalar())


def release_lock(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> bool:
    """Release the lock; False when this session did not hold it."""
    return bool(conn.execute(_UNLOCK, {"id": lock_id}).scalar())


def lock_holder(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> str | None:
    """Who holds the lock, as PostgreSQL shows it, or None when it cannot tell."""
    holder = advisory_holder(conn, lock_id)
    return None if holder is None else str(holder)


def advisory_holder(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> LockHolder | None:
    """The session holding the advisory lock, or None when nobody does."""
    row = conn.execute(_HOLDER, _key(lock_id)).first()
    if row is None:
        return None
    return LockHolder(
        pid=row.pid,
        application=row.application_name,
        client_addr=row.client_addr,
        since=row.backend_start,
        state=row.state,
        own_session=bool(row.own),
    )


def _key(lock_id: int) -> dict[str, int]:
    return {"hi": (lock_id >> 32) & 0xFFFFFFFF, "lo": lock_id & 0xFFFFFFFF}


# What a statement on a dead or closed lock connection raises.
LOST = (DBAPIError, InvalidRequestError, OSError, ValueError)


class HeldLock:
    """The lock, held on its own connection for the length of a ``with`` block."""

    def __init__(
        self, conn: Connection, lock_id: int, waited: float, watchdog: Watchdog | None = None
    ) -> None:
        self.connection = conn
        self.lock_id = lock_id
        self.waited = waited  # seconds spent waiting for another holder
        self.watchdog = watchdog

    def ensure_held(self) -> None:
        """Raise LockLostError if the lock's session has died.

        Costs no round trip while the connection is quiet: an idle AUTOCOMMIT session
        receives nothing unless the server is ending it (pg_terminate_backend, a
        restart) or the network failed, so only then do we ask the server.
        """
        try:
            fd = socket_fd(self.connection)
            if fd is not None and not select.select([fd], [], [], 0)[0]:
                return
            with guard(self.watchdog, self.connection):
                self.connection.exec_driver_sql("SELECT 1")
        except LOST:
            raise self.lost() from None

    def lost(self) -> LockLostError:
        """The error for a lock connection that died or stalled."""
        stalled = self.watchdog.stalled(self.connection) if self.watchdog else None
        if stalled is not None:
            return LockLostError(
                "the connection holding the migration lock stalled: no answer from the "
                f"server within {stalled:g}s, so it was closed and no further migration "
                "was started. The server keeps the lock until it notices the connection "
                "is gone. Check the network, run `sqlmig status`, then run again."
            )
        return LockLostError(
            "the connection holding the migration lock was lost (terminated by the "
            "server, a restart or the network), so no further migration was started. "
            "Run `sqlmig status` to see the state, then run again."
        )


@contextmanager
def advisory_lock(
    engine: Engine,
    *,
    lock_id: int = MIGRATION_LOCK_ID,
    timeout: float = 60.0,
    on_wait: Callable[[str | None], None] | None = None,
    watchdog: Watchdog | None = None,
) -> Iterator[HeldLock]:
    """Hold the lock for the block, waiting with back-off up to ``timeout`` seconds.

    ``timeout=0`` tries once. ``on_wait`` is called once with the holder's description
    when the lock is busy at the first try. Raises LockTimeoutError naming the holder.
    With a ``watchdog``, every round trip on the lock's connection is bounded, and a
    stall while taking the lock raises ConnectionStalledError.
    """
    conn, waited = take_lock(
        engine,
        lambda conn: _acquire(engine, conn, lock_id, timeout, on_wait, watchdog),
        watchdog,
    )
    try:
        yield HeldLock(conn, lock_id, waited, watchdog)
    finally:
        if watchdog is not None and watchdog.fired:
            # A connection of this run stalled: an unlock could wait as long again.
            # Closing ends the session, which releases the lock as surely.
            discard(conn)
        else:
            with guard(watchdog, conn):
                _release(conn, lock_id)


def take_lock(
    engine: Engine, acquire: Callable[[Connection], float], watchdog: Watchdog | None
) -> tuple[Connection, float]:
    """A lock connection (autocommit, keepalives) on which ``acquire`` took the lock;
    with the seconds it waited. On any failure the connection is closed for good."""
    conn = connect(engine)
    stalled: float | None = None
    try:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        enable_keepalives(conn)
        return conn, acquire(conn)
    except DBAPIError:
        discard(conn)
        stalled = watchdog.stalled(conn) if watchdog else None
        if stalled is None:
            raise
    except BaseException:
        discard(conn)
        raise
    raise stalled_error(
        engine.url,
        f"no answer within {stalled:g}s while taking the migration lock",
        "Nothing was run. Check the network to the server, then run again.",
    )


class LockStrategy(Protocol):
    """How a run gets exclusive access: hold it for a block, or say who holds it.

    ``name`` is what ``--lock-strategy`` calls it; ``lock`` names the lock for people.
    """

    name: str
    lock: str

    def hold(
        self,
        engine: Engine,
        *,
        timeout: float,
        on_wait: Callable[[str | None], None] | None = None,
        watchdog: Watchdog | None = None,
    ) -> AbstractContextManager[HeldLock]:
        """Wait up to ``timeout`` seconds for the lock and hold it for the block."""

    def holder(self, conn: Connection) -> str | None:
        """Who holds the lock now, or None when nobody does or PostgreSQL cannot tell."""

    def state(self, conn: Connection) -> LockState:
        """The lock and its holder, read in single statements on ``conn`` (autocommit)."""

    def remove(self, conn: Connection, holder: LockHolder) -> bool:
        """Take the lock away from ``holder``, and from no other; False when it no
        longer held it (an expired lease only while it is still expired)."""


class AdvisoryLock:
    """The session-level advisory lock ``lock_id`` (see the module's docstring)."""

    name = "advisory"

    def __init__(self, lock_id: int = MIGRATION_LOCK_ID) -> None:
        self.lock_id = lock_id
        self.lock = f"advisory lock {lock_id}"

    def hold(
        self,
        engine: Engine,
        *,
        timeout: float,
        on_wait: Callable[[str | None], None] | None = None,
        watchdog: Watchdog | None = None,
    ) -> AbstractContextManager[HeldLock]:
        return advisory_lock(
            engine, lock_id=self.lock_id, timeout=timeout, on_wait=on_wait, watchdog=watchdog
        )

    def holder(self, conn: Connection) -> str | None:
        return lock_holder(conn, self.lock_id)

    def state(self, conn: Connection) -> LockState:
        return LockState(self.name, self.lock, advisory_holder(conn, self.lock_id))

    def remove(self, conn: Connection, holder: LockHolder) -> bool:
        """Terminate the holding session (pg_terminate_backend); never our own."""
        params = {**_key(self.lock_id), "pid": holder.pid, "since": holder.since}
        return bool(conn.execute(_TERMINATE, params).scalar())


def release(
    strategy: LockStrategy, conn: Connection, *, force: bool, confirm: Callable[[LockState], bool]
) -> LockRelease:
    """``sqlmig lock release``: free a lock whose holder is gone, saying whose it was.

    An expired lease is deleted. A live lease, or the session holding the advisory
    lock, is removed only with ``force`` and once ``confirm`` agrees; never the
    session this command runs on. Raises LockHeldError when it refuses.
    """
    state = strategy.state(conn)
    holder = state.holder
    if holder is None:
        return LockRelease(state, "none")
    if holder.expired:
        if strategy.remove(conn, holder):
            log.info("removed the expired migration lease of %s", holder)
            return LockRelease(state, "deleted")
        raise LockHeldError(
            f"the {state.lock} was renewed or taken over while it was being released; "
            "nothing was removed. Run `sqlmig lock status` to see who holds it now."
        )
    if holder.own_session:
        raise LockHeldError(
            f"the {state.lock} is held by the server session this command runs on "
            f"({holder}): the URL goes through a transaction pooler, which left the lock "
            "on one of its server connections. Terminating it would end this command; "
            "connect directly to PostgreSQL and run `sqlmig lock release --force` again."
        )
    if not force:
        what = "remove the lease" if strategy.name == "table" else "terminate that session"
        raise LockHeldError(
            f"the {state.lock} is held by {holder}; nothing was changed. If that run is "
            f"gone or stuck, pass --force to {what} (--yes to skip the question)."
        )
    if not confirm(state):
        raise UsageError("cancelled; nothing was released")
    if not strategy.remove(conn, holder):
        log.info("the holder of the %s let go of it meanwhile", state.lock)
        return LockRelease(state, "none")
    action = "deleted" if strategy.name == "table" else "terminated"
    log.info("%s the holder of the %s: %s", action, state.lock, holder)
    return LockRelease(state, action)


def _acquire(
    engine: Engine,
    conn: Connection,
    lock_id: int,
    timeout: float,
    on_wait: Callable[[str | None], None] | None,
    watchdog: Watchdog | None = None,
) -> float:
    start = time.monotonic()
    deadline = start + max(timeout, 0.0)
    delay = 0.05
    # Five round trips at most: the try; behind a pooler, two probes and a plain try;
    # then who holds it.
    with guard(watchdog, conn, 5):
        row = conn.execute(_TRY_DIRECT, {"id": lock_id, "announced": announced_pid(conn)}).one()
        if row.locked:
            return 0.0
        if behind_pooler(conn, row.pid):
            _refuse_transaction_pooler(engine, conn, row.pid)
            if try_acquire_lock(conn, lock_id):
                return 0.0
        holder = lock_holder(conn, lock_id)
    log.info("waiting for the migration lock, held by %s", holder or "another session")
    if on_wait is not None:
        on_wait(holder)
    while time.monotonic() < deadline:
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 1.0)
        with guard(watchdog, conn):
            if try_acquire_lock(conn, lock_id):
                return time.monotonic() - start
    with guard(watchdog, conn):
        holder = lock_holder(conn, lock_id) or holder
    raise LockTimeoutError(lock_id, timeout, holder)


def _refuse_transaction_pooler(engine: Engine, conn: Connection, pid: int) -> None:
    """Raise TransactionPoolerError when ``conn``, whose last statement ran on server
    backend ``pid``, is not kept on one server session between transactions.

    Two probes, one round trip each: a pooler that reuses its most recently freed
    server connection (PgBouncer's default) hands ``pid`` to another client at
    once, and one that spreads the load moves our next transaction elsewhere.
    """
    with connect(engine) as other, autocommit(other):
        shared = other.execute(_PID).scalar()
    again = conn.execute(_PID).scalar()
    if shared == pid:
        raise TransactionPoolerError(
            f"Server backend {pid} served another connection between two transactions of "
            "the lock's connection."
        )
    if again != pid:
        raise TransactionPoolerError(
            f"Consecutive transactions on the lock's connection ran on server backends "
            f"{pid} and {again}."
        )


def guard(
    watchdog: Watchdog | None, conn: Connection, round_trips: int = 1
) -> AbstractContextManager[None]:
    """A deadline for that many round trips on ``conn``, when the run has a watchdog."""
    return nullcontext() if watchdog is None else watchdog.guard(conn, round_trips)


def _release(conn: Connection, lock_id: int) -> None:
    """Unlock and return the connection, or invalidate it so the server drops the lock.

    An interrupt during the unlock (a second Ctrl-C) still closes the connection, so the
    lock never stays with a connection nobody owns.
    """
    released = False
    try:
        released = release_lock(conn, lock_id)
    except Exception:
        pass
    finally:
        if released:
            conn.close()
        else:
            log.warning("could not release the migration lock cleanly; closing its connection")
            discard(conn)


def discard(conn: Connection) -> None:
    """Close the connection for good, never back into the pool."""
    try:
        conn.invalidate()
    finally:
        conn.close()


def enable_keepalives(conn: Connection) -> None:
    """TCP keepalives on this connection's socket, so a vanished peer is noticed.

    Set on the socket itself because an application's engine may not ask libpq for
    them, so they stay on that connection when it goes back to the application's pool.
    A no-op on Unix-domain sockets.
    """
    fd = socket_fd(conn)
    if fd is None:
        return
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, key in (
            ("TCP_KEEPIDLE", "keepalives_idle"),
            ("TCP_KEEPINTVL", "keepalives_interval"),
            ("TCP_KEEPCNT", "keepalives_count"),
        ):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), KEEPALIVES[key])
        # ms of unacknowledged data before the kernel gives up, as new_engine asks libpq;
        # left alone when the engine's URL sets it (0 included: the kernel's "never").
        user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
        if user_timeout is not None and "tcp_user_timeout" not in conn.engine.url.query:
            sock.setsockopt(socket.IPPROTO_TCP, user_timeout, KEEPALIVES["tcp_user_timeout"])
    finally:
        sock.close()

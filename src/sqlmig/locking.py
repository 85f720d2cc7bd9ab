"""Exclusive access: a session-level PostgreSQL advisory lock on a dedicated connection.

Session-level, never transaction-level, because the lock must hold across the many
transactions of a multi-migration run. The lock connection runs in AUTOCOMMIT so it
never sits idle inside a transaction, where ``idle_in_transaction_session_timeout``
would kill it and drop the lock unseen. Whatever happens, the lock never outlives
the run inside a pooled connection: when it cannot be released cleanly, the
connection is invalidated (closed), and the server drops the lock with the session.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from sqlmig.database import KEEPALIVES, connect, stalled_error
from sqlmig.errors import LockLostError, LockTimeoutError
from sqlmig.watchdog import Watchdog, socket_fd

log = logging.getLogger("sqlmig")

MIGRATION_LOCK_ID = 123456789

_TRY = text("SELECT pg_try_advisory_lock(:id)")
_UNLOCK = text("SELECT pg_advisory_unlock(:id)")
# A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low 32
# bits) and objsubid 1.
_HOLDER = text(
    """
    SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr,
           a.backend_start, a.state
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.classid::bigint = :hi AND l.objid::bigint = :lo
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    LIMIT 1
    """
)


def try_acquire_lock(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> bool:
    """Take the lock without waiting; False when another session holds it."""
    return bool(conn.execute(_TRY, {"id": lock_id}).scalar())


def release_lock(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> bool:
    """Release the lock; False when this session did not hold it."""
    return bool(conn.execute(_UNLOCK, {"id": lock_id}).scalar())


def lock_holder(conn: Connection, lock_id: int = MIGRATION_LOCK_ID) -> str | None:
    """Who holds the lock, as PostgreSQL shows it, or None when it cannot tell."""
    row = conn.execute(
        _HOLDER, {"hi": (lock_id >> 32) & 0xFFFFFFFF, "lo": lock_id & 0xFFFFFFFF}
    ).first()
    if row is None:
        return None
    since = row.backend_start.isoformat(sep=" ", timespec="seconds")
    return (
        f"pid {row.pid} (application {row.application_name or '-'!s}, "
        f"client {row.client_addr or 'local socket'}, connected since {since}, "
        f"state {row.state or 'unknown'})"
    )


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
            with _guard(self.watchdog, self.connection):
                self.connection.exec_driver_sql("SELECT 1")
        except (DBAPIError, InvalidRequestError, OSError, ValueError):
            stalled = self.watchdog.stalled(self.connection) if self.watchdog else None
            if stalled is not None:
                raise LockLostError(
                    "the connection holding the migration lock stalled: no answer from the "
                    f"server within {stalled:g}s, so it was closed and no further migration "
                    "was started. The server keeps the lock until it notices the connection "
                    "is gone. Check the network, run `sqlmig status`, then run again."
                ) from None
            raise LockLostError(
                "the connection holding the migration lock was lost (terminated by the "
                "server, a restart or the network), so no further migration was started. "
                "Run `sqlmig status` to see the state, then run again."
            ) from None


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
    conn = connect(engine)
    stalled: float | None = None
    try:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        enable_keepalives(conn)
        waited = _acquire(conn, lock_id, timeout, on_wait, watchdog)
    except DBAPIError:
        _discard(conn)
        stalled = watchdog.stalled(conn) if watchdog else None
        if stalled is None:
            raise
    except BaseException:
        _discard(conn)
        raise
    if stalled is not None:
        raise stalled_error(
            engine.url,
            f"no answer within {stalled:g}s while taking the migration lock",
            "Nothing was run. Check the network to the server, then run again.",
        )
    try:
        yield HeldLock(conn, lock_id, waited, watchdog)
    finally:
        if watchdog is not None and watchdog.fired:
            # A connection of this run stalled: an unlock could wait as long again.
            # Closing ends the session, which releases the lock as surely.
            _discard(conn)
        else:
            with _guard(watchdog, conn):
                _release(conn, lock_id)


class LockStrategy(Protocol):
    """How a run gets exclusive access: hold it for a block, or say who holds it."""

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


class AdvisoryLock:
    """The session-level advisory lock ``lock_id`` (see the module's docstring)."""

    def __init__(self, lock_id: int = MIGRATION_LOCK_ID) -> None:
        self.lock_id = lock_id

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


def _acquire(
    conn: Connection,
    lock_id: int,
    timeout: float,
    on_wait: Callable[[str | None], None] | None,
    watchdog: Watchdog | None = None,
) -> float:
    start = time.monotonic()
    deadline = start + max(timeout, 0.0)
    delay = 0.05
    with _guard(watchdog, conn, 2):
        if try_acquire_lock(conn, lock_id):
            return 0.0
        holder = lock_holder(conn, lock_id)
    log.info("waiting for the migration lock, held by %s", holder or "another session")
    if on_wait is not None:
        on_wait(holder)
    while time.monotonic() < deadline:
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 1.0)
        with _guard(watchdog, conn):
            if try_acquire_lock(conn, lock_id):
                return time.monotonic() - start
    with _guard(watchdog, conn):
        holder = lock_holder(conn, lock_id) or holder
    raise LockTimeoutError(lock_id, timeout, holder)


def _guard(
    watchdog: Watchdog | None, conn: Connection, round_trips: int = 1
) -> AbstractContextManager[None]:
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
            _discard(conn)


def _discard(conn: Connection) -> None:
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

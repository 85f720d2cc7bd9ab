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
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from sqlmig.errors import LockLostError, LockTimeoutError

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

    def __init__(self, conn: Connection, lock_id: int, waited: float) -> None:
        self.connection = conn
        self.lock_id = lock_id
        self.waited = waited  # seconds spent waiting for another holder

    def ensure_held(self) -> None:
        """Raise LockLostError if the lock's session has died.

        Costs no round trip while the connection is quiet: an idle AUTOCOMMIT session
        receives nothing unless the server is ending it (pg_terminate_backend, a
        restart) or the network failed, so only then do we ask the server.
        """
        try:
            fd = _socket_fd(self.connection.connection.dbapi_connection)
            if fd is not None and not select.select([fd], [], [], 0)[0]:
                return
            self.connection.exec_driver_sql("SELECT 1")
        except (DBAPIError, InvalidRequestError, OSError, ValueError):
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
) -> Iterator[HeldLock]:
    """Hold the lock for the block, waiting with back-off up to ``timeout`` seconds.

    ``timeout=0`` tries once. ``on_wait`` is called once with the holder's description
    when the lock is busy at the first try. Raises LockTimeoutError naming the holder.
    """
    conn = engine.connect()
    try:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        enable_keepalives(conn)
        waited = _acquire(conn, lock_id, timeout, on_wait)
    except BaseException:
        _discard(conn)
        raise
    try:
        yield HeldLock(conn, lock_id, waited)
    finally:
        _release(conn, lock_id)


def _acquire(
    conn: Connection,
    lock_id: int,
    timeout: float,
    on_wait: Callable[[str | None], None] | None,
) -> float:
    start = time.monotonic()
    deadline = start + max(timeout, 0.0)
    delay = 0.05
    if try_acquire_lock(conn, lock_id):
        return 0.0
    holder = lock_holder(conn, lock_id)
    log.info("waiting for the migration lock, held by %s", holder or "another session")
    if on_wait is not None:
        on_wait(holder)
    while time.monotonic() < deadline:
        time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, 1.0)
        if try_acquire_lock(conn, lock_id):
            return time.monotonic() - start
    raise LockTimeoutError(lock_id, timeout, lock_holder(conn, lock_id) or holder)


def _release(conn: Connection, lock_id: int) -> None:
    """Unlock and return the connection, or invalidate it so the server drops the lock."""
    try:
        released = release_lock(conn, lock_id)
    except Exception:
        released = False
    if not released:
        log.warning("could not release the migration lock cleanly; closing its connection")
        _discard(conn)
        return
    conn.close()


def _discard(conn: Connection) -> None:
    """Close the connection for good, never back into the pool."""
    try:
        conn.invalidate()
    finally:
        conn.close()


def _socket_fd(dbapi_connection: object) -> int | None:
    pgconn = getattr(dbapi_connection, "pgconn", None)
    try:
        return int(pgconn.socket) if pgconn is not None else None
    except Exception:
        return None


def enable_keepalives(conn: Connection) -> None:
    """TCP keepalives on this connection's socket, so a vanished peer is noticed.

    Set on the socket itself because an application's engine may not ask libpq for
    them. A no-op on Unix-domain sockets.
    """
    fd = _socket_fd(conn.connection.dbapi_connection)
    if fd is None:
        return
    sock = socket.socket(fileno=os.dup(fd))
    try:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    finally:
        sock.close()

"""Deadlines on round trips to the server, so a stalled connection fails instead of hanging.

A network that stops carrying bytes without closing anything (a partition behind a
proxy or load balancer, a frozen NAT, a wedged pooler) leaves libpq waiting on a
socket that never becomes readable. TCP keepalives and ``tcp_user_timeout`` only
notice when the kernel's own packets go unacknowledged, and a middlebox that keeps
acknowledging keeps them quiet forever: only the client can tell. When the server
enforces a ``statement_timeout``, every answer is due within it, so a call still
unanswered well past it never will be. The watchdog then shuts the connection's
socket down: the call blocked in libpq returns with an error, and the connection is
discarded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from sqlalchemy import Connection

log = logging.getLogger("sqlmig")

# Seconds allowed on top of what the server itself enforces: the network both ways,
# a busy client, a slow commit.
GRACE = 5.0


def socket_fd(conn: Connection) -> int | None:
    """The connection's socket as libpq holds it, or None when it has none (closed).

    Through ``driver_connection``, so it also works under an async engine's sync
    facade, where the DBAPI connection is SQLAlchemy's adapter around psycopg's.
    """
    try:
        fd = int(conn.connection.driver_connection.pgconn.socket)  # type: ignore[union-attr]
    except Exception:
        return None
    return fd if fd >= 0 else None


@dataclass
class _Deadline:
    when: float
    seconds: float
    owner: int  # id() of the guarded Connection
    sock: socket.socket  # a duplicate: shutting it down shuts libpq's socket too


class Watchdog:
    """One thread that shuts down the socket of any guarded call that outlives its deadline.

    A guarded block of ``round_trips`` calls gets ``round_trips * statement_timeout +
    GRACE`` seconds: PostgreSQL applies ``statement_timeout`` to each statement, even
    to each of several sent as one script. ``stalled(conn)`` tells afterwards whether
    it fired, so the caller can say the connection stalled rather than merely broke.
    """

    def __init__(self, statement_timeout: float) -> None:
        self.statement_timeout = statement_timeout
        self._cond = threading.Condition()
        self._armed: dict[int, _Deadline] = {}
        self._tokens = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stalled: dict[int, float] = {}

    def limit(self, round_trips: int = 1) -> float:
        """Seconds a block of ``round_trips`` calls may take before it counts as stalled."""
        return round_trips * self.statement_timeout + GRACE

    @contextmanager
    def guard(self, conn: Connection, round_trips: int = 1) -> Iterator[None]:
        """Shut ``conn``'s socket down if the block is still running past its limit."""
        seconds = self.limit(round_trips)
        fd = socket_fd(conn)
        if fd is None:
            yield
            return
        # A duplicate of the descriptor, owned here: should libpq close its own while
        # the block runs, the number may be reused, but this one still names our socket.
        sock = socket.socket(fileno=os.dup(fd))
        with self._cond:
            self._tokens += 1
            token = self._tokens
            self._armed[token] = _Deadline(time.monotonic() + seconds, seconds, id(conn), sock)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="sqlmig-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._armed.pop(token, None)
            sock.close()

    def stalled(self, conn: Connection) -> float | None:
        """The deadline (seconds) after which the watchdog shut ``conn`` down, or None."""
        with self._cond:
            return self._stalled.get(id(conn))

    @property
    def fired(self) -> bool:
        """Whether any connection was shut down: the network may be gone for all of them."""
        with self._cond:
            return bool(self._stalled)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for token, deadline in list(self._armed.items()):
                    if deadline.when <= now:
                        del self._armed[token]
                        self._shut(deadline)
                soonest = min((d.when for d in self._armed.values()), default=None)
                self._cond.wait(None if soonest is None else max(soonest - now, 0.0))

    def _shut(self, deadline: _Deadline) -> None:
        # Under the lock: the guard cannot be left (and its socket closed) meanwhile.
        log.warning(
            "no answer from the server for %gs: the connection has stalled; closing it",
            deadline.seconds,
        )
        self._stalled[deadline.owner] = deadline.seconds
        with suppress(OSError):
            deadline.sock.shutdown(socket.SHUT_RDWR)

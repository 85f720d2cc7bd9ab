"""Exclusive access through a connection pooler: a lease, one row of ``<table>_lock``.

A session-level advisory lock needs one server session for the whole run; a pooler in
transaction mode (PgBouncer, pgcat, RDS Proxy...) gives each transaction whichever
server connection is free. A lease needs none: it is a row, taken, renewed and dropped
by single statements, each its own transaction, which any pooler runs on one server
connection. The row names its holder (host, pid, application, a random run id) and
expires by itself when the holder stops renewing it, so a killed run frees it within
its time to live, and the next run takes it over and logs whose it was.

The holder renews it every ``heartbeat`` seconds from a thread on a connection of its
own, and renews it again on the lock's connection before each migration: a lease taken
over meanwhile (it expired, or `sqlmig lock release --force` removed it) stops the
run there (LockLostError). Every statement is short and in autocommit, so no one
waiting for the lease waits behind a migration's locks, and a migration's CREATE
INDEX CONCURRENTLY never waits for a transaction of the lease.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    Interval,
    MetaData,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateSchema, CreateTable, ExecutableDDLElement

from sqlmig.config import check_lease_timing
from sqlmig.database import behind_pooler, connect
from sqlmig.errors import LockLostError, LockTimeoutError, QueryError, SqlmigError
from sqlmig.locking import (
    LOST,
    MIGRATION_LOCK_ID,
    HeldLock,
    LockHolder,
    LockState,
    discard,
    enable_keepalives,
    guard,
    take_lock,
)
from sqlmig.outcome import Cause, cause_of, sqlstate_of
from sqlmig.tracker import DEFAULT_TABLE
from sqlmig.watchdog import Watchdog

log = logging.getLogger("sqlmig")

DEFAULT_TTL = 60.0
DEFAULT_HEARTBEAT = 10.0
MAX_POLL = 1.0  # seconds between two tries at most, while waiting for the lease

_MAX_IDENTIFIER_BYTES = 63
_UNDEFINED = {"42P01", "3F000"}  # no such table, no such schema: first use
# Concurrent CREATE ... IF NOT EXISTS can still lose a race on the catalog.
_CREATE_RACE = {"23505", "42P07", "42P06", "42710"}


def lock_table_name(table: str) -> str:
    """``<table>_lock``, shortened with a hash of the table name past 63 bytes."""
    name = f"{table}_lock"
    if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(table.encode()).hexdigest()[:8]
    head = table.encode()[: _MAX_IDENTIFIER_BYTES - len(f"_{digest}_lock")]
    return f"{head.decode(errors='ignore')}_{digest}_lock"


@lru_cache(maxsize=64)
def lease_table(table: str = DEFAULT_TABLE, schema: str | None = None) -> Table:
    """The lease ``Table`` of the tracking table ``table``, in the same schema."""
    return Table(
        lock_table_name(table),
        MetaData(),
        Column("lock_id", BigInteger, primary_key=True, autoincrement=False),
        Column("run_id", Text, nullable=False),
        Column("host", Text, nullable=False),
        Column("pid", Integer, nullable=False),
        Column("application", Text, nullable=False),
        Column("acquired_at", DateTime(timezone=True), nullable=False),
        Column("heartbeat_at", DateTime(timezone=True), nullable=False),
        Column("expires_at", DateTime(timezone=True), nullable=False),
        schema=schema,
    )


@dataclass(frozen=True)
class Owner:
    """Who takes a lease: this process, and a run id of its own."""

    run_id: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Owner:
        return cls(secrets.token_hex(8), socket.gethostname(), os.getpid())


class LeaseLock:
    """The lease strategy (``--lock-strategy table``; see the module's docstring).

    ``ttl``: seconds a lease lives without renewal; ``heartbeat``: seconds between
    renewals, less than ``ttl`` so that a late one does not let the lease lapse.
    """

    name = "table"

    def __init__(
        self,
        table: str = DEFAULT_TABLE,
        schema: str | None = None,
        *,
        lock_id: int = MIGRATION_LOCK_ID,
        ttl: float = DEFAULT_TTL,
        heartbeat: float = DEFAULT_HEARTBEAT,
    ) -> None:
        check_lease_timing(ttl, heartbeat)
        self.table = lease_table(table, schema)
        self.lock_id = lock_id
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.display_name = f"{schema}.{self.table.name}" if schema else self.table.name
        self.lock = f"lease in {self.display_name}"

    # --- the strategy -------------------------------------------------------------

    def hold(
        self,
        engine: Engine,
        *,
        timeout: float,
        on_wait: Callable[[str | None], None] | None = None,
        watchdog: Watchdog | None = None,
    ) -> AbstractContextManager[HeldLock]:
        return self._hold(engine, timeout, on_wait, watchdog)

    def holder(self, conn: Connection) -> str | None:
        holder = self.state(conn).holder
        return None if holder is None else str(holder)

    def state(self, conn: Connection) -> LockState:
        try:
            row = conn.execute(self._read, {"lease_id": self.lock_id}).first()
        except DBAPIError as exc:
            if sqlstate_of(exc) not in _UNDEFINED:
                raise
            row = None  # never used: free
        return LockState(self.name, self.lock, None if row is None else _holder(row))

    def remove(self, conn: Connection, holder: LockHolder) -> bool:
        t = self.table
        stmt = delete(t).where(t.c.lock_id == self.lock_id, t.c.run_id == holder.run_id)
        if holder.expired:
            stmt = stmt.where(t.c.expires_at <= func.now())
        return conn.execute(stmt).rowcount == 1

    # --- holding it -----------------------------------------------------------------

    @contextmanager
    def _hold(
        self,
        engine: Engine,
        timeout: float,
        on_wait: Callable[[str | None], None] | None,
        watchdog: Watchdog | None,
    ) -> Iterator[HeldLock]:
        owner = Owner.here()
        conn, waited = take_lock(
            engine, lambda c: self._acquire(c, owner, timeout, on_wait, watchdog), watchdog
        )
        heartbeat = _Heartbeat(engine, self, owner)
        try:
            heartbeat.start()
            yield HeldLease(conn, self, owner, waited, watchdog)
        finally:
            heartbeat.stop()
            self._let_go(conn, owner, watchdog)

    def _acquire(
        self,
        conn: Connection,
        owner: Owner,
        timeout: float,
        on_wait: Callable[[str | None], None] | None,
        watchdog: Watchdog | None,
    ) -> float:
        """Take the lease, or take over an expired one; poll with back-off up to
        ``timeout`` seconds while another run holds it."""
        start = time.monotonic()
        deadline = start + max(timeout, 0.0)
        delay = 0.05
        waiting = False
        while True:
            with guard(watchdog, conn, 3):
                row = self._try(conn, owner)
            behind_pooler(conn, row.backend)
            holder = None if row.run_id is None else _holder(row)
            if not row.won and holder is None:
                # Another run inserted it while this statement ran: ask who.
                with guard(watchdog, conn):
                    holder = self.state(conn).holder
            if row.won:
                if holder is not None:
                    log.warning("took over the expired migration lease of %s", holder)
                return time.monotonic() - start if waiting else 0.0
            if not waiting:
                waiting = True
                log.info("waiting for the migration lease, held by %s", holder or "another run")
                if on_wait is not None:
                    on_wait(None if holder is None else str(holder))
            now = time.monotonic()
            if now >= deadline:
                raise self._timeout(timeout, holder)
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, MAX_POLL)

    def _try(self, conn: Connection, owner: Owner) -> Row[Any]:
        """One try at the lease, creating its table (and schema) on first use."""
        params = self._params(owner)
        try:
            return conn.execute(self._take, params).one()
        except DBAPIError as exc:
            if sqlstate_of(exc) not in _UNDEFINED:
                raise
        self._create(conn)
        return conn.execute(self._take, params).one()

    def _create(self, conn: Connection) -> None:
        for statement in self._ddl():
            try:
                conn.execute(statement)
            except DBAPIError as exc:
                if sqlstate_of(exc) in _CREATE_RACE:
                    continue  # another run created it meanwhile
                if cause_of(exc, gone=conn.invalidated) is Cause.LOST:
                    raise
                error = QueryError(
                    f"could not create the lease table {self.display_name}: "
                    f"{str(exc.orig).strip().splitlines()[0]} [SQLSTATE {sqlstate_of(exc)}]. "
                    "Nothing was run; let the role create it (or create it once with a role "
                    "that may), or use --lock-strategy advisory on a direct URL.",
                    sqlstate_of(exc),
                )
                raise error from None

    def _ddl(self) -> list[ExecutableDDLElement]:
        create = CreateTable(self.table, if_not_exists=True)
        schema = self.table.schema
        return [CreateSchema(schema, if_not_exists=True), create] if schema else [create]

    def _timeout(self, timeout: float, holder: LockHolder | None) -> LockTimeoutError:
        until = ""
        if holder is not None and holder.expires_at is not None:
            until = f" (at {holder.expires_at.isoformat(sep=' ', timespec='seconds')})"
        return LockTimeoutError(
            self.lock_id,
            timeout,
            None if holder is None else str(holder),
            lock=self.lock,
            advice=f"if that run is gone, let its lease expire{until} or remove it with "
            "`sqlmig lock release --force`",
        )

    def renew(self, conn: Connection, owner: Owner) -> bool:
        """Extend ``owner``'s lease by ``ttl`` from now; False when it is not theirs."""
        row = conn.execute(self._renew, self._params(owner)).first()
        if row is None:
            return False
        behind_pooler(conn, row.backend)
        return True

    def _let_go(self, conn: Connection, owner: Owner, watchdog: Watchdog | None) -> None:
        """Delete the lease and return the connection, or close it and let the lease
        expire by itself (the network stalled, or the delete failed)."""
        released = False
        try:
            if watchdog is None or not watchdog.fired:
                with guard(watchdog, conn):
                    conn.execute(self._delete, self._params(owner))
                released = True
        except LOST:
            pass
        finally:
            if released:
                conn.close()
            else:
                log.warning(
                    "could not release the migration lease of run %s; it expires by itself "
                    "within %gs",
                    owner.run_id,
                    self.ttl,
                )
                discard(conn)

    # --- the statements, built once per lease --------------------------------------

    def _params(self, owner: Owner) -> dict[str, Any]:
        return {
            "lease_id": self.lock_id,
            "lease_run": owner.run_id,
            "lease_host": owner.host,
            "lease_pid": owner.pid,
            "lease_ttl": timedelta(seconds=self.ttl),
        }

    def _columns(self) -> list[Any]:
        t = self.table
        now = func.now()
        return [
            t.c.run_id,
            t.c.host,
            t.c.pid,
            t.c.application,
            t.c.acquired_at,
            t.c.heartbeat_at,
            t.c.expires_at,
            func.extract("epoch", now - t.c.heartbeat_at).label("heartbeat_age"),
            func.extract("epoch", t.c.expires_at - now).label("expires_in"),
        ]

    @cached_property
    def _take(self) -> Select[Any]:
        """Insert the lease, or take over an expired one, in one statement that also
        returns the lease found before it: its holder, for the wait or the takeover.

        Under concurrency the row's lock decides: a second taker re-reads the row the
        first one wrote, finds it live, and changes nothing.
        """
        t = self.table
        now = func.now()
        values = {
            "lock_id": bindparam("lease_id"),
            "run_id": bindparam("lease_run"),
            "host": bindparam("lease_host"),
            "pid": bindparam("lease_pid"),
            "application": func.current_setting("application_name"),
            "acquired_at": now,
            "heartbeat_at": now,
            "expires_at": now + bindparam("lease_ttl", type_=Interval),
        }
        row = insert(t).values(**values)
        taken = (
            row.on_conflict_do_update(
                index_elements=[t.c.lock_id],
                set_={name: row.excluded[name] for name in values if name != "lock_id"},
                where=t.c.expires_at <= now,
            )
            .returning(t.c.run_id)
            .cte("taken")
        )
        before = select(*self._columns()).where(t.c.lock_id == bindparam("lease_id")).cte("before")
        one = select(literal_column("1").label("one")).subquery("one")
        won = select(func.count()).select_from(taken).scalar_subquery()
        return select(
            (won > 0).label("won"), func.pg_backend_pid().label("backend"), *before.c
        ).select_from(one.outerjoin(before, true()))

    @cached_property
    def _renew(self) -> Any:
        t = self.table
        now = func.now()
        return (
            update(t)
            .where(t.c.lock_id == bindparam("lease_id"), t.c.run_id == bindparam("lease_run"))
            .values(heartbeat_at=now, expires_at=now + bindparam("lease_ttl", type_=Interval))
            .returning(t.c.expires_at, func.pg_backend_pid().label("backend"))
        )

    @cached_property
    def _delete(self) -> Any:
        t = self.table
        return delete(t).where(
            t.c.lock_id == bindparam("lease_id"), t.c.run_id == bindparam("lease_run")
        )

    @cached_property
    def _read(self) -> Select[Any]:
        return select(*self._columns()).where(self.table.c.lock_id == bindparam("lease_id"))


def _holder(row: Row[Any]) -> LockHolder:
    return LockHolder(
        pid=row.pid,
        application=row.application,
        client_addr=None,
        since=row.acquired_at,
        host=row.host,
        run_id=row.run_id,
        heartbeat_at=row.heartbeat_at,
        heartbeat_age_s=float(row.heartbeat_age),
        expires_at=row.expires_at,
        expires_in_s=float(row.expires_in),
    )


class HeldLease(HeldLock):
    """A lease held for a run; the lock's connection reads the run's state as with the
    advisory lock, and :meth:`ensure_held` costs a round trip before each migration."""

    def __init__(
        self,
        conn: Connection,
        lease: LeaseLock,
        owner: Owner,
        waited: float,
        watchdog: Watchdog | None,
    ) -> None:
        super().__init__(conn, lease.lock_id, waited, watchdog)
        self.lease = lease
        self.owner = owner

    def ensure_held(self) -> None:
        """Renew the lease, or raise LockLostError when another run took it over (or it
        was released by force): nothing more may run then."""
        try:
            with guard(self.watchdog, self.connection, 2):
                if self.lease.renew(self.connection, self.owner):
                    return
                now = self.lease.state(self.connection).holder
        except LOST:
            raise self.lost() from None
        by = f"taken over by {now}" if now is not None else "removed"
        raise LockLostError(
            f"the migration lease of this run ({self.owner.run_id}, {self.lease.lock}) was "
            f"{by}, so no further migration was started. Its heartbeat had stopped renewing "
            f"it for longer than its time to live ({self.lease.ttl:g}s), or `sqlmig lock "
            "release` removed it. Run `sqlmig status` to see the state, then run again."
        )


class _Heartbeat:
    """Renews a lease every ``heartbeat`` seconds from a thread, on a connection of its
    own (opened at the first renewal: a short run never needs it) until stopped.

    A failed renewal is logged and tried again: the check before each migration is
    what stops a run whose lease is gone.
    """

    def __init__(self, engine: Engine, lease: LeaseLock, owner: Owner) -> None:
        self.engine = engine
        self.lease = lease
        self.owner = owner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="sqlmig-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # A renewal stuck on a stalled network is left behind: the lease expires.
            self._thread.join(timeout=self.lease.heartbeat)

    def _beat(self) -> None:
        conn: Connection | None = None
        try:
            while not self._stop.wait(self.lease.heartbeat):
                try:
                    if conn is None:
                        conn = connect(self.engine)
                        conn.execution_options(isolation_level="AUTOCOMMIT")
                        enable_keepalives(conn)
                    if not self.lease.renew(conn, self.owner):
                        log.warning(
                            "the migration lease of run %s was taken over; the run stops "
                            "before its next migration",
                            self.owner.run_id,
                        )
                        return
                except (DBAPIError, SqlmigError) as exc:
                    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
                    log.warning(
                        "could not renew the migration lease (%s); trying again in %gs",
                        reason[0] if reason else type(exc).__name__,
                        self.lease.heartbeat,
                    )
                    if conn is not None:
                        discard(conn)
                        conn = None
        finally:
            if conn is not None:
                conn.close()

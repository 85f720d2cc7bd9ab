"""Many databases or tenant schemas, one command: bounded, resumable, and reported.

A fleet is a list of targets, each a database URL and, for schema-per-tenant, the
schema whose tracking table and ``search_path`` its run uses. Each target gets a run
of its own (its lock, its two connections, its transactions), exactly as a single
``sqlmig up`` would; nothing of one target depends on another. Threads in one
process run up to ``jobs`` targets at once, and never more than ``budget``
connections to one server, so 500 tenants never mean 1000 sessions.

Every target ends in one state (:class:`TargetState`), and a second run does only
what the first left: a run is exactly-once per target because each target's lock
and tracking table make it so, whichever process or shard runs it.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from sqlmig.database import Target as Server
from sqlmig.database import connect, new_engine, parse_url, safe_url, scrub
from sqlmig.errors import (
    LockTimeoutError,
    MigrationError,
    MigrationInterrupted,
    SqlmigError,
    UsageError,
    signal_name,
)
from sqlmig.events import Event, MigrationStarted
from sqlmig.lease import DEFAULT_HEARTBEAT, DEFAULT_TTL
from sqlmig.locking import MIGRATION_LOCK_ID
from sqlmig.outcome import Outcome
from sqlmig.plan import State, newest_applied
from sqlmig.source import Migration
from sqlmig.tracker import DEFAULT_TABLE, check_identifier

log = logging.getLogger("sqlmig")

COMMANDS = ("up", "down", "redo", "status", "validate")


@dataclass(frozen=True)
class Target:
    """One database, or one tenant schema of a database, to migrate."""

    name: str
    url: str = field(repr=False)  # may hold a password: shown only through ``where``
    schema: str | None = None

    @property
    def where(self) -> str:
        """The URL without its password, and the schema."""
        shown = safe_url(self.url)
        return f"{shown} schema {self.schema}" if self.schema else shown

    @property
    def lock_id(self) -> int:
        """The advisory lock of this target: each schema of a database has its own, so
        tenants on one database migrate side by side."""
        if self.schema is None:
            return MIGRATION_LOCK_ID
        digest = hashlib.sha256(self.schema.encode()).digest()
        return MIGRATION_LOCK_ID ^ int.from_bytes(digest[:8], "big") >> 2


class TargetState(str, enum.Enum):
    UP_TO_DATE = "up_to_date"  # nothing to do
    APPLIED = "applied"  # ran its migrations (rolled back, for down and redo)
    PENDING = "pending"  # status: migrations wait to be applied
    ATTENTION = "attention"  # status and validate: failed, edited or missing migrations
    FAILED = "failed"  # an error; ``error`` says which, where and what it left
    LOCK_BUSY = "lock_busy"  # another run held its lock past the lock timeout
    INTERRUPTED = "interrupted"  # stopped part-way: Ctrl-C, SIGTERM, or --on-error stop
    NOT_REACHED = "not_reached"  # never started: the fleet stopped first


@dataclass(frozen=True)
class TargetResult:
    """How one target ended."""

    target: Target
    state: TargetState
    before: str | None = None  # newest applied version before the run
    after: str | None = None  # and after it
    applied: tuple[str, ...] = ()  # versions this run applied (or rolled back)
    pending: int = 0  # status: migrations not yet applied
    duration_ms: int = 0
    error: SqlmigError | MigrationInterrupted | None = None

    @property
    def ok(self) -> bool:
        return self.state in (
            TargetState.UP_TO_DATE,
            TargetState.APPLIED,
            TargetState.PENDING,
        )


@dataclass(frozen=True)
class FleetResult:
    """Every target's result, in the order the targets were given."""

    command: str
    results: tuple[TargetResult, ...]
    duration_ms: int
    interrupted: str | None = None  # the signal, when the fleet was stopped by one

    @property
    def exit_code(self) -> int:
        """0 every target succeeded; 130 interrupted; 3 only lock timeouts stopped some;
        1 any failed (or was not reached after a failure)."""
        if self.interrupted:
            return 130
        bad = [r for r in self.results if not r.ok]
        if not bad:
            return 0
        if all(r.state is TargetState.LOCK_BUSY for r in bad):
            return 3
        return 1

    def count(self, state: TargetState) -> int:
        return sum(1 for r in self.results if r.state is state)


# --- targets ------------------------------------------------------------------------------


def load_targets(path: str | PathLike[str], environ: Mapping[str, str]) -> list[Target]:
    """The targets of a TOML file: ``[[targets]]`` tables of ``name``, ``url`` or
    ``url_env`` (the variable that holds it, so no secret is written down), and an
    optional ``schema``."""
    from sqlmig.config import read_toml

    where = Path(path)
    entries = read_toml(where).get("targets")
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{where} lists no targets: write [[targets]] tables (name, url)")
    targets: list[Target] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: target {number} is not a table")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where}: target {number} has no name")
        unknown = set(entry) - {"name", "url", "url_env", "schema"}
        if unknown:
            raise UsageError(
                f"{where}: target {name!r} has unknown keys {', '.join(sorted(unknown))}; "
                "a target has name, url or url_env, and schema"
            )
        url = _target_url(where, name, entry, environ)
        schema = entry.get("schema")
        if schema is not None and not isinstance(schema, str):
            raise UsageError(f"{where}: the schema of target {name!r} is not a string")
        targets.append(_checked(Target(name, url, schema), f" (target {name!r} in {where})"))
    _unique(targets, str(where))
    return targets


def _target_url(where: Path, name: str, entry: dict[str, Any], environ: Mapping[str, str]) -> str:
    url, env = entry.get("url"), entry.get("url_env")
    if (url is None) == (env is None):
        raise UsageError(f"{where}: target {name!r} needs exactly one of url and url_env")
    if env is not None:
        if not isinstance(env, str) or env not in environ:
            raise UsageError(
                f"{where}: target {name!r} takes its URL from ${env}, which is not set"
            )
        url = environ[env]
    if not isinstance(url, str):
        raise UsageError(f"{where}: the url of target {name!r} is not a string")
    parse_url(url)  # a bad URL is refused here, before anything runs, and never shown
    return url


def databases_matching(url: str, pattern: str) -> list[Target]:
    """Every database on the server of ``url`` whose name matches the shell-style
    ``pattern`` (``tenant_*``), read from ``pg_database``."""
    rows = _query(
        url,
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1",
    )
    base = parse_url(url)
    return [
        Target(name, base.set(database=name).render_as_string(hide_password=False))
        for name in rows
        if fnmatch.fnmatchcase(name, pattern)
    ]


def schemas_matching(url: str, pattern: str) -> list[Target]:
    """Every schema of the database of ``url`` whose name matches ``pattern``, one
    target each (the system's own schemas never)."""
    names = _query(
        url,
        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
        "AND nspname <> 'information_schema' ORDER BY 1",
    )
    return [_checked(Target(n, url, n)) for n in names if fnmatch.fnmatchcase(n, pattern)]


def schemas_from(url: str, sql: str) -> list[Target]:
    """One target per schema name the query returns (its first column)."""
    return [_checked(Target(name, url, name)) for name in _query(url, sql)]


def shard(targets: Sequence[Target], index: int, count: int) -> list[Target]:
    """The ``index``-th (1-based) of ``count`` stable parts of the targets, by a hash of
    each name: N workers, each given its K, split a fleet with no coordinator."""
    if not 1 <= index <= count:
        raise UsageError(f"--shard {index}/{count}: K must be from 1 to N")
    return [t for t in targets if _bucket(t.name, count) == index - 1]


def _bucket(name: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count


def _query(url: str, sql: str) -> list[str]:
    engine = new_engine(url, pool_size=1)
    try:
        with connect(engine) as conn:
            return [str(row[0]) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _checked(target: Target, origin: str = "") -> Target:
    if target.schema is not None:
        check_identifier("schema", target.schema, origin)
    return target


def _unique(targets: Sequence[Target], where: str) -> None:
    seen: set[str] = set()
    twice: set[str] = set()
    for t in targets:
        (twice if t.name in seen else seen).add(t.name)
    if twice:
        raise UsageError(f"{where}: target names must differ; repeated: {', '.join(sorted(twice))}")


# --- running --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetOptions:
    """How each target's run is made (as for one ``sqlmig`` command) and how many run."""

    directory: Path
    table: str = DEFAULT_TABLE
    jobs: int = 4
    budget: int = 20  # connections to one server, at most
    on_error: str = "stop"  # or "continue"
    lock_timeout: float = 60.0
    statement_timeout: float | None = None
    migration_lock_timeout: float | None = None
    lock_strategy: str = "advisory"  # or "table": a lease per target, through a pooler
    lock_ttl: float = DEFAULT_TTL
    lock_heartbeat: float = DEFAULT_HEARTBEAT


Progress = Callable[[TargetResult, int, int], None]
"""Called as each target ends: its result, how many ended, how many in all."""


def migrate_fleet(
    targets: Sequence[Target],
    directory: str | PathLike[str],
    *,
    command: str = "up",
    jobs: int = 4,
    on_error: str = "stop",
    budget: int = 20,
    table: str = DEFAULT_TABLE,
    lock_timeout: float = 60.0,
    statement_timeout: float | None = None,
    migration_lock_timeout: float | None = None,
    lock_strategy: str = "advisory",
    lock_ttl: float = DEFAULT_TTL,
    lock_heartbeat: float = DEFAULT_HEARTBEAT,
    progress: Progress | None = None,
) -> FleetResult:
    """Run ``command`` (up, down, redo, status or validate) on every target.

    At most ``jobs`` targets at once, and at most ``budget`` connections to any one
    server (each target in flight holds two: its lock's and its work). With
    ``on_error="stop"`` no target starts after one fails and those in flight stop
    after their current migration; with ``"continue"`` every target is tried. An
    interrupt (Ctrl-C, SIGTERM) cancels what runs (its transaction rolls back) and the
    result says where each target stands. ``down`` rolls back one migration per
    target. The files are checked once, before any target starts. ``lock_strategy``
    and its TTL and heartbeat mean what they mean to a Migrator: each target gets its
    own lock either way (an advisory key, or a lease keyed by it, per schema).
    """
    from sqlmig.validation import validate_files

    if command not in COMMANDS:
        raise UsageError(f"a fleet runs {', '.join(COMMANDS)}, not {command!r}")
    if jobs < 1 or budget < 2:
        raise UsageError(
            f"jobs={jobs}, budget={budget}: jobs must be 1 or more and budget 2 or more",
            options=("jobs", "budget"),
        )
    if on_error not in ("stop", "continue"):
        raise UsageError(
            f"on_error={on_error!r}: it is 'stop' or 'continue'", options=("on_error",)
        )
    _unique(targets, "the fleet")
    options = FleetOptions(
        Path(directory),
        table,
        jobs,
        budget,
        on_error,
        lock_timeout,
        statement_timeout,
        migration_lock_timeout,
        lock_strategy,
        lock_ttl,
        lock_heartbeat,
    )
    files = validate_files(options.directory)  # once for all: the same files everywhere
    return _Fleet(targets, command, options, files, progress).run()


class _Fleet:
    """One fleet run: the threads, the engines, the budget, and how it stops."""

    def __init__(
        self,
        targets: Sequence[Target],
        command: str,
        options: FleetOptions,
        files: list[Migration],
        progress: Progress | None,
    ) -> None:
        self.targets = list(targets)
        self.files = files
        self.command = command
        self.options = options
        self.progress = progress
        self.stopping = threading.Event()  # no target starts, none goes on, once set
        self.engines = _Engines(self.targets, options)
        self.results: dict[int, TargetResult] = {}
        self.ended = 0

    def run(self) -> FleetResult:
        start = time.monotonic()
        interrupted: str | None = None
        pool = ThreadPoolExecutor(self.options.jobs, thread_name_prefix="sqlmig-fleet")
        futures = {pool.submit(self._one, t): i for i, t in enumerate(self.targets)}
        try:
            pending = set(futures)
            while pending:  # short waits: Ctrl-C and SIGTERM land in this thread
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    self._ended(futures[future], future.result())
        except KeyboardInterrupt as exc:
            interrupted = signal_name(exc) or "SIGINT"
            self.stopping.set()
            self.engines.cancel_all()  # what runs now is cancelled, and rolls back
            pool.shutdown(wait=True, cancel_futures=True)  # those not started stay so
            for future, index in futures.items():
                if index not in self.results and not future.cancelled():
                    self._ended(index, future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.engines.dispose()
        results = tuple(
            self.results.get(i, TargetResult(t, TargetState.NOT_REACHED))
            for i, t in enumerate(self.targets)
        )
        return FleetResult(self.command, results, _ms_since(start), interrupted)

    def _ended(self, index: int, result: TargetResult) -> None:
        self.results[index] = result
        self.ended += 1
        if self.progress is not None:
            self.progress(result, self.ended, len(self.targets))

    def _one(self, target: Target) -> TargetResult:
        result = self._attempt(target)
        failed = result.state in (TargetState.FAILED, TargetState.INTERRUPTED)
        if failed and self.options.on_error == "stop":
            self.stopping.set()  # here, before this thread takes the next target
        return result

    def _attempt(self, target: Target) -> TargetResult:
        if self.stopping.is_set():
            return TargetResult(target, TargetState.NOT_REACHED)
        start = time.monotonic()
        with self.engines.slot(target, self.stopping) as engine:
            if engine is None:
                return TargetResult(target, TargetState.NOT_REACHED)
            try:
                result = self._run(target, engine)
            except MigrationInterrupted as exc:
                done = tuple(r.version for r in exc.completed)
                if not done and exc.outcome is Outcome.BETWEEN:  # stopped before its first
                    return TargetResult(target, TargetState.NOT_REACHED)
                return TargetResult(target, TargetState.INTERRUPTED, applied=done, error=exc)
            except LockTimeoutError as exc:
                return TargetResult(target, TargetState.LOCK_BUSY, error=exc)
            except SqlmigError as exc:
                state = TargetState.FAILED
                if self.stopping.is_set() and isinstance(exc, MigrationError):
                    state = TargetState.INTERRUPTED  # cancelled by the fleet's interrupt
                done = tuple(r.version for r in exc.completed)
                return TargetResult(target, state, applied=done, error=exc)
            except Exception as exc:  # a bug or a driver error: this target's, not all's
                return TargetResult(target, TargetState.FAILED, error=_unexpected(target, exc))
        return replace(result, duration_ms=_ms_since(start))

    def _run(self, target: Target, engine: Engine) -> TargetResult:
        from sqlmig.migrator import Migrator

        o = self.options
        migrator = Migrator(
            engine,
            o.directory,
            table=o.table,
            schema=target.schema,
            search_path=target.schema,
            lock_id=target.lock_id,
            lock_strategy=o.lock_strategy,
            lock_ttl=o.lock_ttl,
            lock_heartbeat=o.lock_heartbeat,
            lock_timeout=o.lock_timeout,
            statement_timeout=o.statement_timeout,
            migration_lock_timeout=o.migration_lock_timeout,
            on_event=self._stop_between_migrations,
            files=self.files,
        )
        if self.command in ("status", "validate"):
            states = migrator.status() if self.command == "status" else migrator.validate()
            newest = newest_applied(states)
            waiting = sum(1 for s in states if s.state in (State.PENDING, State.ROLLED_BACK))
            attention = any(s.state in (State.FAILED, State.CHANGED, State.MISSING) for s in states)
            state = (
                TargetState.ATTENTION
                if attention
                else TargetState.PENDING
                if waiting
                else TargetState.UP_TO_DATE
            )
            return TargetResult(target, state, newest, newest, pending=waiting)
        run = (
            migrator.up()
            if self.command == "up"
            else migrator.down(steps=1)
            if self.command == "down"
            else migrator.redo()
        )
        versions = tuple(r.version for r in run.migrations)
        after = run.before
        if self.command == "up" and versions:
            after = versions[-1]
        elif self.command == "down" and versions:
            after = newest_applied(migrator.status())
        state = TargetState.APPLIED if versions else TargetState.UP_TO_DATE
        return TargetResult(target, state, run.before, after, versions)

    def _stop_between_migrations(self, event: Event) -> None:
        """A target in flight goes no further than the migration it is in once the
        fleet stops: the interrupt lands between two migrations of its run."""
        if isinstance(event, MigrationStarted) and self.stopping.is_set():
            raise KeyboardInterrupt("the fleet stopped")


def _unexpected(target: Target, exc: Exception) -> SqlmigError:
    password = make_url(target.url).password
    text_value = scrub(str(getattr(exc, "orig", None) or exc), str(password) if password else None)
    return SqlmigError(f"unexpected {type(exc).__name__}: {text_value.strip().splitlines()[0]}")


def _ms_since(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


class _Engines:
    """Engines by URL, and the connection budget by server.

    Targets that share a URL (tenant schemas of one database) share an engine whose
    pool holds two connections for each of them that may run at once; a target
    alone on its URL gets a pool of two, disposed once it ends. A target takes its
    server's slot before it connects: a server's slots are its budget halved.
    """

    def __init__(self, targets: Sequence[Target], options: FleetOptions) -> None:
        self.options = options
        self.lock = threading.Lock()
        self.users: dict[str, int] = {}
        for t in targets:
            self.users[t.url] = self.users.get(t.url, 0) + 1
        self.engines: dict[str, Engine] = {}
        self.slots: dict[tuple[str, int | None], threading.BoundedSemaphore] = {}
        self.live: set[Any] = set()  # checked-out driver connections, to cancel

    def _slots(self, url: str) -> threading.BoundedSemaphore:
        server = Server.of(make_url(url))
        key = (server.host, server.port)
        with self.lock:
            if key not in self.slots:
                self.slots[key] = threading.BoundedSemaphore(max(self.options.budget // 2, 1))
            return self.slots[key]

    @contextmanager
    def slot(self, target: Target, stopping: threading.Event) -> Iterator[Engine | None]:
        """The target's engine once its server has room, or None if the fleet stops
        first."""
        slots = self._slots(target.url)
        while not slots.acquire(timeout=0.1):
            if stopping.is_set():
                self._release(target.url)
                yield None
                return
        try:
            yield None if stopping.is_set() else self._engine(target.url)
        finally:
            self._release(target.url)
            slots.release()

    def _engine(self, url: str) -> Engine:
        with self.lock:
            engine = self.engines.get(url)
            if engine is None:
                concurrent = min(self.users[url], self.options.jobs, self.options.budget // 2)
                engine = new_engine(url, pool_size=2 * max(concurrent, 1), check=False)
                event.listen(engine, "checkout", self._checked_out)
                event.listen(engine, "checkin", self._checked_in)
                self.engines[url] = engine
            return engine

    def _release(self, url: str) -> None:
        with self.lock:
            self.users[url] -= 1
            engine = self.engines.pop(url, None) if self.users[url] == 0 else None
        if engine is not None:
            engine.dispose()

    def _checked_out(self, dbapi: Any, record: Any, proxy: Any) -> None:
        with self.lock:
            self.live.add(dbapi)

    def _checked_in(self, dbapi: Any, record: Any) -> None:
        with self.lock:
            self.live.discard(dbapi)

    def cancel_all(self) -> None:
        """Ask the server to cancel what every connection in use is running."""
        with self.lock:
            live = list(self.live)
        for conn in live:
            try:
                conn.cancel_safe(timeout=5)
            except Exception:  # already gone: nothing to cancel
                log.debug("could not cancel a statement", exc_info=True)

    def dispose(self) -> None:
        with self.lock:
            engines, self.engines = list(self.engines.values()), {}
        for engine in engines:
            engine.dispose()


def targets_of(
    *,
    targets_file: str | None,
    databases_matching_pattern: str | None,
    schemas_sql: str | None,
    schemas_pattern: str | None,
    url: str | None,
    environ: Mapping[str, str],
) -> list[Target] | None:
    """The fleet the options name, or None when they name none (a single database)."""
    given = [
        x is not None
        for x in (targets_file, databases_matching_pattern, schemas_sql, schemas_pattern)
    ]
    if sum(given) > 1:
        raise UsageError(
            "give one of --targets, --databases-matching, --schemas-from and --schemas-matching"
        )
    if targets_file is not None:
        return load_targets(targets_file, environ)
    if not any(given):
        return None
    if url is None:
        raise UsageError("--databases-matching and --schemas-* need a database URL to start from")
    if databases_matching_pattern is not None:
        return databases_matching(url, databases_matching_pattern)
    if schemas_sql is not None:
        return schemas_from(url, schemas_sql)
    assert schemas_pattern is not None
    return schemas_matching(url, schemas_pattern)


def parse_shard(text_value: str) -> tuple[int, int]:
    """``K/N`` as two numbers."""
    k, slash, n = text_value.partition("/")
    if not slash or not k.isdigit() or not n.isdigit() or int(n) < 1:
        raise UsageError(f"--shard takes K/N, such as 2/5, not {text_value!r}")
    return int(k), int(n)

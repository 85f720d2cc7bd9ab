"""What can go wrong, as a small typed hierarchy that maps onto exit codes.

Every error carries the structured fields an operator needs (host, version,
file, line, holder pid...) and renders a message that says what happened,
where, and what to do next. No message ever contains a password: URLs are
rendered through :func:`sqlmig.database.safe_url` before they reach an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlmig.outcome import Outcome


class SqlmigError(Exception):
    """Base of every error sqlmig raises on purpose.

    A message names an option as a Python caller passes it (``allow_drift=True``,
    ``directory=DIR``) and lists it in ``options``, so that the command line can show
    its own flag there instead (``--allow-drift``, ``--dir DIR``: sqlmig.clikit.FLAGS)
    without touching anything else the message quotes (SQL, paths, server text).
    """

    exit_code: ClassVar[int] = 1
    # What a run finished before it stopped on this error (MigrationResult values).
    completed: tuple[Any, ...] = ()
    # The keyword arguments the message names, as ``name=True`` or ``name=VALUE``.
    options: tuple[str, ...] = ()

    def __init__(self, *args: object, options: tuple[str, ...] = ()) -> None:
        super().__init__(*args)
        if options:
            self.options = options


# --- usage and configuration (exit 2) -------------------------------------


class UsageError(SqlmigError):
    """The command, an option, the configuration or a URL is wrong."""

    exit_code = 2


class InvalidURLError(UsageError):
    """The database URL cannot be parsed or names something sqlmig cannot use."""


class TransactionPoolerError(UsageError):
    """The advisory lock was asked for through a transaction pooler, where a session
    lock would be left on a pooled server connection (or shared by two runs)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(
            "this URL goes through a transaction pooler; use --lock-strategy table or a "
            f'direct URL (lock_strategy="table" from Python). {detail} Nothing was run.'
        )


class InvalidIdentifierError(UsageError):
    """A table or schema name that sqlmig refuses to use."""


class IncompatibleTableError(UsageError):
    """A table with the tracking table's name exists with another shape."""

    options = ("table",)

    def __init__(
        self, table: str, columns: list[str], expected: list[str], tool: str | None = None
    ) -> None:
        self.table = table
        self.columns = columns
        self.expected = expected
        self.tool = tool  # the migration tool whose table it looks like, if any
        whose = (
            f"It looks like {tool}'s: take the database over with `sqlmig adopt --from {tool}` "
            "(Migrator.adopt), or"
            if tool
            else "It probably belongs to another migration tool;"
        )
        super().__init__(
            f"table {table} exists but is not a sqlmig tracking table: it has columns "
            f"({', '.join(columns)}), sqlmig needs ({', '.join(expected)}). It was left "
            f"unchanged. {whose} choose another table name with table=NAME."
        )


# --- the database cannot be reached (exit 4) ------------------------------


class DatabaseUnavailableError(SqlmigError):
    """A connection to the database could not be made."""

    exit_code = 4

    def __init__(
        self,
        reason: str,
        *,
        host: str,
        port: int | None,
        database: str,
        advice: str,
        detail: str = "",
    ) -> None:
        self.host = host
        self.port = port
        self.database = database
        self.detail = detail
        where = f"{host}:{port}" if port else host
        text = f"{reason} (server {where}, database {database!r})"
        if detail:
            text += f": {detail}"
        super().__init__(f"{text}. {advice}")


class UnknownHostError(DatabaseUnavailableError):
    pass


class RefusedConnectionError(DatabaseUnavailableError):
    pass


class AuthenticationError(DatabaseUnavailableError):
    pass


class DatabaseNotFoundError(DatabaseUnavailableError):
    pass


class ConnectTimeoutError(DatabaseUnavailableError):
    pass


class ConnectionStalledError(DatabaseUnavailableError):
    """The server stopped answering on an open connection while no migration ran."""


# --- the migration lock (exit 3; lost during a run, exit 4) ---------------


class LockError(SqlmigError):
    """The migration lock could not be had, or was lost."""

    exit_code = 3


class LockTimeoutError(LockError):
    """Another session held the lock for longer than we were willing to wait.

    ``lock`` names the lock ("advisory lock N", "lease in TABLE"); ``advice`` is what
    to do about a stuck holder, which differs between the strategies.
    """

    options = ("lock_timeout",)

    def __init__(
        self,
        lock_id: int,
        timeout: float,
        holder: str | None,
        *,
        lock: str | None = None,
        advice: str = "end the holder with pg_terminate_backend(pid) if it is stuck",
    ) -> None:
        self.lock_id = lock_id
        self.timeout = timeout
        self.holder = holder
        waited = "at once" if timeout <= 0 else f"within {timeout:g}s"
        who = holder or "another session (PostgreSQL does not show which)"
        super().__init__(
            f"could not take the migration lock ({lock or f'advisory lock {lock_id}'}) "
            f"{waited}: it is held by {who}. Wait for that run to finish, raise "
            f"lock_timeout=SECONDS, or {advice}."
        )


class LockHeldError(LockError):
    """``sqlmig lock release`` refused: the lock is live, or the holder is this very
    command's session. Exit 1, like a check that failed: nothing was changed."""

    exit_code = 1


class LockLostError(LockError):
    """The lock connection died during a run; nothing more may run. Exit 4 like a lost
    work connection: the same outage must not give two codes."""

    exit_code = 4


# --- migration files and state (exit 1) -----------------------------------


class ValidationError(SqlmigError):
    """Migration files or recorded state fail a check; nothing was run."""


@dataclass(frozen=True)
class FileProblem:
    """One thing wrong with one file in the migrations directory."""

    path: str
    problem: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.problem}"


class MigrationFileError(ValidationError):
    """Files in the migrations directory are not valid migrations; all are listed."""

    def __init__(self, problems: list[FileProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(
            f"{len(problems)} {noun} in the migration files; nothing was run. "
            f"Fix the files and run again:\n{lines}"
        )


class StateError(ValidationError):
    """The recorded state forbids the command (drift, out of order, needs repair...).

    ``problems`` holds one line per offending migration; the message ends with what
    to do next.
    """

    def __init__(
        self, summary: str, problems: list[str], advice: str, *, options: tuple[str, ...] = ()
    ) -> None:
        self.problems = problems
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(f"{summary}; nothing was run:{lines}\n{advice}", options=options)


class AlreadyTrackedError(StateError):
    """``baseline`` refused: the tracking table already records migrations.

    ``table`` and ``recorded`` (how many rows) let a caller that baselines on its own
    behalf (``alembic_compat.adopt``) say so in its own words.
    """

    def __init__(self, table: str, recorded: int, problems: list[str]) -> None:
        self.table = table
        self.recorded = recorded
        super().__init__(
            f"cannot baseline: the tracking table {table} already records migrations",
            problems,
            "baseline is for a database that sqlmig has never migrated.",
        )


class LintError(ValidationError):
    """The lint before ``up`` found what its level stops at; nothing was run."""

    def __init__(self, problems: list[str], level: str) -> None:
        self.problems = problems
        lines = "".join(f"\n  {p}" for p in problems)
        noun = "finding" if len(problems) == 1 else "findings"
        super().__init__(
            f"the lint found {len(problems)} {noun} at or above {level} in the migrations "
            f"to run; nothing was run:{lines}\nMake them safe, silence one that is not with "
            'a `-- squawk-ignore RULE` comment above it, or set lint = "warn" to report '
            "findings without stopping."
        )


class AdoptError(ValidationError):
    """A database another tool migrated cannot be taken over as it is; nothing was changed.

    ``problems`` holds one line per offending version; the message ends with what to do.
    """

    def __init__(
        self,
        summary: str,
        advice: str,
        problems: list[str] | None = None,
        *,
        options: tuple[str, ...] = (),
    ) -> None:
        self.problems = problems or []
        lines = "".join(f"\n  {p}" for p in self.problems)
        super().__init__(
            f"cannot adopt: {summary}; nothing was changed.{lines}\n{advice}", options=options
        )


class MigrationError(SqlmigError):
    """A migration's SQL failed on the server; says where, what, and what state is left.

    ``outcome`` (sqlmig.outcome.Outcome) is what the failure left of the migration;
    ``state`` words it, with what to do next. ``blockers`` (sqlmig.lockwait.Blocker):
    the sessions it waited for when it gave up on a table lock.
    """

    def __init__(
        self,
        *,
        version: str,
        path: str,
        direction: str,
        message: str,
        sqlstate: str | None = None,
        line: int | None = None,
        column: int | None = None,
        detail: str | None = None,
        hint: str | None = None,
        excerpt: str | None = None,
        constraint: str | None = None,
        state: str = "",
        outcome: Outcome | None = None,
        blockers: tuple[Any, ...] = (),
    ) -> None:
        self.version = version
        self.path = path
        self.direction = direction
        self.sqlstate = sqlstate
        self.line = line
        self.column = column
        self.server_message = message
        self.detail = detail
        self.hint = hint
        self.excerpt = excerpt
        self.constraint = constraint
        self.state = state
        self.outcome = outcome
        self.blockers = blockers
        where = path if line is None else f"{path}:{line}:{column}"
        code = f" [SQLSTATE {sqlstate}]" if sqlstate else ""
        text = f"migration {version} ({direction}) failed at {where}: {message}{code}"
        for label, value in (("DETAIL", detail), ("HINT", hint)):
            if value:
                text += f"\n{label}: {value}"
        if excerpt:
            text += f"\n{excerpt}"
        if state:
            text += f"\n{state}"
        super().__init__(text)


class ConnectionLostError(MigrationError):
    """The connection died (terminated, server restart, network) or stalled while a
    migration ran; the message says what state that left. Exit 4, like a database that
    cannot be reached: run again once it answers, after `sqlmig status` if asked to."""

    exit_code = 4

    def __init__(self, *, stalled: bool, **fields: Any) -> None:
        self.stalled = stalled
        super().__init__(**fields)


class ConcurrentRunError(SqlmigError):
    """Another run recorded the same migration while this one ran it."""


class QueryError(SqlmigError):
    """The server refused one of sqlmig's own queries (reading the tracking table, say)."""

    def __init__(self, message: str, sqlstate: str | None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


# --- interrupted (exit 130) ------------------------------------------------------


class MigrationInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; the message says what state it left.

    A KeyboardInterrupt rather than a SqlmigError, so an application's ``except
    Exception`` never swallows a Ctrl-C. ``outcome`` (sqlmig.outcome.Outcome) is what
    it left of the migration in progress, ``between`` when none was. By the time it
    reaches the caller the lock is released and every connection is back in the pool.
    """

    exit_code: ClassVar[int] = 130

    def __init__(
        self,
        message: str,
        *,
        version: str | None,
        direction: str | None,
        outcome: Outcome,
        transactional: bool | None,
        signal: str | None,
        completed: tuple[Any, ...] = (),
    ) -> None:
        self.version = version
        self.direction = direction
        self.outcome = outcome
        self.transactional = transactional
        self.signal = signal
        self.completed = completed
        super().__init__(message)

    @classmethod
    def between(
        cls, interrupt: BaseException, what: str, completed: tuple[Any, ...] = ()
    ) -> MigrationInterrupted:
        """An interrupt while no migration was in progress; ``what`` says what was."""
        from sqlmig.outcome import Outcome

        signal = signal_name(interrupt)
        by = f"interrupted by {signal}" if signal else "interrupted"
        return cls(
            f"{by} {what}",
            version=None,
            direction=None,
            outcome=Outcome.BETWEEN,
            transactional=None,
            signal=signal,
            completed=completed,
        )


def signal_name(interrupt: BaseException) -> str | None:
    """The signal's name when the interrupt carries one: the CLI raises
    ``KeyboardInterrupt("SIGTERM")``; Python's own Ctrl-C carries nothing."""
    name = interrupt.args[0] if interrupt.args else None
    return name if isinstance(name, str) and name.startswith("SIG") else None


# --- schema dumps ----------------------------------------------------------------


class PgDumpUnusableError(UsageError):
    """No pg_dump was found that can dump this server (none, or all too old).

    ``server`` is the server's version (major, minor); ``problems`` says, for each
    pg_dump tried, why it would not do.
    """

    def __init__(self, server: tuple[int, int], problems: list[str]) -> None:
        self.server = server
        self.problems = problems
        major = server[0]
        listed = "".join(f"\n  {p}" for p in problems) or " no pg_dump on PATH"
        super().__init__(
            f"no pg_dump can dump this server, PostgreSQL {major}.{server[1]}: pg_dump "
            f"refuses a server newer than itself. Tried:{listed}\nPut a pg_dump {major} or "
            f"newer first on PATH (on Debian and Ubuntu: the postgresql-client-{major} package)."
        )


class SchemaDumpError(SqlmigError):
    """pg_dump ran and failed; the message carries what it said."""


class SchemaFileDiffersError(ValidationError):
    """The committed schema file is not what the migrations produce.

    ``problems`` holds the lines of a unified diff, committed file first.
    """

    def __init__(self, summary: str, problems: list[str], advice: str) -> None:
        self.problems = problems
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(f"{summary}:{lines}\n{advice}")

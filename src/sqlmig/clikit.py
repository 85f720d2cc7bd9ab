"""What every ``sqlmig`` command shares, sqlmig's own and a plugin's.

The global options' state (:class:`Cli`), :func:`run` that turns errors into one
message and their exit code (worded with the command line's flags: :data:`FLAGS`),
and :func:`run_plugin`, which runs a command another
package provides through the ``sqlmig.commands`` entry points (``alembic_compat``
provides ``sqlmig alembic``). A plugin imports these from here, never from
:mod:`sqlmig.cli`, so neither imports the other.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import typer

from sqlmig.errors import MigrationInterrupted, SqlmigError, UsageError

if TYPE_CHECKING:
    from sqlmig.config import Settings

PLUGINS = "sqlmig.commands"
"""The entry-point group of commands other packages add: name = "module:function", a
function that returns the command's typer app (see :func:`run_plugin`)."""


FLAGS: Mapping[str, str] = {
    "directory": "--dir",
    "table": "--table",
    "lock_timeout": "--lock-timeout",
    "steps": "--steps",
    "target": "--to",
    "allow_out_of_order": "--allow-out-of-order",
    "allow_drift": "--allow-drift",
    "single_transaction": "--single-transaction",
    "jobs": "--jobs",
    "budget": "--connection-budget",
    "on_error": "--on-error",
    "from_table": "--from-table",
    "rename_to": "--rename-to",
    "keep": "--keep",
}
"""The library's keyword arguments and the flags that set them. A library error words
an option as a Python caller passes it and lists it in ``options``
(:class:`sqlmig.errors.SqlmigError`); :func:`in_flags` shows the flag instead. A
plugin adds its own with ``run(..., flags={**FLAGS, ...})``."""


def in_flags(exc: BaseException, flags: Mapping[str, str] = FLAGS) -> str:
    """The error's message with each option it names as the command line's flag:
    ``allow_drift=True`` becomes ``--allow-drift``, ``directory=DIR`` ``--dir DIR``."""
    text = str(exc)
    named: tuple[str, ...] = getattr(exc, "options", ())
    if not named:
        return text

    def flag(match: re.Match[str]) -> str:
        return flags[match[1]] if match[2] else f"{flags[match[1]]} "

    # name=True, whatever follows it, is the flag alone; name=VALUE is the flag and VALUE.
    return re.sub(rf"\b({'|'.join(named)})=(?:(True)\b|(?=\S))", flag, text)


class Format(str, Enum):
    text = "text"
    json = "json"


@dataclass
class Cli:
    """What the global options said; settings are resolved when a command needs them."""

    given: dict[str, Any]
    config: Path | None
    format: Format
    verbose: bool
    quiet: bool
    color: bool
    command: str = ""
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.format is Format.json

    def settings(self) -> Settings:
        if self._settings is None:
            from sqlmig.config import environment, resolve

            self._settings = resolve(self.given, environment(), Path.cwd(), self.config)
        return self._settings

    def url(self) -> str:
        settings = self.settings()
        url = settings.database_url
        if not url and settings.database_url_env:
            raise UsageError(
                f"{settings.config_file} says the database URL is in "
                f"${settings.database_url_env}, but it is not set"
            )
        if not url:
            raise UsageError(
                "no database URL: pass --database-url, set SQLMIG_DATABASE_URL or "
                "DATABASE_URL, or name the variable that holds it with database_url_env "
                "in sqlmig.toml"
            )
        return url

    def finish(self) -> None:
        """Called when a command's body ends, even on an error: undo what it started."""

    def waiting(self, holder: str | None) -> None:
        """Tell the operator the command waits for the migration lock."""
        if self.settings().lock_timeout <= 0:
            return  # no wait: the error that follows names the holder
        self.err(
            f"waiting up to {self.settings().lock_timeout:g}s for the migration lock, "
            f"held by {holder or 'another session'}"
        )

    def out(self, text: str) -> None:
        """A result line on stdout (never in JSON mode, where stdout holds one document)."""
        if not self.json and not self.quiet:
            print(text, flush=True)

    def err(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def emit(self, document: dict[str, Any]) -> None:
        from sqlmig.render import dump

        dump(document, sys.stdout)


C = TypeVar("C", bound=Cli)


def _state(ctx: typer.Context) -> Cli:
    cli = ctx.find_object(Cli)
    if cli is None:
        raise RuntimeError("a sqlmig command ran without sqlmig's global options")
    cli.command = ctx.info_name or ""
    return cli


def run(
    ctx: typer.Context, body: Callable[[C], int | None], *, flags: Mapping[str, str] = FLAGS
) -> NoReturn:
    """Run a command: errors become one clear message, in ``flags``' terms, and their
    exit code."""
    cli = cast(C, _state(ctx))  # what the root callback made: the Cli the body expects
    with _signals_as_interrupts():
        try:
            try:
                code = body(cli) or 0
            finally:
                cli.finish()
        except (SqlmigError, MigrationInterrupted) as exc:
            _fail(cli, exc, flags)
        except KeyboardInterrupt as exc:  # outside any run: nothing was in progress
            what = "while no migration was in progress. Run `sqlmig status` to see the state."
            _fail(cli, MigrationInterrupted.between(exc, what), flags)
        except Exception as exc:
            _fail(cli, _unexpected(cli, exc), flags)
    raise typer.Exit(code)


def run_plugin(ctx: typer.Context, name: str, missing: str) -> None:
    """Run ``sqlmig NAME ARGS...`` with the typer app that the ``NAME`` entry point in
    :data:`PLUGINS` returns, under the root context (so it shares the global options).

    The entry point is a function: it may raise a :class:`SqlmigError` (a dependency
    missing), reported like any command's. Exits 2 with ``missing`` (what to install)
    when there is no such entry point or its module cannot be imported.
    importlib.metadata is imported only here: it would add some 15 ms to every start.
    """
    try:
        command = typer.main.get_command(_plugin(name)())
    except ImportError:
        error: SqlmigError = UsageError(missing)
    except SqlmigError as exc:
        error = exc
    else:
        root = ctx.parent or ctx
        with command.make_context(name, list(ctx.args), parent=root) as sub:
            command.invoke(sub)
        return

    def fail(cli: Cli) -> int:
        raise error

    run(ctx, fail)


def _plugin(name: str) -> Callable[[], typer.Typer]:
    from importlib.metadata import entry_points

    for entry in entry_points(group=PLUGINS, name=name):
        make_app: Callable[[], typer.Typer] = entry.load()
        return make_app
    raise ImportError(f"no {name!r} entry point in {PLUGINS}")


def _unexpected(cli: Cli, exc: Exception) -> SqlmigError:
    """A driver error that escaped the library: classify what we can, scrub the rest."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from sqlmig.database import classify, parse_url, scrub

    try:
        url = parse_url(cli.url())
    except SqlmigError:  # no URL, or a bad one: this error is about something else
        url = None
    if isinstance(exc, OperationalError) and url is not None:
        return classify(exc.orig or exc, url)
    text = str(exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc)
    error = SqlmigError(
        f"unexpected {type(exc).__name__}: {scrub(text, url.password if url else None)}"
        " (run with --verbose for the traceback)"
    )
    error.__cause__ = exc
    return error


def _fail(cli: Cli, exc: SqlmigError | MigrationInterrupted, flags: Mapping[str, str]) -> NoReturn:
    if cli.verbose:
        import traceback

        password = _password(cli)
        text = "".join(traceback.format_exception(exc))
        print(text.replace(password, "***") if password else text, file=sys.stderr)
    message = in_flags(exc, flags)
    if cli.json:
        from sqlmig.render import error_json

        cli.emit(error_json(cli.command, exc, message))
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(exc.exit_code)


def _password(cli: Cli) -> str | None:
    try:
        url = cli.settings().database_url
    except SqlmigError:
        return None
    if not url:
        return None
    from sqlmig.database import parse_url

    # A URL sqlmig refuses is only ever shown masked; what SQLAlchemy would take for
    # its password ("p" of u:p@ss@host) must not be starred out all over the traceback.
    try:
        password = parse_url(url).password
    except SqlmigError:
        return None
    return str(password) if password else None


@contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """SIGTERM (a deploy timing out, a pod stopping) unwinds like Ctrl-C: the current
    transaction rolls back and the lock is released on the way out.

    Both raise KeyboardInterrupt("SIGINT" / "SIGTERM") so the message names the signal.
    A signal someone else handles or ignores (SIGINT in a background job) is left
    alone, and the previous handlers come back afterwards: an application calling
    ``app()`` keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    expected: dict[signal.Signals, object] = {signal.SIGINT: signal.default_int_handler}
    if hasattr(signal, "SIGTERM"):
        expected[signal.SIGTERM] = signal.SIG_DFL
    previous: dict[signal.Signals, Any] = {}
    for signum, default in expected.items():
        if signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)

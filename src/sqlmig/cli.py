"""The ``sqlmig`` command: a thin layer that parses options, calls the library, renders.

SQLAlchemy and psycopg are imported inside the commands that need a database, so
``sqlmig --help`` and ``sqlmig --version`` start fast.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

from sqlmig import __version__, clikit
from sqlmig.clikit import Format, run_plugin
from sqlmig.cliparams import App
from sqlmig.errors import UsageError

if TYPE_CHECKING:
    from sqlmig.events import Event, LockRetrying, MigrationDone, MigrationStarted
    from sqlmig.lint import Mode as LintMode
    from sqlmig.lint import Report as LintReport
    from sqlmig.migrator import Migrator, RunResult

EXIT_CODES = """\
Exit codes: 0 success; 1 a migration or a check failed; 2 usage or configuration
error; 3 the migration lock was not acquired within --lock-timeout; 4 the database
could not be reached; 130 interrupted.
"""

app = App(
    name="sqlmig",
    help="Raw-SQL schema migrations for PostgreSQL.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass
class Cli(clikit.Cli):
    """The global options' state, and the Migrator sqlmig's own commands build from it."""

    reporter: Reporter | None = None

    def migrator(self, **options: Any) -> Migrator:
        from sqlmig.migrator import Migrator

        s = self.settings()
        self.reporter = None if self.quiet else Reporter(self.color)
        return Migrator(
            self.url(),
            s.dir,
            table=s.table,
            schema=s.schema,
            lock_timeout=s.lock_timeout,
            statement_timeout=s.statement_timeout,
            migration_lock_timeout=s.migration_lock_timeout,
            ddl_lock_timeout=s.ddl_lock_timeout,
            lock_retries=s.lock_retries,
            lint_small_table_rows=s.lint_small_table_rows,
            on_event=self._event,
            **options,
        )

    def finish(self) -> None:
        """A progress bar never outlives its command, even on an error."""
        if self.reporter is not None:
            self.reporter.close()

    def _event(self, event: Event) -> None:
        from sqlmig.events import LintReported, LockRetrying, LockWaiting

        if isinstance(event, LockWaiting):
            self.waiting(event.holder)
        elif isinstance(event, LockRetrying):
            self.err(_retrying(event))
        elif isinstance(event, LintReported):
            self.lint_report(event.report, event.mode, sys.stderr)
        elif self.reporter is not None:
            self.reporter(event)

    def lint_report(self, report: LintReport, mode: LintMode, out: TextIO | None) -> None:
        """The findings as text on ``out`` (None: none), and as GitHub annotations when
        run by GitHub Actions (on stdout, or with --format json on stderr)."""
        from sqlmig.render import github_annotations, lint_text

        if os.environ.get("GITHUB_ACTIONS") == "true" and report.findings:
            print(github_annotations(report), file=sys.stderr if self.json else sys.stdout)
        if out is not None and not self.quiet:
            print(lint_text(report, mode), file=out, flush=True)


def _retrying(event: LockRetrying) -> str:
    from sqlmig.lockwait import describe

    m = event.migration
    at = f" at line {event.line}" if event.line is not None else ""
    return (
        f"{m.version} {m.name} waited {event.timeout:g}s for a table lock{at} and gave up "
        f"(try {event.attempt} of {event.tries}), behind {describe(event.blockers)}; "
        f"trying again in {event.delay:.1f}s"
    )


class Reporter:
    """A line per migration as it starts and finishes, on stderr; a bar on a terminal."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.bar: Any = None

    def __call__(self, event: MigrationStarted | MigrationDone) -> None:
        from sqlmig.events import MigrationStarted

        step = f"[{event.index + 1}/{event.total}]"
        m = event.migration
        if isinstance(event, MigrationStarted):
            if self.bar is None and event.total > 5 and sys.stderr.isatty():
                self._start_bar(event.total)
            doing = "" if event.direction == "up" else "rolling back "
            self._line(f"{step} {doing}{m.version} {m.name} ...")
        else:
            done = "done" if event.direction == "up" else "rolled back"
            self._line(f"{step} {m.version} {m.name} {done} in {event.duration_ms} ms")
            if self.bar is not None:
                self.bar.advance(self.task)
                if event.index + 1 == event.total:
                    self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _start_bar(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import Progress

        console = Console(file=sys.stderr, no_color=not self.color)
        self.bar = Progress(console=console, transient=True)
        self.task = self.bar.add_task("migrating", total=total)
        self.bar.start()

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def run(ctx: typer.Context, body: Callable[[Cli], int | None]) -> NoReturn:
    """:func:`sqlmig.clikit.run` for the commands here, whose bodies use the Cli above."""
    clikit.run(ctx, body)


def _version(value: bool) -> None:
    if value:
        print(f"sqlmig {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL URL (else $SQLMIG_DATABASE_URL, else $DATABASE_URL).",
            show_default=False,
        ),
    ] = None,
    dir: Annotated[
        str | None,
        typer.Option(
            "--dir",
            help="Migrations directory (else $SQLMIG_DIR, else 'migrations').",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="Tracking table name.", show_default=False)
    ] = None,
    schema: Annotated[str | None, typer.Option(help="Schema of the tracking table.")] = None,
    lock_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for the migration lock (default 60; 0 fails at "
            "once when it is held).",
            min=0,
            show_default=False,
        ),
    ] = None,
    statement_timeout: Annotated[
        float | None, typer.Option(help="Seconds any one migration statement may run.", min=0)
    ] = None,
    ddl_lock_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a migration's statement may wait for a table lock; then the "
            "migration is rolled back and retried (--lock-retries).",
            min=0,
            show_default=False,
        ),
    ] = None,
    lock_retries: Annotated[
        int | None,
        typer.Option(
            help="Times to retry a migration that timed out waiting for a table lock (default 0).",
            min=0,
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Config file (else sqlmig.toml or pyproject.toml [tool.sqlmig], here or above)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Tracebacks and debug logs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colours.")] = False,
    format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    color = not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
    ctx.obj = Cli(
        given={
            "database_url": database_url,
            "dir": dir,
            "table": table,
            "schema": schema,
            "lock_timeout": lock_timeout,
            "statement_timeout": statement_timeout,
            "ddl_lock_timeout": ddl_lock_timeout,
            "lock_retries": lock_retries,
        },
        config=config,
        format=format,
        verbose=verbose,
        quiet=quiet,
        color=color,
    )
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger("sqlmig")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)

        # Run in-process (tests, an application calling app()), a handler left behind
        # would write to a stream that is gone and repeat every line on the next call.
        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(level)

        ctx.call_on_close(restore)


def _report_run(cli: Cli, command: str, result: RunResult) -> int:
    from sqlmig.render import run_json, summary

    if cli.json:
        cli.emit(run_json(command, result))
    else:
        cli.out(summary(command, result))
    return 0


def _report_plan(cli: Cli, command: str, statements: list[str]) -> int:
    if cli.json:
        cli.emit({"ok": True, "command": command, "dry_run": True, "sql": statements})
    else:
        for sql in statements:
            print(sql.rstrip().rstrip(";") + ";\n")
        cli.err(f"dry run: {len(statements)} statements, nothing was changed")
    return 0


@app.command()
def up(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="Apply up to this version.")] = None,
    steps: Annotated[int | None, typer.Option(help="Apply at most N migrations.", min=0)] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the SQL, change nothing.")] = False,
    allow_out_of_order: Annotated[
        bool, typer.Option(help="Apply pending migrations older than the newest applied one.")
    ] = False,
    allow_drift: Annotated[bool, typer.Option(help="Run even when applied files changed.")] = False,
    single_transaction: Annotated[
        bool,
        typer.Option(help="All pending migrations in one transaction: all or nothing."),
    ] = False,
    lint: Annotated[
        bool,
        typer.Option(
            "--lint",
            help="Lint the migrations to run before taking the lock; stop on a warning "
            'unless config says lint = "warn" (needs sqlmig[lint]).',
        ),
    ] = False,
) -> None:
    """Apply pending migrations, in order."""

    def body(cli: Cli) -> int:
        configured = cli.settings().lint or "off"
        mode = "error" if lint and configured == "off" else configured
        options = {"allow_out_of_order": allow_out_of_order, "allow_drift": allow_drift}
        with cli.migrator(**options, lint="off" if dry_run else mode) as m:
            if dry_run:
                statements = m.plan(
                    "up", target=to, steps=steps, single_transaction=single_transaction
                )
                return _report_plan(cli, "up", statements)
            return _report_run(
                cli, "up", m.up(target=to, steps=steps, single_transaction=single_transaction)
            )

    run(ctx, body)


@app.command()
def down(
    ctx: typer.Context,
    steps: Annotated[
        int | None, typer.Option(help="Roll back N migrations (default 1).", min=0)
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Roll back everything above this version.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Roll back every applied migration.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the SQL, change nothing.")] = False,
) -> None:
    """Roll back applied migrations, newest first (one by default)."""

    def body(cli: Cli) -> int:
        if sum(x is not None and x is not False for x in (steps, to, all_)) > 1:
            raise UsageError("give only one of --steps, --to and --all")
        count = None if all_ else (steps if steps is not None else (None if to else 1))
        if all_ and not yes and not dry_run:
            if not sys.stdin.isatty():
                raise UsageError("down --all rolls back every migration: pass --yes to confirm")
            if not typer.confirm("Roll back every applied migration?", err=True):
                raise UsageError("cancelled; nothing was rolled back")
        with cli.migrator() as m:
            if dry_run:
                return _report_plan(cli, "down", m.plan("down", target=to, steps=count))
            return _report_run(cli, "down", m.down(steps=count, target=to))

    run(ctx, body)


@app.command()
def redo(ctx: typer.Context) -> None:
    """Roll back the newest migration and apply it again."""
    run(ctx, lambda cli: _report_run(cli, "redo", _with(cli, lambda m: m.redo())))


def _with(cli: Cli, action: Callable[[Migrator], Any]) -> Any:
    with cli.migrator() as m:
        return action(m)


@app.command()
def status(
    ctx: typer.Context,
    exit_code: Annotated[
        bool,
        typer.Option(
            "--exit-code", help="Exit 1 when anything is pending, failed, changed or missing."
        ),
    ] = False,
) -> None:
    """Every migration and its state. Takes no lock."""

    def body(cli: Cli) -> int:
        from sqlmig.render import status_json, status_table

        states = _with(cli, lambda m: m.status())
        if cli.json:
            cli.emit(status_json(states))
        elif not cli.quiet:
            status_table(states, sys.stdout, cli.color)
        unsettled = [s for s in states if s.state.value not in ("applied",)]
        return 1 if exit_code and unsettled else 0

    run(ctx, body)


@app.command()
def validate(ctx: typer.Context) -> None:
    """Check the files (no database needed) and, with a URL, drift against the database."""

    def body(cli: Cli) -> int:
        from sqlmig.migrator import validate_files

        with_database = bool(cli.settings().database_url)
        if with_database:
            count = len(_with(cli, lambda m: m.validate()))
        else:
            count = len(validate_files(cli.settings().dir))
        if cli.json:
            cli.emit(
                {
                    "ok": True,
                    "command": "validate",
                    "migrations": count,
                    "checked_database": with_database,
                }
            )
        else:
            where = " and match the database" if with_database else ""
            cli.out(f"ok: {count} migrations are valid{where}")
        return 0

    run(ctx, body)


@app.command()
def history(ctx: typer.Context) -> None:
    """The tracking table's rows, newest first."""

    def body(cli: Cli) -> int:
        from sqlmig.render import history_json, history_table

        rows = _with(cli, lambda m: m.history())
        if cli.json:
            cli.emit(history_json(rows))
        elif not cli.quiet:
            history_table(rows, sys.stdout, cli.color)
        return 0

    run(ctx, body)


@app.command()
def baseline(
    ctx: typer.Context, version: Annotated[str, typer.Argument(help="Last version to record.")]
) -> None:
    """Record every migration up to VERSION as applied without running it."""

    def body(cli: Cli) -> int:
        versions = _with(cli, lambda m: m.baseline(version))
        if cli.json:
            cli.emit({"ok": True, "command": "baseline", "versions": versions})
        else:
            cli.out(f"recorded {len(versions)} migrations as applied, up to {version}")
        return 0

    run(ctx, body)


@app.command()
def repair(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version whose row to repair.")],
    applied: Annotated[bool, typer.Option("--applied", help="Its changes are complete.")] = False,
    rolled_back: Annotated[
        bool, typer.Option("--rolled-back", help="Its changes were undone.")
    ] = False,
    forget: Annotated[bool, typer.Option("--forget", help="Delete its row.")] = False,
    checksum: Annotated[
        bool,
        typer.Option(
            "--checksum", help="Record the file's current checksum after an intentional edit."
        ),
    ] = False,
) -> None:
    """Resolve a failed migration's row, or realign its checksum."""

    def body(cli: Cli) -> int:
        chosen = [
            name
            for name, on in (
                ("applied", applied),
                ("rolled_back", rolled_back),
                ("forget", forget),
                ("checksum", checksum),
            )
            if on
        ]
        if len(chosen) != 1:
            raise UsageError("give exactly one of --applied, --rolled-back, --forget, --checksum")
        outcome = _with(cli, lambda m: m.repair(version, chosen[0]))
        if cli.json:
            cli.emit({"ok": True, "command": "repair", "version": version, "result": outcome})
        else:
            cli.out(outcome)
        return 0

    run(ctx, body)


@app.command()
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. add_users.")],
    sequential: Annotated[
        bool, typer.Option(help="Next sequence number instead of a UTC timestamp.")
    ] = False,
    single_file: Annotated[
        bool, typer.Option(help="One file with -- migrate:up / -- migrate:down sections.")
    ] = False,
) -> None:
    """Create a new migration (an up/down pair by default)."""

    def body(cli: Cli) -> int:
        from sqlmig.scaffold import create_migration

        made = create_migration(
            cli.settings().dir, name, sequential=sequential, single_file=single_file
        )
        if made.note:
            cli.err(f"note: {made.note}")
        if cli.json:
            cli.emit({"ok": True, "command": "new", "files": [str(p) for p in made.paths]})
        else:
            for path in made.paths:
                cli.out(str(path))
        return 0

    run(ctx, body)


@app.command("lint")
def lint_command(
    ctx: typer.Context,
    versions: Annotated[
        list[str] | None, typer.Argument(help="Versions to lint (default: every migration).")
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only migrations not applied yet (needs a URL).")
    ] = False,
    small_table_rows: Annotated[
        int | None,
        typer.Option(
            help="Tables with fewer rows are small: findings about their size are "
            "informational (default 10000; config lint_small_table_rows).",
            min=0,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Lint migrations with squawk, and with a URL the database's facts (needs sqlmig[lint]).

    Exits 1 on a warning or an error (with config lint = "warn", on an error only).
    """

    def body(cli: Cli) -> int:
        from sqlmig.lint import Guards, Mode, lint, select
        from sqlmig.render import lint_json

        if small_table_rows is not None:
            cli.given["lint_small_table_rows"] = small_table_rows
        s = cli.settings()
        mode = Mode.WARN if s.lint == "warn" else Mode.ERROR
        if s.database_url:
            report = _with(cli, lambda m: m.lint(versions or (), pending=pending))
        elif pending:
            raise UsageError("--pending needs a database URL, to know what is applied")
        else:
            from sqlmig.migrator import validate_files

            guards = Guards.of(s.ddl_lock_timeout, s.migration_lock_timeout, s.statement_timeout)
            chosen = select(validate_files(s.dir), versions or ())
            report = lint(chosen, small_table_rows=s.lint_small_table_rows, guards=guards)
        cli.lint_report(report, mode, None if cli.json else sys.stdout)
        if cli.json:
            cli.emit(lint_json(report, mode))
        return 1 if report.failing(mode) else 0

    run(ctx, body)


# `sqlmig alembic ...` lives in the alembic_compat package (extra `sqlmig[alembic]`),
# found through its entry point only when typed: `sqlmig --help` reads no package
# metadata and imports neither Alembic nor SQLAlchemy.
@app.command(
    "alembic",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def alembic(ctx: typer.Context) -> None:
    """Import an Alembic history, adopt, draft and check (needs sqlmig[alembic])."""
    run_plugin(ctx, "alembic", "the alembic commands need Alembic: pip install 'sqlmig[alembic]'")


# click's base error, reached through typer's public API: typer vendors click from 0.26.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def entry(argv: list[str] | None = None) -> NoReturn:
    """Console script entry point: a bad option is a usage error like any other, so with
    ``--format json`` it too prints one JSON document on stdout."""
    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="sqlmig", standalone_mode=False)
    except _ClickException as caught:
        exc: Any = caught  # has exit_code, format_message() and show()
        if _wants_json(args):
            from sqlmig.render import dump, error_json

            error = UsageError(exc.format_message())
            dump(error_json(_command_of(args), error), sys.stdout)
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def _wants_json(args: list[str]) -> bool:
    return "--format=json" in args or ("--format", "json") in itertools.pairwise(args)


def _command_of(args: list[str]) -> str:
    """The command the arguments name, or "" when they name none."""
    names = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback}
    return next((a for a in args if a in names), "")

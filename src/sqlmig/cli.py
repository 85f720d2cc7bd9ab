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
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import typer

from sqlmig import __version__, clikit
from sqlmig.clikit import Format, run_plugin
from sqlmig.cliparams import App
from sqlmig.errors import SqlmigError, UsageError

if TYPE_CHECKING:
    from sqlmig.events import Event, LockRetrying, MigrationDone, MigrationStarted
    from sqlmig.fleet import Target
    from sqlmig.lint import Mode as LintMode
    from sqlmig.lint import Report as LintReport
    from sqlmig.locking import LockState
    from sqlmig.migrator import Migrator, RunResult

FLEET_COMMANDS = ("up", "down", "redo", "status", "validate")

EXIT_CODES = """\
Exit codes: 0 success; 1 a migration or a check failed; 2 usage or configuration
error; 3 the migration lock was not acquired within --lock-timeout; 4 the database
could not be reached, or the lock was lost; 130 interrupted.
"""


class LockStrategyName(str, Enum):
    advisory = "advisory"
    table = "table"


app = App(
    name="sqlmig",
    help="Raw-SQL schema migrations for PostgreSQL.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class OnError(str, Enum):
    stop = "stop"
    continue_ = "continue"


@dataclass(frozen=True)
class FleetChoice:
    """The global options that make a command run over many targets."""

    targets: str | None = None
    databases_matching: str | None = None
    schemas_from: str | None = None
    schemas_matching: str | None = None
    jobs: int = 4
    on_error: str = "stop"
    shard: str | None = None

    @property
    def chosen(self) -> bool:
        return any(
            x is not None
            for x in (
                self.targets,
                self.databases_matching,
                self.schemas_from,
                self.schemas_matching,
            )
        )


@dataclass
class Cli(clikit.Cli):
    """The global options' state, and the Migrator sqlmig's own commands build from it."""

    reporter: Reporter | None = None
    fleet: FleetChoice = FleetChoice()

    def fleet_targets(self, command: str) -> list[Target] | None:
        """The targets of a fleet, when the options name one; None for one database."""
        if not self.fleet.chosen:
            if self.fleet.shard is not None:
                raise UsageError("--shard splits a fleet: give --targets or another fleet option")
            return None
        if command not in FLEET_COMMANDS:
            raise UsageError(f"{command} runs on one database, not over a fleet")
        from sqlmig.fleet import parse_shard, shard, targets_of

        f = self.fleet
        url = self.settings().database_url
        chosen = targets_of(
            targets_file=f.targets,
            databases_matching_pattern=f.databases_matching,
            schemas_sql=f.schemas_from,
            schemas_pattern=f.schemas_matching,
            url=url,
            environ=os.environ,
        )
        assert chosen is not None
        if f.shard is not None:
            chosen = shard(chosen, *parse_shard(f.shard))
        return chosen

    def run_fleet(self, command: str, targets: list[Target]) -> int:
        """Run ``command`` over the targets and render the fleet's report."""
        from sqlmig.fleet import migrate_fleet
        from sqlmig.render import FleetProgress, fleet_json, fleet_table

        s = self.settings()
        progress = None if self.quiet else FleetProgress(sys.stderr)
        try:
            result = migrate_fleet(
                targets,
                s.dir,
                command=command,
                jobs=self.fleet.jobs,
                on_error=self.fleet.on_error,
                budget=s.connection_budget,
                table=s.table,
                lock_timeout=s.lock_timeout,
                statement_timeout=s.statement_timeout,
                migration_lock_timeout=s.migration_lock_timeout,
                lock_strategy=s.lock_strategy,
                lock_ttl=s.lock_ttl,
                lock_heartbeat=s.lock_heartbeat,
                progress=progress,
            )
        finally:
            if progress is not None:
                progress.close()
        if self.json:
            self.emit(fleet_json(result))
        elif not self.quiet:
            fleet_table(result, sys.stdout, self.color)
        return result.exit_code

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
            lock_strategy=s.lock_strategy,
            lock_ttl=s.lock_ttl,
            lock_heartbeat=s.lock_heartbeat,
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
        from sqlmig.events import LintReported, LockRetrying, LockWaiting, ServerNotice

        if isinstance(event, LockWaiting):
            self.waiting(event.holder)
        elif isinstance(event, LockRetrying):
            self.err(_retrying(event))
        elif isinstance(event, LintReported):
            self.lint_report(event.report, event.mode, sys.stderr)
        elif isinstance(event, ServerNotice):
            # With --verbose the sqlmig logger shows every notice already.
            if event.warning and not self.verbose and self.reporter is not None:
                self.reporter.line(f"{event.version or 'server'}: {event}")
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
            self.line(f"{step} {doing}{m.version} {m.name} ...")
        else:
            done = "done" if event.direction == "up" else "rolled back"
            script = m.up if event.direction == "up" else m.down
            nothing = " (no SQL, only comments: it ran nothing)" if script and script.empty else ""
            self.line(f"{step} {m.version} {m.name} {done} in {event.duration_ms} ms{nothing}")
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

    def line(self, text: str) -> None:
        """A line on stderr, above the bar when there is one."""
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)


def run(ctx: typer.Context, body: Callable[[Cli], int | None]) -> NoReturn:
    """:func:`sqlmig.clikit.run` for the commands here, whose bodies use the Cli above."""

    def checked(cli: Cli) -> int | None:
        if cli.fleet.chosen and cli.command not in FLEET_COMMANDS:
            raise UsageError(
                f"{cli.command} runs on one database, not over a fleet; the fleet options "
                f"work with {', '.join(FLEET_COMMANDS)}"
            )
        return body(cli)

    clikit.run(ctx, checked)


def _over_fleet(cli: Cli, command: str, **single_only: object) -> int | None:
    """The exit code of ``command`` run over the fleet the options name; None when they
    name none. ``single_only``: options given that only mean something for one database."""
    targets = cli.fleet_targets(command)
    if targets is None:
        return None
    given = [name for name, value in single_only.items() if value not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags}: for one database only; over a fleet {command} takes none")
    return cli.run_fleet(command, targets)


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
    lock_strategy: Annotated[
        LockStrategyName | None,
        typer.Option(
            help="How runs exclude each other: a session advisory lock (default), or a "
            "lease in the table <table>_lock (through a transaction pooler).",
            show_default=False,
        ),
    ] = None,
    lock_ttl: Annotated[
        float | None,
        typer.Option(
            help="Seconds a lease lives after its last renewal (default 60).",
            show_default=False,
        ),
    ] = None,
    lock_heartbeat: Annotated[
        float | None,
        typer.Option(
            help="Seconds between two renewals of a lease (default 10).", show_default=False
        ),
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
    targets: Annotated[
        Path | None,
        typer.Option(
            help="A fleet: a TOML file of [[targets]] (name, url or url_env, schema).",
            show_default=False,
        ),
    ] = None,
    databases_matching: Annotated[
        str | None,
        typer.Option(help="A fleet: every database of the server matching this shell pattern."),
    ] = None,
    schemas_from: Annotated[
        str | None,
        typer.Option(help="A fleet: one tenant schema per row this SQL returns."),
    ] = None,
    schemas_matching: Annotated[
        str | None,
        typer.Option(help="A fleet: every schema of the database matching this shell pattern."),
    ] = None,
    jobs: Annotated[int, typer.Option(help="A fleet: targets in flight at once.", min=1)] = 4,
    on_error: Annotated[
        OnError, typer.Option(help="A fleet: after a failure, start no target (stop) or go on.")
    ] = OnError.stop,
    shard: Annotated[
        str | None,
        typer.Option(
            help="A fleet: K/N, the K-th of N stable parts of the targets.", show_default=False
        ),
    ] = None,
    connection_budget: Annotated[
        int | None,
        typer.Option(help="A fleet: connections to one server at most (default 20).", min=2),
    ] = None,
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
            "connection_budget": connection_budget,
            "lock_strategy": lock_strategy.value if lock_strategy else None,
            "lock_ttl": lock_ttl,
            "lock_heartbeat": lock_heartbeat,
            "ddl_lock_timeout": ddl_lock_timeout,
            "lock_retries": lock_retries,
        },
        config=config,
        format=format,
        verbose=verbose,
        quiet=quiet,
        color=color,
        fleet=FleetChoice(
            None if targets is None else str(targets),
            databases_matching,
            schemas_from,
            schemas_matching,
            jobs,
            on_error.value,
            shard,
        ),
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


def _report_run(cli: Cli, command: str, result: RunResult, schema: Path | None = None) -> int:
    from sqlmig.render import run_json, summary

    if cli.json:
        cli.emit(run_json(command, result) | ({"schema_file": str(schema)} if schema else {}))
    else:
        cli.out(summary(command, result))
        if schema is not None:
            cli.out(f"wrote the schema to {schema}")
    return 0


DumpSchema = Annotated[
    bool | None,
    typer.Option(
        "--dump-schema/--no-dump-schema",
        help="Write the schema afterwards to dump_schema from the config, else schema.sql "
        "(default: when the config names dump_schema).",
        show_default=False,
    ),
]


def _dumped(cli: Cli, m: Migrator, wanted: bool | None, result: RunResult) -> Path | None:
    """Refresh the schema file after a run when asked, or when the config names one."""
    from sqlmig.dump import write_schema_file
    from sqlmig.render import summary

    configured = cli.settings().dump_schema
    if not (wanted or (wanted is None and configured)):
        return None
    try:
        return write_schema_file(m, configured or "schema.sql")
    except SqlmigError as exc:
        exc.completed = result.migrations  # the run itself went through: say so
        if not cli.json:
            cli.out(summary(cli.command, result))
        raise


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
    dump_schema: DumpSchema = None,
) -> None:
    """Apply pending migrations, in order."""

    def body(cli: Cli) -> int:
        fleet = _over_fleet(
            cli,
            "up",
            to=to,
            steps=steps,
            dry_run=dry_run,
            allow_out_of_order=allow_out_of_order,
            allow_drift=allow_drift,
            single_transaction=single_transaction,
            lint=lint,
            dump_schema=dump_schema,
        )
        if fleet is not None:
            return fleet
        configured = cli.settings().lint or "off"
        mode = "error" if lint and configured == "off" else configured
        options = {"allow_out_of_order": allow_out_of_order, "allow_drift": allow_drift}
        with cli.migrator(**options, lint="off" if dry_run else mode) as m:
            if dry_run:
                statements = m.plan(
                    "up", target=to, steps=steps, single_transaction=single_transaction
                )
                return _report_plan(cli, "up", statements)
            result = m.up(target=to, steps=steps, single_transaction=single_transaction)
            return _report_run(cli, "up", result, _dumped(cli, m, dump_schema, result))

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
    dump_schema: DumpSchema = None,
) -> None:
    """Roll back applied migrations, newest first (one by default)."""

    def body(cli: Cli) -> int:
        if cli.fleet.chosen and not yes:
            raise UsageError("down over a fleet rolls back every target: pass --yes to confirm")
        fleet = _over_fleet(
            cli, "down", steps=steps, to=to, all=all_, dry_run=dry_run, dump_schema=dump_schema
        )
        if fleet is not None:
            return fleet
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
            result = m.down(steps=count, target=to)
            return _report_run(cli, "down", result, _dumped(cli, m, dump_schema, result))

    run(ctx, body)


@app.command()
def redo(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm a redo over a fleet.")] = False,
) -> None:
    """Roll back the newest migration and apply it again."""

    def body(cli: Cli) -> int:
        if cli.fleet.chosen and not yes:
            raise UsageError("redo over a fleet changes every target: pass --yes to confirm")
        fleet = _over_fleet(cli, "redo")
        if fleet is not None:
            return fleet
        return _report_run(cli, "redo", _with(cli, lambda m: m.redo()))

    run(ctx, body)


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

        fleet = _over_fleet(cli, "status")
        if fleet is not None:
            return fleet
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
        from sqlmig.render import notes_lines

        fleet = _over_fleet(cli, "validate")
        if fleet is not None:
            return fleet
        with_database = bool(cli.settings().database_url)
        if with_database:
            states = _with(cli, lambda m: m.validate())
            migrations = [s.migration for s in states if s.migration is not None]
        else:
            migrations = validate_files(cli.settings().dir)
        if cli.json:
            cli.emit(
                {
                    "ok": True,
                    "command": "validate",
                    "migrations": len(migrations),
                    "checked_database": with_database,
                    "notes": [
                        {"version": m.version, "filename": m.filename, "notes": list(m.notes)}
                        for m in migrations
                        if m.notes
                    ],
                }
            )
        else:
            where = " and match the database" if with_database else ""
            cli.out(f"ok: {len(migrations)} migrations are valid{where}")
            notes = notes_lines(migrations) if cli.verbose else []
            if notes:
                cli.out("notes:\n" + "\n".join(notes))
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
def adopt(
    ctx: typer.Context,
    tool: Annotated[
        str,
        typer.Option(
            "--from",
            help="The tool that migrated the database: golang-migrate, dbmate or goose.",
            show_default=False,
        ),
    ],
    from_table: Annotated[
        str | None,
        typer.Option(
            "--from-table",
            help="Its table (default schema_migrations; goose_db_version for goose).",
            show_default=False,
        ),
    ] = None,
    rename_to: Annotated[
        str | None,
        typer.Option(
            "--rename-to",
            help="Where its table goes (default <table>_<tool>).",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave its table as it is (needs --table).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print what it would send, change nothing.")
    ] = False,
) -> None:
    """Take over a database golang-migrate, dbmate or goose migrated: record what it applied."""

    def body(cli: Cli) -> int:
        from sqlmig.render import adopt_json, adopt_lines

        result = _with(
            cli,
            lambda m: m.adopt(
                tool, from_table=from_table, rename_to=rename_to, keep=keep, dry_run=dry_run
            ),
        )
        if cli.json:
            cli.emit(adopt_json(result))
            return 0
        if dry_run:
            for sql in result.statements:
                print(sql.rstrip().rstrip(";") + ";\n")
        for line in adopt_lines(result):
            (cli.err if dry_run else cli.out)(line)
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


lock_app = App(
    name="lock",
    help="Who holds the migration lock, and freeing it when its run is gone.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(lock_app, name="lock")


@lock_app.command("status")
def lock_status(ctx: typer.Context) -> None:
    """The lock strategy, and who holds the lock: exit 0 when free, 1 when held."""

    def body(cli: Cli) -> int:
        from sqlmig.render import lock_state_json, lock_state_text

        cli.command = "lock status"
        state = _with(cli, lambda m: m.lock_status())
        if cli.json:
            cli.emit(lock_state_json(state))
        else:
            cli.out(lock_state_text(state))
        return 1 if state.held else 0

    run(ctx, body)


@lock_app.command("release")
def lock_release(
    ctx: typer.Context,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also remove a live lease, or terminate the session holding the advisory lock.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Free the lock of a run that is gone: an expired lease at once, anything else
    with --force."""

    def body(cli: Cli) -> int:
        from sqlmig.render import lock_question, lock_release_json, lock_release_text

        cli.command = "lock release"

        def confirm(state: LockState) -> bool:
            if yes:
                return True
            if not sys.stdin.isatty():
                raise UsageError(f"{lock_question(state)} Pass --yes to confirm.")
            return typer.confirm(lock_question(state), err=True)

        released = _with(cli, lambda m: m.release_lock(force=force, confirm=confirm))
        if cli.json:
            cli.emit(lock_release_json(released))
        else:
            cli.out(lock_release_text(released))
        return 0

    run(ctx, body)


@app.command()
def dump(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="File to write (else dump_schema from the config, else stdout)."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Exit 1 when the file is not the schema the migrations produce."
        ),
    ] = False,
) -> None:
    """The migrated schema as SQL (pg_dump --schema-only), then the applied migrations."""

    def body(cli: Cli) -> int:
        from sqlmig.dump import check_schema_file, dump_schema, write_schema_file

        path = out or cli.settings().dump_schema
        if check and path is None:
            raise UsageError("dump --check compares a file: pass --out FILE or set dump_schema")
        with cli.migrator() as m:
            if path is None:
                sql = dump_schema(m)
                if cli.json:
                    cli.emit({"ok": True, "command": "dump", "sql": sql})
                else:
                    sys.stdout.write(sql)
                return 0
            if check:
                check_schema_file(m, path)
                done = f"ok: {path} is the schema the migrations produce"
            else:
                done = f"wrote the schema to {write_schema_file(m, path)}"
        if cli.json:
            cli.emit({"ok": True, "command": "dump", "file": str(path), "check": check})
        else:
            cli.out(done)
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
    groups = {g.name for g in app.registered_groups if g.name}
    return next((a for a in args if a in names | groups), "")

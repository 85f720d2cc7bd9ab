"""``sqlmig alembic ...``: a typer sub-app, a thin skin over the library functions.

sqlmig finds :func:`command` through this package's ``sqlmig.commands`` entry point
(``alembic``) when ``sqlmig alembic`` is typed, and runs its app under its root context:
the commands share sqlmig's global options (``--database-url``, ``--dir``,
``--table``, ``--schema``, ``--lock-timeout``, ``--format json``...) through the
``Cli`` object, and :func:`sqlmig.clikit.run` turns errors into one message and
their exit code. This module imports Alembic only inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from alembic_compat.errors import AlembicConfigError, import_hint, require_alembic
from sqlmig import clikit
from sqlmig.clikit import Cli
from sqlmig.cliparams import App

DEFAULT_SECTION = "alembic"
DEFAULT_VERSION_TABLE = "alembic_version"

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from alembic_compat.compare import Difference
    from alembic_compat.envpy import Environment
    from alembic_compat.history import ImportResult

app = App(
    name="alembic",
    help="Move from Alembic to plain-SQL migrations: import an Alembic history, adopt a "
    "database Alembic migrated, draft a migration from the ORM models, check for drift.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

FLAGS = {
    **clikit.FLAGS,
    "alembic_ini": "--config",
    "script_location": "--script-location",
    "name": "--name",
    "python": "--python",
    "skip_unrenderable": "--skip-unrenderable",
    "linearize": "--linearize",
    "strict": "--strict",
    "path": "--metadata",  # load_metadata's
    "metadata": "--metadata",
    "version_table": "--version-table",
}
"""sqlmig's flags and these commands': the library options their errors name."""


def run(ctx: typer.Context, body: Callable[[Cli], int | None]) -> NoReturn:
    """:func:`sqlmig.clikit.run`, its errors worded with these commands' flags too."""
    clikit.run(ctx, body, flags=FLAGS)


MetadataOption = Annotated[
    str | None,
    typer.Option(
        "--metadata",
        help="The models' MetaData as package.module:attribute (e.g. myapp.models:Base."
        "metadata; default: the target_metadata of the project's env.py).",
        show_default=False,
    ),
]


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The Alembic project's alembic.ini (default: alembic.ini, unless "
        "--script-location is given alone).",
        show_default=False,
    ),
]
ScriptLocationOption = Annotated[
    Path | None,
    typer.Option(
        "--script-location",
        help="The directory that holds env.py and versions/, in place of the ini's "
        "script_location; alone, no ini is read (a Flask-Migrate layout: migrations).",
        show_default=False,
    ),
]
NameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        "-n",
        help="The ini section of the history (Alembic's -n; default: alembic).",
        show_default=False,
    ),
]


def command() -> typer.Typer:
    """The ``sqlmig.commands`` entry point: the app, once Alembic is known to be there
    (else AlembicMissingError, which sqlmig reports: exit 2 with the install command)."""
    require_alembic()
    return app


@app.command("import")
def import_(
    ctx: typer.Context,
    config: ConfigOption = None,
    script_location: ScriptLocationOption = None,
    name: NameOption = None,
    python: Annotated[
        Path | None,
        typer.Option(
            "--python",
            help="Render the revisions in this interpreter, the project's own (its "
            "SQLAlchemy, 1.4 or 2, and its Alembic), e.g. .venv/bin/python.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to write into (default: --dir).", show_default=False),
    ] = None,
    skip_unrenderable: Annotated[
        bool,
        typer.Option(
            "--skip-unrenderable",
            help="Write the revisions that import and render, and list the others to write "
            "by hand.",
        ),
    ] = False,
    linearize: Annotated[
        bool,
        typer.Option(
            "--linearize",
            help="Import a history with merge revisions (one base, one head) in the order "
            "alembic upgrade head applies it.",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Refuse revisions with code that runs only online; write nothing."
        ),
    ] = False,
) -> None:
    """Render each revision of an Alembic history into an up/down pair of SQL files."""

    def body(cli: Cli) -> int:
        from alembic_compat.history import import_history

        cli.command = "alembic import"
        result = import_history(
            _ini(config, script_location),
            out or cli.settings().dir,
            script_location=script_location,
            name=name or DEFAULT_SECTION,
            python=python,
            skip_unrenderable=skip_unrenderable,
            linearize=linearize,
            strict=strict,
        )
        if cli.json:
            cli.emit(_import_json(result))
        else:
            _report_import(cli, result)
        return 0

    run(ctx, body)


@app.command()
def adopt(
    ctx: typer.Context,
    config: ConfigOption = None,
    script_location: ScriptLocationOption = None,
    name: NameOption = None,
    drop_alembic_version: Annotated[
        bool,
        typer.Option(
            "--drop-alembic-version", help="Drop Alembic's table in the same transaction."
        ),
    ] = False,
    version_table: Annotated[
        str | None,
        typer.Option(
            "--version-table",
            help="Alembic's table, [SCHEMA.]NAME (default: the one the project's env.py "
            "names when --config, --script-location or --name is given, else "
            "alembic_version).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Record the imported migrations up to the database's Alembic revision as applied.

    Runs no migration SQL; everything happens in one transaction under the lock.
    """

    def body(cli: Cli) -> int:
        from alembic_compat.adopt import adopt as adopt_database

        cli.command = "alembic adopt"
        s = cli.settings()
        table_name, schema_name = _version_table(version_table, config, script_location, name)
        shown = f"{schema_name}.{table_name}" if schema_name else table_name
        result = adopt_database(
            cli.url(),
            s.dir,
            drop_alembic_version=drop_alembic_version,
            version_table=table_name,
            version_table_schema=schema_name,
            table=s.table,
            schema=s.schema,
            lock_timeout=s.lock_timeout,
            on_lock_wait=cli.waiting,
        )
        if cli.json:
            cli.emit(
                {
                    "ok": True,
                    "command": cli.command,
                    "revision": result.revision,
                    "versions": list(result.versions),
                    "dropped_alembic_version": result.dropped_alembic_version,
                }
            )
        else:
            last = result.versions[-1]
            cli.out(
                f"adopted Alembic revision {result.revision}: recorded {len(result.versions)} "
                f"migrations as applied, up to {last}, without running them"
            )
            cli.out(
                f"dropped {shown}"
                if result.dropped_alembic_version
                else f"{shown} was kept (drop it later with --drop-alembic-version)"
            )
        return 0

    run(ctx, body)


@app.command()
def draft(
    ctx: typer.Context,
    description: Annotated[
        str, typer.Argument(help="What the migration does, e.g. add_nicknames.")
    ],
    metadata: MetadataOption = None,
    config: ConfigOption = None,
    script_location: ScriptLocationOption = None,
    name: NameOption = None,
) -> None:
    """Write a migration pair drafted from the differences between models and database."""

    def body(cli: Cli) -> int:
        from alembic_compat.compare import draft as draft_migration

        cli.command = "alembic draft"
        s = cli.settings()
        source = _metadata_source(metadata, config, script_location, name)
        paths = draft_migration(
            description,
            _models(source),
            cli.url(),
            s.dir,
            table=s.table,
            schema=s.schema,
            source=source,
        )
        if cli.json:
            cli.emit({"ok": True, "command": cli.command, "files": [str(p) for p in paths]})
        elif not paths:
            cli.out("no differences: the models match the database; nothing was written")
        else:
            for path in paths:
                cli.out(str(path))
            cli.err("review the draft before applying it with `sqlmig up`")
        return 0

    run(ctx, body)


@app.command()
def check(
    ctx: typer.Context,
    metadata: MetadataOption = None,
    config: ConfigOption = None,
    script_location: ScriptLocationOption = None,
    name: NameOption = None,
) -> None:
    """List every difference between the models and the database; exit 1 when any."""

    def body(cli: Cli) -> int:
        from alembic_compat.compare import check as compare_models

        cli.command = "alembic check"
        s = cli.settings()
        source = _metadata_source(metadata, config, script_location, name)
        differences = compare_models(_models(source), cli.url(), table=s.table, schema=s.schema)
        if cli.json:
            cli.emit(_check_json(cli.command, differences))
        elif differences:
            noun = "difference" if len(differences) == 1 else "differences"
            cli.out(f"{len(differences)} {noun} between the models and the database:")
            for difference in differences:
                cli.out(f"  {difference.description}")
        else:
            cli.out("ok: the models match the database")
        return 1 if differences else 0

    run(ctx, body)


def _ini(config: Path | None, script_location: Path | None) -> Path | None:
    """The ini to read: the one given, none with --script-location alone, else
    alembic.ini in the current directory, as Alembic's own commands do."""
    return config if config is not None or script_location is not None else Path("alembic.ini")


def _environment(
    config: Path | None, script_location: Path | None, name: str | None
) -> Environment:
    from alembic_compat.envpy import read_environment

    ini = _ini(config, script_location)
    return read_environment(
        None if ini is None else str(ini),
        script_location=None if script_location is None else str(script_location),
        section=name or DEFAULT_SECTION,
    )


def _version_table(
    given: str | None, config: Path | None, script_location: Path | None, name: str | None
) -> tuple[str, str | None]:
    """``(name, schema)``: as given, else as the project's env.py names it when a
    project is named, else Alembic's default."""
    if given is not None:
        schema, _, table = given.rpartition(".")
        return table, schema or None
    if config is None and script_location is None and name is None:
        return DEFAULT_VERSION_TABLE, None
    return _environment(config, script_location, name).version_table()


def _metadata_source(
    metadata: str | None, config: Path | None, script_location: Path | None, name: str | None
) -> str:
    """``--metadata``, else the ``target_metadata`` of the project's env.py."""
    if metadata is not None:
        return metadata
    if config is None and script_location is None and not Path("alembic.ini").is_file():
        raise AlembicConfigError(
            "which models? pass metadata=package.module:attribute, or the Alembic project "
            "whose env.py sets target_metadata as alembic_ini=PATH or script_location=DIR "
            "(there is no alembic.ini here)",
            options=("metadata", "alembic_ini", "script_location"),
        )
    return _environment(config, script_location, name).target_metadata()


def _models(source: str) -> MetaData:
    from alembic_compat.metadata import load_metadata

    return load_metadata(source, search_path=Path.cwd())


# --- rendering ------------------------------------------------------------------------


def _import_json(result: ImportResult) -> dict[str, Any]:
    return {
        "ok": True,
        "command": "alembic import",
        "directory": str(result.directory),
        "python": result.python,
        "migrations": [
            {
                "version": m.version,
                "name": m.name,
                "revision": m.revision,
                "down_revision": m.down_revision,
                "merges": list(m.merges),
                "files": [str(f) for f in m.files],
                "transactional": m.transactional,
                "reversible": m.reversible,
            }
            for m in result.imported
        ],
        "unrenderable": [
            {
                "revision": f.revision,
                "down_revision": f.down_revision,
                "version": f.version,
                "files": list(f.files),
                "header": f.header,
                "source": f.source,
                "direction": f.direction,
                "reason": f.reason,
            }
            for f in result.skipped
        ],
        "online_only": [
            {
                "revision": o.revision,
                "version": o.version,
                "source": o.source,
                "direction": o.direction,
                "line": o.line,
                "reason": o.reason,
            }
            for o in result.online_only
        ],
    }


def _report_import(cli: Cli, result: ImportResult) -> None:
    noun = "revision" if len(result.imported) == 1 else "revisions"
    by = f" (rendered by {result.python})" if result.python else ""
    cli.out(f"imported {len(result.imported)} Alembic {noun} into {result.directory}{by}:")
    for m in result.imported:
        notes = [] if m.reversible else ["no down: downgrade() is not implemented"]
        if not m.transactional:
            notes.append("no-transaction")
        if m.merges:
            notes.append(f"merges {', '.join(m.merges)}")
        extra = f" ({'; '.join(notes)})" if notes else ""
        cli.out(f"  {m.version} {m.name} <- {m.revision}{extra}")
    if result.skipped:
        noun = "revision" if len(result.skipped) == 1 else "revisions"
        cli.err(
            f"{len(result.skipped)} {noun} could not be imported or rendered offline; "
            "write these by hand, each starting with the header line shown:"
        )
        for f in result.skipped:
            cli.err(f"  {f.revision} ({f.source}, {f.step}): {f.reason}")
            cli.err(f"    write {result.directory / f.files[0]} and {f.files[1]}")
            cli.err(f"    header: {f.header}")
        if any(f.direction is None for f in result.skipped):
            cli.err(import_hint(FLAGS["python"] + " "))
    if result.online_only:
        cli.err(
            f"{len(result.online_only)} places run only online: offline rendering cannot see "
            "them, so the files lack what they do there; check each and write it by hand "
            "(the files say where):"
        )
        for o in result.online_only:
            cli.err(f"  {o}")


def _check_json(command: str, differences: list[Difference]) -> dict[str, Any]:
    return {
        "ok": not differences,
        "command": command,
        "in_sync": not differences,
        "differences": [d.to_json() for d in differences],
    }

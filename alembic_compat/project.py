"""An Alembic project read and each revision rendered offline, as plain records.

This module runs in whichever interpreter has the project's dependencies: imported
in sqlmig's own process, or run as a script by the project's interpreter
(``sqlmig alembic import --python PATH``), which writes each record as a JSON line
as soon as it is rendered. Either way the records are the same dicts, so
everything after them (ordering, transactions, files) happens once, in sqlmig.
That is why it imports nothing of sqlmig, only the standard library and Alembic
(and through it SQLAlchemy 1.4 or 2), and keeps to Python 3.8's syntax.

Rendering is Alembic's offline ("--sql") machinery for PostgreSQL, as ``alembic
upgrade --sql`` runs it but without ``env.py`` and without a database: an
``EnvironmentContext`` of the project's configuration (so ``context.config`` and
``context.is_offline_mode()`` work in revisions), ``op`` bound to it, and every
statement captured on its own. ``autocommit_block()`` is recorded as a pair of
markers around the statements it runs, so that sqlmig can tell them from an
explicit ``COMMIT``.

A revision file that cannot be imported does not stop the reading: it stands in
the history with the ids its source assigns, and its record carries the error.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import sys
import traceback
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

DIALECT = "postgresql"
AUTOCOMMIT = "autocommit"  # an item ("autocommit", "begin" | "end") marks autocommit_block()
SQL = "sql"  # an item ("sql", text) is one statement as Alembic wrote it
_IMPORT_ERROR = "__sqlmig_import_error__"


class ProjectError(Exception):
    """The project as a whole cannot be read (configuration, a broken history)."""


def read_project(
    config_file: str | None = None,
    *,
    script_location: str | None = None,
    section: str = "alembic",
) -> Iterator[dict[str, Any]]:
    """The project's records: first ``{"kind": "project"}``, then one
    ``{"kind": "revision"}`` per revision in the order ``alembic upgrade heads``
    applies them on an empty database. Raises ProjectError."""
    config = project_config(config_file, script_location, section)
    script, failed = _scripts(config)
    yield {
        "kind": "project",
        "script_dir": script.dir,
        "config_file": config.config_file_name,
        "alembic": _alembic_version(),
        "python": sys.executable,
    }
    for revision in reversed(list(script.walk_revisions())):
        yield _revision_record(config, script, revision, failed.get(revision.path))


def project_config(config_file: str | None, script_location: str | None, section: str) -> Config:
    """The history's configuration: the ini's ``section``, ``script_location`` in
    place of the one it sets. Raises ProjectError saying which option to pass."""
    from alembic.config import Config

    if config_file is not None and not os.path.isfile(config_file):
        raise ProjectError(
            f"Alembic configuration {config_file} not found; pass the path of the "
            "project's alembic.ini as alembic_ini=PATH, or its migrations directory as "
            "script_location=DIR"
        )
    config = Config(config_file, ini_section=section)
    histories = _listed(_history_sections(config))
    if config_file is not None and not config.file_config.has_section(section):
        raise ProjectError(
            f"{config_file} has no [{section}] section{histories}; pass the section of "
            "the history to import as name=SECTION"
        )
    if script_location is not None:
        config.set_main_option("script_location", script_location)
        if config_file is None:
            # What Alembic's own ini template and Flask's CLI both do: the project's
            # packages are importable from the directory the command runs in.
            config.set_main_option("prepend_sys_path", ".")
            config.set_main_option("path_separator", "os")
    elif not config.get_main_option("script_location"):
        where = f"{config_file or 'the configuration'} [{section}]"
        raise ProjectError(
            f"{where} sets no script_location (Flask-Migrate sets it in code, and an ini "
            f"with several histories keeps one per section){histories}: pass the "
            "directory that holds env.py and versions/ as script_location=DIR, or the "
            "section as name=SECTION (Alembic's -n)"
        )
    return config


def _history_sections(config: Config) -> list[str]:
    parser = config.file_config
    return [s for s in parser.sections() if parser.has_option(s, "script_location")]


def _listed(sections: list[str]) -> str:
    if not sections:
        return ""
    return "; the sections with a script_location are " + ", ".join(f"[{s}]" for s in sections)


def _alembic_version() -> str:
    from alembic import __version__

    return __version__


# --- loading the revisions ---------------------------------------------------------


def _scripts(config: Config) -> tuple[ScriptDirectory, dict[str, dict[str, Any]]]:
    """The script directory with every revision loaded, and the import errors by path.

    Alembic loads every revision file to build its map, and one failure stops it;
    so each file that fails is replaced by a stand-in module carrying the ids its
    source assigns, and the map is built around it.
    """
    from alembic import util
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    failed: dict[str, dict[str, Any]] = {}
    load = util.load_python_file

    def load_or_stand_in(
        dir_: str | os.PathLike[str], filename: str | os.PathLike[str]
    ) -> types.ModuleType:
        try:
            return load(dir_, filename)
        except Exception as exc:  # any failure of the project's import-time code
            path = os.path.join(dir_, filename)
            error = _error(exc, path)
            module = _stand_in(path)
            if module is None:
                raise ProjectError(
                    f"cannot import {path}, nor read its revision id: {_describe(error)}"
                ) from None
            failed[path] = error
            return module

    util.load_python_file = load_or_stand_in
    try:
        script = ScriptDirectory.from_config(config)
        script.get_heads()  # loads every revision file
    except CommandError as exc:
        where = config.config_file_name or config.get_main_option("script_location")
        raise ProjectError(f"cannot load the Alembic scripts of {where}: {exc}") from None
    finally:
        util.load_python_file = load
    return script, failed


def _stand_in(path: str) -> types.ModuleType | None:
    """A module with the revision ids and docstring of a file that failed to import."""
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    values: dict[str, Any] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and value is not None:
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                values[target.id] = ast.literal_eval(value)
    if not isinstance(values.get("revision"), str):
        return None
    module = types.ModuleType("sqlmig_stand_in", ast.get_docstring(tree))
    for name in ("revision", "down_revision", "branch_labels", "depends_on"):
        setattr(module, name, values.get(name))
    setattr(module, _IMPORT_ERROR, True)
    return module


# --- rendering ---------------------------------------------------------------------


def _revision_record(
    config: Config, script: ScriptDirectory, revision: Script, import_error: dict[str, Any] | None
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "revision",
        "revision": revision.revision,
        "down_revisions": list(_tuple(revision.down_revision)),
        "dependencies": list(_tuple(revision.dependencies)),
        "doc": revision.doc or "",
        "path": revision.path,
        "import_error": import_error,
    }
    if import_error is None:
        for direction in ("upgrade", "downgrade"):
            record[direction] = _render(config, script, revision, direction)
    return record


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


class StatementLog(io.StringIO):
    """Alembic's output buffer, kept as items: each statement Alembic writes (one per
    ``write`` call; splitting the joined text on blank lines would cut a statement
    that contains one), and the markers of ``autocommit_block()``."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[str]] = []

    def write(self, text: str) -> int:
        if text.strip():
            self.items.append([SQL, text.strip()])
        return len(text)

    @contextlib.contextmanager
    def autocommit_block(self) -> Iterator[None]:
        self.items.append([AUTOCOMMIT, "begin"])
        yield
        self.items.append([AUTOCOMMIT, "end"])


def _render(
    config: Config, script: ScriptDirectory, revision: Script, direction: str
) -> dict[str, Any]:
    """``{"items": [...]}``, or ``{"error": {...}}`` when the function fails offline."""
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext

    function: Callable[[], None] | None = getattr(revision.module, direction, None)
    if function is None:
        message = f"the revision file has no {direction}() function"
        return {"error": {"type": None, "message": message, "line": None, "code": None}}
    down = ",".join(_tuple(revision.down_revision)) or None
    upgrading = direction == "upgrade"
    log = StatementLog()
    environment = EnvironmentContext(
        config,
        script,
        as_sql=True,
        starting_rev=down if upgrading else revision.revision,
        destination_rev=revision.revision if upgrading else down,
    )
    try:
        with environment:
            environment.configure(
                dialect_name=DIALECT,
                dialect_opts={"paramstyle": "named"},
                output_buffer=log,
                literal_binds=True,
                transactional_ddl=True,
            )
            context = environment.get_context()
            context.autocommit_block = log.autocommit_block  # type: ignore[method-assign]
            with Operations.context(context):
                function()
    except Exception as exc:  # any failure of the revision's code is reported, with where
        return {"error": _error(exc, revision.path)}
    return {"items": log.items}


def _error(exc: BaseException, path: str) -> dict[str, Any]:
    """The exception, the line of ``path`` that led to it, and whether it was raised
    there (a ``downgrade()`` that raises NotImplementedError itself has no way down)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if _same_file(f.filename, path)]
    line: int | None = mine[-1].lineno if mine else None
    code: str | None = (mine[-1].line or "").strip() if mine else None
    if not mine and isinstance(exc, SyntaxError) and exc.filename:
        line, code = exc.lineno, (exc.text or "").strip()
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "line": line,
        "code": code or None,
        "raised_here": bool(frames) and _same_file(frames[-1].filename, path),
    }


def _describe(error: dict[str, Any]) -> str:
    return f"{error['type']}: {error['message']}"


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# --- as a script in the project's interpreter ------------------------------------------


def main(argv: list[str]) -> int:
    """Write each record as one JSON line on standard output, as soon as it is ready.

    The one argument is a JSON object of :func:`read_project`'s arguments. Whatever
    the project prints goes to standard error, so that standard output carries
    only records; a ProjectError becomes a last ``{"kind": "error"}`` record.
    """
    arguments = json.loads(argv[0])
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        for record in read_project(
            arguments.get("config_file"),
            script_location=arguments.get("script_location"),
            section=arguments.get("section") or "alembic",
        ):
            out.write(json.dumps(record) + "\n")
            out.flush()
    except ProjectError as exc:
        out.write(json.dumps({"kind": "error", "message": str(exc)}) + "\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What ``adopt``, ``draft`` and ``check`` take from an Alembic project's ``env.py``:
the version table its ``context.configure()`` names, and its ``target_metadata``.

env.py is read, never run: running it would connect to the database it is written
for and migrate it. Its syntax tree settles the common forms (a literal, the ini's
own option through ``config.get_main_option``, models imported from a package);
what only running it would tell is an error naming the option to pass instead.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic_compat.errors import AlembicConfigError
from alembic_compat.project import ProjectError, project_config

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_VERSION_TABLE = "alembic_version"
_PROJECT_OPTIONS = ("alembic_ini", "script_location", "name")
_UNSET = object()


@dataclass(frozen=True)
class Environment:
    """A project's env.py, parsed, with the configuration of its ini section."""

    path: Path
    tree: ast.Module
    config: Config

    def version_table(self) -> tuple[str, str | None]:
        """``(name, schema)`` of the table the online ``context.configure()`` names
        (Alembic's default when it names none). Raises AlembicConfigError."""
        calls = _configure_calls(self.tree)
        online = [call for call in calls if _keyword(call, "connection") is not None]
        found = {
            (
                self._value(call, "version_table") or DEFAULT_VERSION_TABLE,
                self._value(call, "version_table_schema"),
            )
            for call in online or calls
        }
        if len(found) > 1:
            shown = " and ".join(sorted(f"{s + '.' if s else ''}{n}" for n, s in found))
            raise self._error(f"its context.configure() calls name {shown}", "version_table")
        return found.pop() if found else (DEFAULT_VERSION_TABLE, None)

    def target_metadata(self) -> str:
        """The models as ``package.module:attribute``, from the module-level
        ``target_metadata = ...`` and the import that binds its first name.
        Raises AlembicConfigError."""
        value = None
        for node in self.tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and any(
                isinstance(t, ast.Name) and t.id == "target_metadata" for t in _targets(node)
            ):
                value = node.value
        if value is None:
            raise self._error("it sets no target_metadata", "metadata")
        chain = _dotted(value)
        if chain is None:
            what = "None" if isinstance(value, ast.Constant) else ast.unparse(value)
            raise self._error(f"its target_metadata is {what} (line {value.lineno})", "metadata")
        module, attribute = _imported(self.tree, chain)
        if module is None or not attribute:
            raise self._error(
                f"its target_metadata, {'.'.join(chain)} (line {value.lineno}), is not "
                "an attribute of a module it imports",
                "metadata",
            )
        return f"{module}:{attribute}"

    def _value(self, call: ast.Call, name: str) -> str | None:
        expression = _keyword(call, name)
        if expression is None:
            return None
        if isinstance(expression, ast.Constant) and (
            expression.value is None or isinstance(expression.value, str)
        ):
            return expression.value
        option = _main_option(expression)
        if option is not None:
            key, default = option
            return self.config.get_main_option(key, default)
        raise self._error(
            f"its {name} is computed when it runs ({ast.unparse(expression)}, line "
            f"{expression.lineno})",
            "version_table",
        )

    def _error(self, what: str, option: str) -> AlembicConfigError:
        value = {"version_table": "[SCHEMA.]NAME", "metadata": "package.module:attribute"}
        return AlembicConfigError(
            f"cannot tell from {self.path} without running it: {what}; pass "
            f"{option}={value[option]}",
            options=(option,),
        )


def read_environment(
    config_file: str | None, *, script_location: str | None = None, section: str = "alembic"
) -> Environment:
    """The env.py of the project's history ``section`` (Alembic's ``-n``), or of
    ``script_location``. Raises AlembicConfigError when it cannot be found or parsed."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        config = project_config(config_file, script_location, section)
        path = Path(ScriptDirectory.from_config(config).env_py_location)
    except (ProjectError, CommandError) as exc:
        raise AlembicConfigError(str(exc), options=_PROJECT_OPTIONS) from None
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except OSError as exc:
        raise AlembicConfigError(
            f"cannot read {path}: {exc.strerror or exc}; pass the directory that holds "
            "env.py as script_location=DIR",
            options=_PROJECT_OPTIONS,
        ) from None
    except SyntaxError as exc:
        raise AlembicConfigError(
            f"{path}, line {exc.lineno}: {exc.msg}", options=_PROJECT_OPTIONS
        ) from None
    return Environment(path, tree, config)


def _configure_calls(tree: ast.Module) -> list[ast.Call]:
    """Every ``<something>.configure(...)`` call: ``context.configure`` however imported."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "configure"
    ]


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _main_option(expression: ast.expr) -> tuple[str, str | None] | None:
    """``(key, default)`` of ``config.get_main_option("key"[, "default"])``."""
    if not (
        isinstance(expression, ast.Call)
        and isinstance(expression.func, ast.Attribute)
        and expression.func.attr == "get_main_option"
        and not expression.keywords
    ):
        return None
    args = [
        a.value for a in expression.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
    ]
    if len(args) != len(expression.args) or not 1 <= len(args) <= 2:
        return None
    return args[0], (args[1] if len(args) == 2 else None)


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _dotted(expression: ast.expr) -> list[str] | None:
    """``["Base", "metadata"]`` for ``Base.metadata``; None for anything else."""
    parts: list[str] = []
    while isinstance(expression, ast.Attribute):
        parts.append(expression.attr)
        expression = expression.value
    if not isinstance(expression, ast.Name):
        return None
    return [expression.id, *reversed(parts)]


def _imported(tree: ast.Module, chain: list[str]) -> tuple[str | None, str]:
    """The module and attribute path that ``chain`` names through env.py's
    module-level imports (the last binding of its first name wins, as when run)."""
    root, rest = chain[0], chain[1:]
    found: tuple[str | None, str] = (None, "")
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                if (alias.asname or alias.name) == root:
                    found = (node.module, ".".join([alias.name, *rest]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname == root:
                    found = (alias.name, ".".join(rest))
                elif alias.asname is None and alias.name.split(".")[0] == root:
                    found = _longest_module(alias.name, chain)
        elif root in _defined(node):
            found = (None, "")  # defined in env.py itself: nothing to import
    return found


def _defined(node: ast.stmt) -> set[str]:
    """The names a module-level assignment, function or class binds."""
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return {node.name}
    if isinstance(node, ast.Assign | ast.AnnAssign):
        return {t.id for t in _targets(node) if isinstance(t, ast.Name)}
    return set()


def _longest_module(imported: str, chain: list[str]) -> tuple[str | None, str]:
    """For ``import a.b`` and ``a.b.Base.metadata``: ``("a.b", "Base.metadata")``."""
    parts = imported.split(".")
    if chain[: len(parts)] != parts:
        return (parts[0], ".".join(chain[1:]))
    return (imported, ".".join(chain[len(parts) :]))

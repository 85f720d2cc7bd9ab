"""Finding code in a revision that Alembic runs only online, which an import cannot see.

Offline rendering calls ``upgrade()`` and ``downgrade()`` with no database: code
behind ``if not context.is_offline_mode():`` (or a check of ``as_sql``) does not
run, and code that only reads the database renders nothing. Both would leave the
imported file without what the revision does online, so both are found in the
revision's source: a reference to ``is_offline_mode`` or ``as_sql``, and a
function with a body that rendered no statement.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

_CHECKS = {"is_offline_mode": "is_offline_mode()", "as_sql": "as_sql"}
DIRECTIONS = ("upgrade", "downgrade")


@dataclass(frozen=True)
class Finding:
    """One place: the function it is in (None: outside both), its line, what it is."""

    direction: str | None
    line: int | None
    reason: str


def findings(path: str, rendered_nothing: dict[str, bool]) -> list[Finding]:
    """What of the revision file at ``path`` runs only online.

    ``rendered_nothing`` says, for each direction rendered, whether it gave no
    statement. A file that cannot be read or parsed yields nothing to report.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, ValueError):
        return []
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in DIRECTIONS
    }
    found: list[Finding] = []
    for line, check in sorted(set(_checks(tree))):
        direction = next(
            (name for name, f in functions.items() if f.lineno <= line <= (f.end_lineno or 0)),
            None,
        )
        where = f"{direction}()" if direction else "the revision"
        found.append(
            Finding(
                direction, line, f"{where} branches on {check}: what it runs online is not here"
            )
        )
    branching = {f.direction for f in found}
    for direction, nothing in rendered_nothing.items():
        function = functions.get(direction)
        code = _first_code(function) if function is not None else None
        if nothing and code is not None and direction not in branching:
            found.append(
                Finding(
                    direction,
                    code,
                    f"{direction}() has code but renders no SQL offline: what it does "
                    "online is not here",
                )
            )
    return found


def _checks(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _CHECKS:
            yield node.lineno, _CHECKS[node.attr]
        elif isinstance(node, ast.Name) and node.id in _CHECKS:
            yield node.lineno, _CHECKS[node.id]


def _first_code(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int | None:
    """The line of the first statement that does something: not a docstring, ``pass``
    or ``...``."""
    for statement in function.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring, or ...
        return statement.lineno
    return None

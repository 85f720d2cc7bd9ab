"""Checks on the SQL of every script, made before anything runs.

File names, encodings and sections are checked while loading (``sqlmig.source``);
here the scripts are lexed to refuse what would fail half-way or silently: an
unterminated string or comment, and transaction control inside a script that
sqlmig runs in its own transaction (a ``COMMIT`` there would commit half a
migration without its record).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmig.errors import FileProblem, MigrationFileError
from sqlmig.source import Migration, Script
from sqlmig.sqlscript import line_col, split_statements, transaction_control, unterminated


def script_problems(script: Script) -> list[FileProblem]:
    """What is wrong with one script's SQL, located in its file."""
    problems: list[FileProblem] = []
    path = str(script.path)

    def line_of(offset: int) -> int:
        return script.first_line + line_col(script.sql, offset)[0] - 1

    opened = unterminated(script.sql)
    if opened is not None:
        what, offset = opened
        problems.append(
            FileProblem(
                path, f"unterminated {what}: it opens here and never closes", line_of(offset)
            )
        )
    if script.transactional:
        for statement in split_statements(script.sql):
            keyword = transaction_control(statement)
            if keyword is not None:
                problems.append(
                    FileProblem(
                        path,
                        f"{keyword} inside a migration that sqlmig runs in its own transaction "
                        "would end that transaction half-way; remove it (sqlmig commits for "
                        "you), or add `-- sqlmig:no-transaction` to manage transactions yourself",
                        line_of(statement.start),
                    )
                )
    return problems


def check_scripts(migrations: Sequence[Migration]) -> None:
    """Raise MigrationFileError listing every script problem in the directory."""
    problems: list[FileProblem] = []
    for m in migrations:
        for script in (m.up, m.down):
            if script is not None:
                problems.extend(script_problems(script))
    if problems:
        raise MigrationFileError(problems)

"""Checks on the SQL of every script, made before anything runs.

File names, encodings and sections are checked while loading (``sqlmig.source``);
here the scripts are lexed to refuse what would fail half-way or silently: an
unterminated string or comment, transaction control inside a script that sqlmig
runs in its own transaction (a ``COMMIT`` there would commit half a migration
without its record), and statements that PostgreSQL refuses inside a transaction
(``sqlmig.ddl``), found here rather than after the statements before them ran.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from sqlmig.ddl import outside_transaction
from sqlmig.errors import FileProblem, MigrationFileError
from sqlmig.source import Migration, Script, scan_directory, sort_problems
from sqlmig.sqlscript import Statement, control_candidates, line_col, transaction_control


def script_problems(script: Script) -> list[FileProblem]:
    """What is wrong with one script's SQL, located in its file."""
    problems: list[FileProblem] = []
    path = str(script.path)

    def line_of(offset: int) -> int:
        return script.first_line + line_col(script.sql, offset)[0] - 1

    statements, opened = control_candidates(script.sql)  # one pass over the script
    if opened is not None:
        what, offset = opened
        problems.append(
            FileProblem(
                path, f"unterminated {what}: it opens here and never closes", line_of(offset)
            )
        )
    if script.transactional:
        wrapper = script.wrapper
        for statement in statements:
            keyword = transaction_control(statement)
            if keyword is None:
                continue
            if wrapper is None:
                text: str | None = (
                    f"{keyword} inside a migration that sqlmig runs in its own transaction "
                    "would end that transaction half-way; remove it (sqlmig commits for "
                    "you), or add `-- sqlmig:no-transaction` to manage transactions yourself"
                )
            elif statement.start in wrapper.offsets:
                text = _not_plain(statement, keyword)
            else:
                text = (
                    f"{keyword} inside the script's own {wrapper.begin.sql} ... "
                    f"{wrapper.end.sql} (lines {line_of(wrapper.begin.start)}-"
                    f"{line_of(wrapper.end.start)}) would end that transaction half-way: sqlmig "
                    "runs a wrapped script as one transaction with its tracking row; keep one "
                    "BEGIN ... COMMIT around the whole script, or add "
                    "`-- sqlmig:no-transaction` to run its transactions as written"
                )
            if text is not None:
                problems.append(FileProblem(path, text, line_of(statement.start)))
        for refusal in outside_transaction(script.sql, first_line=script.first_line):
            problems.append(FileProblem(path, refusal.message, line_of(refusal.offset)))
    else:
        opener = _left_open(statements)
        if opener is not None:
            keyword, offset = opener
            problems.append(
                FileProblem(
                    path,
                    f"{keyword} opens a transaction that the script never ends: sqlmig runs "
                    "this script outside a transaction and cannot commit or record it while "
                    "one is open; add COMMIT after the statements it should cover",
                    line_of(offset),
                )
            )
    return problems


_PLAIN = {
    "BEGIN": ((), ("WORK",), ("TRANSACTION",)),
    "START TRANSACTION": ((),),
    "COMMIT": ((), ("WORK",), ("TRANSACTION",), ("AND", "NO", "CHAIN")),
    "END": ((), ("WORK",), ("TRANSACTION",), ("AND", "NO", "CHAIN")),
}
_COMMENT = re.compile(r"--[^\n\r]*|/\*.*?\*/", re.S)


def _not_plain(statement: Statement, keyword: str) -> str | None:
    """Why a wrapper's BEGIN or COMMIT cannot simply give way to sqlmig's: transaction
    modes that sqlmig's BEGIN would not set, a COMMIT that opens the next one."""
    words = tuple(_COMMENT.sub(" ", statement.sql).upper().split())
    rest = words[len(keyword.split()) :]
    if rest in _PLAIN[keyword]:
        return None
    if keyword in ("BEGIN", "START TRANSACTION"):
        modes = " ".join(word for word in rest if word not in ("WORK", "TRANSACTION"))
        return (
            f"{statement.sql} opens the script's own transaction with modes that sqlmig's "
            "BEGIN, which takes its place, would not set; write BEGIN; and make "
            f"SET TRANSACTION {modes}; the first statement inside it"
        )
    return (
        f"{statement.sql} ends the script's own transaction and starts another; end the "
        "script with COMMIT;"
    )


# The transaction control that opens a transaction, and what ends one.
OPENS = ("BEGIN", "START TRANSACTION")
ENDS = ("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE TRANSACTION")


def _left_open(statements: Sequence[Statement]) -> tuple[str, int] | None:
    """The BEGIN of a no-transaction script that no COMMIT (or ROLLBACK...) follows."""
    opened: tuple[str, int] | None = None
    for statement in statements:
        keyword = transaction_control(statement)
        if keyword in OPENS and opened is None:
            opened = (keyword, statement.start)
        elif keyword in ENDS:
            opened = None
    return opened


def validate_files(directory: str | os.PathLike[str]) -> list[Migration]:
    """The migrations of ``directory``, every file and script checked; needs no database.

    Raises one MigrationFileError listing every problem of every file (names,
    pairs, encoding, sections, SQL), sorted by file and line, so that one run
    shows the operator everything to fix.
    """
    scan = scan_directory(directory)
    problems = list(scan.problems)
    for script in scan.scripts:
        problems.extend(script_problems(script))
    if problems:
        raise MigrationFileError(sort_problems(problems))
    return scan.migrations

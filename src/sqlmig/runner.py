"""Sending a migration's SQL to the server, and turning a failure into a located error.

Scripts go through the DBAPI cursor with no parameters, so psycopg sends them as
written (simple query protocol): ``%``, ``:name``, ``$1`` and ``$$`` bodies are never
touched, unlike ``text()`` or ``exec_driver_sql``. A no-transaction script is split
and sent one statement at a time, because PostgreSQL runs a multi-statement string
as one implicit transaction, where ``CREATE INDEX CONCURRENTLY`` is refused.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import Connection

from sqlmig.errors import MigrationError
from sqlmig.source import Script
from sqlmig.sqlscript import Statement, excerpt, line_col, split_statements


class StatementFailure(Exception):
    """Statement ``index`` (0-based) of a split script failed; those before it committed."""

    def __init__(self, error: psycopg.Error, statements: tuple[Statement, ...], index: int):
        super().__init__(str(error))
        self.error = error
        self.statements = statements
        self.index = index


def run_script(conn: Connection, sql: str) -> None:
    """Send a whole script as one query string on the connection's current transaction."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def run_statements(conn: Connection, script: Script) -> int:
    """Send a script one statement at a time (the connection must be in autocommit).

    Returns how many statements ran; raises StatementFailure naming the one that failed.
    """
    statements = tuple(split_statements(script.sql))
    cursor = conn.connection.cursor()
    try:
        for index, statement in enumerate(statements):
            try:
                cursor.execute(statement.sql)
            except psycopg.Error as exc:
                raise StatementFailure(exc, statements, index) from exc
    finally:
        cursor.close()
    return len(statements)


def locate(script: Script, offset: int) -> tuple[int, int, str]:
    """File line, column and an excerpt with a caret for a character offset in the script."""
    line, column = line_col(script.sql, offset)
    return (
        script.first_line + line - 1,
        column,
        excerpt(script.sql, line, column, first_line=script.first_line),
    )


def sql_error(
    exc: psycopg.Error,
    script: Script,
    *,
    version: str,
    direction: str,
    base_offset: int | None = None,
    state: str,
) -> MigrationError:
    """A MigrationError carrying the server's diagnostics, mapped into the file.

    ``base_offset`` is where the statement that was sent starts in the script (None
    when the whole script was sent); the server's position is counted from there.
    Without a position, a statement sent alone is still named by where it starts.
    """
    diag = exc.diag
    position = diag.statement_position
    line = column = None
    snippet = None
    if position is not None and position.isdigit():
        line, column, snippet = locate(script, (base_offset or 0) + int(position) - 1)
    elif base_offset is not None:
        line, column, snippet = locate(script, base_offset)
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    return MigrationError(
        version=version,
        path=str(script.path),
        direction=direction,
        message=message,
        sqlstate=diag.sqlstate,
        line=line,
        column=column,
        detail=diag.message_detail,
        hint=diag.message_hint or _hint(diag.sqlstate, script),
        excerpt=snippet,
        state=state,
    )


def _hint(sqlstate: str | None, script: Script) -> str | None:
    if sqlstate == "25001" and script.transactional:  # active_sql_transaction
        return (
            "this statement cannot run inside a transaction: add `-- sqlmig:no-transaction` "
            "to the leading comments of the file"
        )
    return None

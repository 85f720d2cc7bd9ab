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
from sqlmig.sqlscript import (
    Statement,
    excerpt,
    line_col,
    server_position_to_offset,
    split_statements,
    statement_groups,
)


class StatementFailure(Exception):
    """Statement ``index`` (0-based) of a split script failed; those before it committed."""

    def __init__(self, error: psycopg.Error, statements: tuple[Statement, ...], index: int):
        super().__init__(str(error))
        self.error = error
        self.statements = statements
        self.index = index


class StatementInterrupted(KeyboardInterrupt):
    """An interrupt (Ctrl-C, SIGTERM) came while statement ``index`` (0-based) of a split
    script ran or was about to: those before it committed, it may or may not have."""

    def __init__(
        self, interrupt: KeyboardInterrupt, statements: tuple[Statement, ...], index: int
    ) -> None:
        super().__init__(*interrupt.args)
        self.statements = statements
        self.index = index


# A script longer than this (in characters) is sent in pieces of whole statements
# about this long: the client then holds one piece at a time in psycopg's and libpq's
# buffers rather than copies of the whole script, and the server parses less at once.
GROUP_CHARS = 1 << 20


class ScriptFailure(Exception):
    """A script sent on a transaction failed; ``offset`` is where the text sent starts
    in the script, from which the server's error position counts."""

    def __init__(self, error: psycopg.Error, offset: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.offset = offset


def run_script(conn: Connection, sql: str) -> None:
    """Send a script on the connection's current transaction: as one query string, or,
    when it is long, in pieces cut where statements start, one after the other.

    Raises ScriptFailure carrying the driver's error.
    """
    cursor = conn.connection.cursor()
    offset = 0
    try:
        if len(sql) <= GROUP_CHARS:
            cursor.execute(sql)
        else:
            for offset, end in statement_groups(sql, GROUP_CHARS):
                cursor.execute(sql[offset:end])
    except psycopg.Error as exc:
        raise ScriptFailure(exc, offset) from exc
    finally:
        cursor.close()


def run_statements(conn: Connection, script: Script) -> int:
    """Send a script one statement at a time (the connection must be in autocommit).

    Returns how many statements ran; raises StatementFailure naming the one that failed,
    or StatementInterrupted naming the one an interrupt cut short.
    """
    statements = tuple(split_statements(script.sql))
    cursor = conn.connection.cursor()
    index = 0
    try:
        for index, statement in enumerate(statements):
            try:
                cursor.execute(statement.sql)
            except psycopg.Error as exc:
                raise StatementFailure(exc, statements, index) from exc
    except KeyboardInterrupt as exc:
        # psycopg has already asked the server to cancel the statement.
        raise StatementInterrupted(exc, statements, index) from exc
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
    sent_from: int = 0,
    state: str,
) -> MigrationError:
    """A MigrationError carrying the server's diagnostics, mapped into the file.

    ``base_offset`` is where the statement that was sent starts in the script (None
    when the whole script was sent); the server's position is counted from there.
    Without a position, a statement sent alone is still named by where it starts.
    ``sent_from`` is where the text sent starts when a script went in pieces
    (ScriptFailure.offset): it only moves the position.
    """
    diag = exc.diag
    position = diag.statement_position
    line = column = None
    snippet = None
    if position is not None and position.isdigit():
        start = base_offset if base_offset is not None else sent_from
        line, column, snippet = locate(script, start + server_position_to_offset(int(position)))
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

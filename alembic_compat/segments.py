"""A revision's statements grouped into transactions as Alembic runs them online.

Alembic online runs a revision in the transaction ``env.py`` opened. Inside
``autocommit_block()`` it commits that transaction, runs the block's statements in
autocommit, then begins a new transaction for the statements after the block. An
explicit ``op.execute("COMMIT")`` ends the transaction too, and the driver begins
the next one with the next statement; an explicit ``BEGIN`` there only earns a
warning. So a revision is a sequence of segments: runs of ordinary statements, each
one transaction, and the statements of autocommit blocks, each on its own.

A revision of one transactional segment is an ordinary sqlmig file. Any other
becomes a ``-- sqlmig:no-transaction`` file with ``BEGIN; … COMMIT;`` around each
transactional segment, which sqlmig's no-transaction runner runs as one transaction
each: a failure rolls back the segment it is in, as it would under Alembic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alembic_compat.offline import tidy
from alembic_compat.project import AUTOCOMMIT
from sqlmig.sqlscript import split_statements, transaction_control

COMMIT = "COMMIT;"
_OPENS = ("BEGIN", "START TRANSACTION")
_ENDS = ("COMMIT", "END", "ROLLBACK", "ABORT", "PREPARE TRANSACTION")


@dataclass(frozen=True)
class Segment:
    """Statements that run in one transaction (``transactional``), ended by ``end``
    (``COMMIT;``, or the revision's own ``ROLLBACK``...), or each on its own."""

    transactional: bool
    statements: tuple[str, ...]
    end: str = COMMIT


@dataclass(frozen=True)
class RenderedSql:
    """One direction of a revision as SQL, in the transactions Alembic runs it in."""

    segments: tuple[Segment, ...]

    @property
    def transactional(self) -> bool:
        """One transaction, sqlmig's own: no BEGIN or COMMIT is written."""
        return all(s.transactional and s.end == COMMIT for s in self.segments) and (
            len(self.segments) <= 1
        )

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(s for segment in self.segments for s in segment.statements)

    @property
    def transactions(self) -> int:
        return sum(1 for s in self.segments if s.transactional)

    def body(self) -> list[str]:
        """The statements of the file, with BEGIN and COMMIT where they belong."""
        if self.transactional:
            return list(self.statements)
        lines: list[str] = []
        for segment in self.segments:
            if segment.transactional:
                lines += ["BEGIN;", *segment.statements, segment.end]
            else:
                lines += segment.statements
        return lines


def segments_of(items: Iterable[Sequence[str]]) -> RenderedSql:
    """The segments of the items a revision rendered (see :mod:`alembic_compat.project`)."""
    segments: list[Segment] = []
    current: list[str] = []
    depth = 0  # inside autocommit_block(), however nested

    def close(end: str = COMMIT) -> None:
        if current:
            segments.append(Segment(True, tuple(current), end))
            current.clear()

    for kind, text in items:
        if kind == AUTOCOMMIT:
            if text == "begin":
                close()
                depth += 1
            else:
                depth -= 1
            continue
        statement = tidy(text.strip())
        if depth:
            # In autocommit even BEGIN and COMMIT reach the server as written.
            if segments and not segments[-1].transactional:
                last = segments.pop()
                segments.append(Segment(False, (*last.statements, statement)))
            else:
                segments.append(Segment(False, (statement,)))
            continue
        keyword = _control(statement)
        if keyword in _OPENS:
            continue  # the driver has opened the transaction already
        if keyword in _ENDS:
            close(statement)
        else:
            current.append(statement)
    close()
    return RenderedSql(tuple(segments))


def _control(statement: str) -> str | None:
    parsed = split_statements(statement)
    return transaction_control(parsed[0]) if len(parsed) == 1 else None

"""Rendering library results for people (aligned text) and for scripts (JSON).

The JSON field names are a stable interface, documented in the README: add fields,
never rename or remove them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from sqlmig.errors import MigrationError, MigrationInterrupted, SqlmigError

if TYPE_CHECKING:
    from sqlmig.fleet import FleetResult, TargetResult
    from sqlmig.migrator import MigrationResult, RunResult
    from sqlmig.plan import MigrationStatus
    from sqlmig.tracker import AppliedMigration

_STATE_STYLE = {
    "pending": "yellow",
    "applied": "green",
    "failed": "bold red",
    "rolled_back": "cyan",
    "changed": "bold magenta",
    "missing": "bold red",
}


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def result_json(result: MigrationResult) -> dict[str, Any]:
    return {
        "version": result.version,
        "name": result.name,
        "filename": result.filename,
        "direction": result.direction,
        "duration_ms": result.duration_ms,
        "transactional": result.transactional,
        "notices": [
            {"severity": n.severity, "message": n.message, "detail": n.detail, "hint": n.hint}
            for n in result.notices
        ],
    }


def run_json(command: str, run: RunResult) -> dict[str, Any]:
    return {
        "ok": True,
        "command": command,
        "migrations": [result_json(r) for r in run.migrations],
        "lock_wait_s": round(run.lock_wait_s, 3),
    }


def status_json(states: Sequence[MigrationStatus]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state.value] = counts.get(s.state.value, 0) + 1
    return {
        "ok": True,
        "command": "status",
        "migrations": [
            {
                "version": s.version,
                "name": s.name,
                "filename": s.filename,
                "state": s.state.value,
                "applied_at": _time(s.applied_at),
                "duration_ms": s.duration_ms,
                "checksum": s.checksum,
                "recorded_checksum": s.recorded_checksum,
            }
            for s in states
        ],
        "counts": counts,
    }


def history_json(rows: Sequence[AppliedMigration]) -> dict[str, Any]:
    return {
        "ok": True,
        "command": "history",
        "rows": [
            {
                "version": r.version,
                "filename": r.filename,
                "checksum": r.checksum,
                "applied_at": _time(r.applied_at),
                "duration_ms": r.duration_ms,
                "status": r.status,
            }
            for r in rows
        ],
    }


def error_json(
    command: str, exc: SqlmigError | MigrationInterrupted, message: str | None = None
) -> dict[str, Any]:
    """The failure document; ``message`` is the error's as its reader should see it (the
    command line's names its flags), else its own."""
    error: dict[str, Any] = {
        "type": type(exc).__name__,
        "exit_code": exc.exit_code,
        "message": str(exc) if message is None else message,
    }
    if isinstance(exc, MigrationError):
        error.update(
            version=exc.version,
            direction=exc.direction,
            file=exc.path,
            line=exc.line,
            column=exc.column,
            sqlstate=exc.sqlstate,
            server_message=exc.server_message,
            detail=exc.detail,
            hint=exc.hint,
            constraint=exc.constraint,
            outcome=exc.outcome,
        )
    if isinstance(exc, MigrationInterrupted):
        error.update(
            version=exc.version,
            direction=exc.direction,
            outcome=exc.outcome,
            transactional=exc.transactional,
            signal=exc.signal,
        )
    problems = getattr(exc, "problems", None)
    if problems:
        error["problems"] = [str(p) for p in problems]
    return {
        "ok": False,
        "command": command,
        "error": error,
        "migrations": [result_json(r) for r in exc.completed],
    }


def dump(document: dict[str, Any], out: IO[str]) -> None:
    json.dump(document, out, indent=2)
    out.write("\n")


def status_table(states: Sequence[MigrationStatus], out: IO[str], color: bool) -> None:
    rows = [
        (
            s.version,
            s.name,
            s.state.value,
            s.applied_at.strftime("%Y-%m-%d %H:%M:%S %Z") if s.applied_at else "",
            "" if s.duration_ms is None else str(s.duration_ms),
        )
        for s in states
    ]
    header = ("version", "name", "state", "applied at", "ms")
    out.write(_text_table(header, rows, right={4}, state_column=2, color=color))


def history_table(rows: Sequence[AppliedMigration], out: IO[str], color: bool) -> None:
    cells = [
        (
            r.applied_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
            r.version,
            r.filename,
            r.status,
            str(r.duration_ms),
            r.checksum[:19] + "…",
        )
        for r in rows
    ]
    header = ("applied at", "version", "filename", "status", "ms", "checksum")
    out.write(_text_table(header, cells, right={4}, state_column=3, color=color))


_ANSI = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "magenta": "35", "cyan": "36"}


def _paint(text: str, style: str) -> str:
    codes = ";".join(_ANSI[word] for word in style.split())
    return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


def _text_table(
    header: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
    *,
    right: set[int],
    state_column: int,
    color: bool,
) -> str:
    """Columns padded to their widest cell, two spaces apart; the state coloured.

    Plain string formatting, not a rich Table: with thousands of rows rich's layout
    took longer than the rest of ``status`` together. Never wrapped, on a terminal
    or a pipe alike.
    """
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)

    def line(cells: tuple[str, ...], paint: bool) -> str:
        parts = []
        for i, cell in enumerate(cells):
            padded = cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            if paint and i == state_column:
                padded = _paint(padded, _STATE_STYLE.get(cell, ""))
            parts.append(padded)
        return "  ".join(parts).rstrip(" ")

    head = line(header, False)
    out = [_paint(head, "bold") if color else head, "  ".join("-" * w for w in widths)]
    out.extend(line(row, color) for row in rows)
    return "\n".join(out) + "\n"


def summary(command: str, run: RunResult) -> str:
    """One line for the end of a run."""
    if not run.migrations:
        return (
            "nothing to do: the database is up to date"
            if command == "up"
            else ("nothing to roll back")
        )
    total = sum(r.duration_ms for r in run.migrations)
    verb = {"up": "applied", "down": "rolled back", "redo": "redid"}.get(command, command)
    count = len(run.migrations) if command != "redo" else len(run.migrations) // 2
    noun = "migration" if count == 1 else "migrations"
    waited = f", after waiting {run.lock_wait_s:.1f}s for the lock" if run.lock_wait_s else ""
    return f"{verb} {count} {noun} in {total} ms{waited}"


# --- a fleet -----------------------------------------------------------------------------


def _target_json(r: TargetResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "target": r.target.name,
        "where": r.target.where,
        "schema": r.target.schema,
        "state": r.state.value,
        "before": r.before,
        "after": r.after,
        "applied": list(r.applied),
        "pending": r.pending,
        "duration_ms": r.duration_ms,
    }
    if r.error is not None:
        record["error"] = error_json("", r.error)["error"]
    return record


def fleet_json(result: FleetResult) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for r in result.results:
        counts[r.state.value] = counts.get(r.state.value, 0) + 1
    return {
        "ok": result.exit_code == 0,
        "command": result.command,
        "exit_code": result.exit_code,
        "interrupted": result.interrupted,
        "duration_ms": result.duration_ms,
        "counts": counts,
        "targets": [_target_json(r) for r in result.results],
    }


def _fleet_cells(r: TargetResult) -> tuple[str, ...]:
    from sqlmig.fleet import TargetState

    outcome = r.state.value.replace("_", " ")
    if r.state is TargetState.PENDING:
        outcome = f"{r.pending} pending"
    if r.error is not None:
        first = str(r.error).splitlines()[0]
        outcome += f": {first}"
    return (
        r.target.name,
        r.before or "-",
        r.after or "-",
        str(len(r.applied)),
        f"{r.duration_ms / 1000:.1f}s",
        outcome,
    )


def fleet_table(result: FleetResult, out: IO[str], color: bool) -> None:
    """A line per target, then one for the fleet; passwords never appear (names only,
    and error texts are scrubbed where they are made)."""
    from sqlmig.fleet import TargetState

    if not result.results:
        out.write("no target to run: the fleet options matched none\n")
        return
    header = ("target", "before", "after", "applied", "took", "result")
    rows = [_fleet_cells(r) for r in result.results]
    out.write(_text_table(header, rows, right={3, 4}, state_column=-1, color=color))
    counts = ", ".join(
        f"{result.count(state)} {state.value.replace('_', ' ')}"
        for state in TargetState
        if result.count(state)
    )
    stopped = f"; interrupted by {result.interrupted}" if result.interrupted else ""
    out.write(
        f"{len(result.results)} targets in {result.duration_ms / 1000:.1f}s: {counts}{stopped}\n"
    )


class FleetProgress:
    """The fleet's progress: one line rewritten on a terminal, a line per target elsewhere."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.started = time.monotonic()
        self.failures = 0
        self.drawn = False

    def __call__(self, result: TargetResult, ended: int, total: int) -> None:
        if not result.ok:
            self.failures += 1
        elapsed = time.monotonic() - self.started
        if not self.live:
            word = result.state.value.replace("_", " ")
            self.stream.write(f"[{ended}/{total}] {result.target.name}: {word}\n")
            self.stream.flush()
            return
        eta = elapsed / ended * (total - ended) if ended else 0.0
        self.stream.write(
            f"\r{ended}/{total} targets, {self.failures} failed, {elapsed:.0f}s elapsed, "
            f"ETA {eta:.0f}s\x1b[K"
        )
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

"""Rendering library results for people (aligned text) and for scripts (JSON).

The JSON field names are a stable interface, documented in the README: add fields,
never rename or remove them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from sqlmig.errors import MigrationError, MigrationInterrupted, SqlmigError

if TYPE_CHECKING:
    from sqlmig.fleet import FleetResult, TargetResult
    from sqlmig.lint import Finding, Mode, Report
    from sqlmig.locking import LockHolder, LockRelease, LockState
    from sqlmig.migrator import AdoptResult, MigrationResult, RunResult
    from sqlmig.plan import MigrationStatus
    from sqlmig.source import Migration
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
                "notes": list(s.migration.notes) if s.migration else [],
            }
            for s in states
        ],
        "counts": counts,
    }


def notes_lines(migrations: Sequence[Migration]) -> list[str]:
    """One line per note, under its migration: what sqlmig made of a file that a reader
    might not expect (a recognised BEGIN ... COMMIT, a script with no SQL)."""
    lines: list[str] = []
    for m in migrations:
        lines.extend(f"  {m.version} {m.filename}: {note}" for note in m.notes)
    return lines


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


def holder_json(holder: LockHolder | None) -> dict[str, Any] | None:
    if holder is None:
        return None
    return {
        "pid": holder.pid,
        "application": holder.application,
        "client_addr": holder.client_addr,
        "since": _time(holder.since),
        "state": holder.state,
        "host": holder.host,
        "run_id": holder.run_id,
        "heartbeat_at": _time(holder.heartbeat_at),
        "heartbeat_age_s": _seconds(holder.heartbeat_age_s),
        "expires_at": _time(holder.expires_at),
        "expires_in_s": _seconds(holder.expires_in_s),
        "expired": holder.expired,
    }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def lock_state_json(state: LockState) -> dict[str, Any]:
    return {
        "ok": True,
        "command": "lock status",
        "strategy": state.strategy,
        "lock": state.lock,
        "held": state.held,
        "holder": holder_json(state.holder),
    }


def lock_release_json(release: LockRelease) -> dict[str, Any]:
    return {
        "ok": True,
        "command": "lock release",
        "strategy": release.state.strategy,
        "lock": release.state.lock,
        "action": release.action,
        "holder": holder_json(release.state.holder),
    }


def lock_state_text(state: LockState) -> str:
    """``sqlmig lock status`` for people: one line, then the holder's details."""
    holder = state.holder
    if holder is None:
        return f"free: nobody holds the migration lock ({state.lock}, strategy {state.strategy})"
    if holder.expired:
        head = (
            f"free: the migration lock ({state.lock}, strategy {state.strategy}) is an "
            "expired lease; the next run takes it over"
        )
    else:
        head = f"held: the migration lock ({state.lock}, strategy {state.strategy}) is held"
    return head + "\n" + _holder_text(holder)


def _holder_text(holder: LockHolder) -> str:
    since = holder.since.isoformat(sep=" ", timespec="seconds") if holder.since else "-"
    if holder.run_id is None:
        rows = [
            ("pid", str(holder.pid)),
            ("application", holder.application or "-"),
            ("client", holder.client_addr or "local socket"),
            ("since", since),
            ("state", holder.state or "unknown"),
        ]
    else:
        expiry = holder.expires_in_s or 0.0
        rows = [
            ("run", holder.run_id),
            ("host", holder.host or "-"),
            ("pid", str(holder.pid)),
            ("application", holder.application or "-"),
            ("since", since),
            ("heartbeat", f"{holder.heartbeat_age_s or 0.0:.1f}s ago"),
            (
                "expires",
                f"in {expiry:.1f}s" if expiry > 0 else f"{-expiry:.1f}s ago (expired)",
            ),
        ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


def lock_question(state: LockState) -> str:
    """What ``sqlmig lock release --force`` asks before it acts."""
    if state.strategy == "table":
        return f"Remove the live {state.lock} of {state.holder}?"
    return f"Terminate the server session {state.holder}, which holds the {state.lock}?"


def lock_release_text(release: LockRelease) -> str:
    state = release.state
    if release.action == "deleted":
        return f"removed the {state.lock} of {state.holder}"
    if release.action == "terminated":
        return f"terminated the session holding the {state.lock}: {state.holder}"
    if state.holder is None:
        return f"nothing to release: nobody holds the migration lock ({state.lock})"
    return f"nothing to release: {state.holder} let go of the {state.lock} meanwhile"


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
        if exc.blockers:
            error["blockers"] = [asdict(b) for b in exc.blockers]
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


def adopt_json(result: AdoptResult) -> dict[str, Any]:
    plan = result.takeover
    return {
        "ok": True,
        "command": "adopt",
        "tool": plan.tool.value,
        "table": plan.table,
        "state": plan.state,
        "renamed_to": plan.renamed_to,
        "versions": list(result.versions),
        "pending": [m.version for m in plan.pending],
        "out_of_order": [m.version for m in plan.out_of_order],
        "already_adopted": plan.done,
        "dry_run": result.dry_run,
        "sql": list(result.statements),
    }


def adopt_lines(result: AdoptResult) -> list[str]:
    """What adopting did (or would do), for a person."""
    plan = result.takeover
    tool = plan.tool.value
    if plan.done:
        return [f"nothing to do: {plan.state}"]
    dry = result.dry_run
    upto = f", up to {plan.applied[-1].version}" if plan.applied else ""
    lines = [
        f"{tool}'s {plan.table} says {plan.state}: "
        f"{'would record' if dry else 'recorded'} {_count(len(plan.applied))} as applied"
        f"{upto}, without running them"
    ]
    if plan.renamed_to:
        moved = "would rename" if dry else "renamed"
        lines.append(f"{moved} {plan.table} to {plan.renamed_to}")
    else:
        lines.append(f"{'would keep' if dry else 'kept'} {plan.table} as it is")
    if plan.pending:
        versions = ", ".join(m.version for m in plan.pending[:10])
        more = ", ..." if len(plan.pending) > 10 else ""
        lines.append(
            f"pending, never applied by {tool}: {versions}{more} (`sqlmig up` applies "
            f"{'it' if len(plan.pending) == 1 else 'them'})"
        )
    if plan.out_of_order:
        older = ", ".join(m.version for m in plan.out_of_order[:10])
        lines.append(
            f"older than the newest applied one: {older} (`sqlmig up --allow-out-of-order`)"
        )
    if dry:
        lines.append(f"dry run: {len(result.statements)} statements, nothing was changed")
    return lines


def _count(n: int) -> str:
    return f"{n} migration" if n == 1 else f"{n} migrations"


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
    notes = notes_lines([s.migration for s in states if s.migration is not None])
    if notes:
        out.write("\nnotes:\n" + "\n".join(notes) + "\n")


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


def lint_text(report: Report, mode: Mode) -> str:
    """Each finding (file:line:col, level, rule, message, then the facts and the fix),
    and a closing count."""
    from sqlmig.lint import describe_facts, headline

    lines: list[str] = []
    for f in report.findings:
        lines.append(headline(f))
        facts = describe_facts(f)
        if facts:
            lines.append(f"  {facts}")
        if f.fix:
            lines.append(f"  fix: {f.fix}")
    counts = _lint_counts(report)
    found = ", ".join(f"{n} {level}" for level, n in counts.items() if n) or "no findings"
    dropped = (
        f"; {len(report.dropped)} left out (about tables created earlier in the same migration)"
        if report.dropped
        else ""
    )
    where = (
        f", with the facts of PostgreSQL {report.server_version}" if report.server_version else ""
    )
    failing = len(report.failing(mode))
    verdict = f"; {failing} at or above {mode.fails_at.value}" if failing else ""
    lines.append(f"lint: {report.migrations} migrations{where}: {found}{dropped}{verdict}")
    return "\n".join(lines)


def lint_json(report: Report, mode: Mode) -> dict[str, Any]:
    return {
        "ok": not report.failing(mode),
        "command": "lint",
        "migrations": report.migrations,
        "checked_database": report.server_version is not None,
        "server_version": report.server_version,
        "small_table_rows": report.small_table_rows,
        "fails_at": mode.fails_at.value,
        "findings": [_finding_json(f) for f in report.findings],
        "dropped": [_finding_json(f) for f in report.dropped],
        "counts": _lint_counts(report),
    }


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "file": f.path,
        "line": f.line,
        "column": f.column,
        "version": f.version,
        "rule": f.rule,
        "level": f.level.value,
        "message": f.message,
        "fix": f.fix,
        "table": f.table,
        "lock": f.lock,
        "blocks": f.blocks,
        "rows": f.facts.rows if f.facts else None,
        "bytes": f.facts.bytes if f.facts else None,
        "note": f.note,
    }


def _lint_counts(report: Report) -> dict[str, int]:
    from sqlmig.lint import Level

    return {level.value: sum(f.level is level for f in report.findings) for level in Level}


_ANNOTATION = {"error": "error", "warning": "warning", "info": "notice"}


def github_annotations(report: Report) -> str:
    """One workflow command per finding, so that GitHub shows it on the file's line."""
    from sqlmig.lint import describe_facts

    def escape(text: str, *, prop: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if prop else text

    out = []
    for f in report.findings:
        body = "; ".join(p for p in (f.message, describe_facts(f), f.fix and f"fix: {f.fix}") if p)
        props = f"file={escape(f.path, prop=True)},line={f.line},col={f.column}"
        title = escape(f"squawk {f.rule}", prop=True)
        out.append(f"::{_ANNOTATION[f.level.value]} {props},title={title}::{escape(body)}")
    return "\n".join(out)

"""Deciding what to run: files and tracking rows in, states and plans out.

Pure logic, no database: the Migrator reads the rows once, asks here what each
migration's state is and what a command should do, and the runner executes the
plan without deciding anything again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlmig.errors import StateError, UsageError
from sqlmig.source import Migration, label_of
from sqlmig.tracker import AppliedMigration


class State(str, Enum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CHANGED = "changed"  # applied, but its file's checksum differs from the recorded one
    MISSING = "missing"  # recorded, but its file is gone


@dataclass(frozen=True)
class MigrationStatus:
    """One migration as known from its file, its tracking row, or both."""

    version: str
    name: str
    filename: str
    state: State
    applied_at: datetime | None
    duration_ms: int | None
    checksum: str | None  # of the file; None when the file is gone
    recorded_checksum: str | None  # from the row; None when never recorded
    migration: Migration | None  # None when the file is gone
    recorded_status: str | None = None  # the row's status; None when never recorded

    @property
    def number(self) -> int:
        return int(self.version)


@dataclass(frozen=True)
class Plan:
    """What a command will run, in order: a value to print (dry run) or execute."""

    direction: str  # "up" or "down"
    migrations: tuple[Migration, ...]


def statuses(
    migrations: Sequence[Migration], rows: Sequence[AppliedMigration]
) -> list[MigrationStatus]:
    """Every migration known from the files or the table, in version order."""
    by_number = {int(r.version): r for r in rows if r.version.isdigit()}
    result: list[MigrationStatus] = []
    for m in migrations:
        row = by_number.pop(m.number, None)
        if row is None:
            state = State.PENDING
        elif row.status == "applied" and row.checksum != m.checksum:
            state = State.CHANGED
        else:
            state = State(row.status)
        result.append(
            MigrationStatus(
                m.version,
                m.name,
                m.filename,
                state,
                row.applied_at if row else None,
                row.duration_ms if row else None,
                m.checksum,
                row.checksum if row else None,
                m,
                row.status if row else None,
            )
        )
    for row in by_number.values():
        name = label_of(row.filename)
        state = State.MISSING if row.status in ("applied", "failed") else State.ROLLED_BACK
        result.append(
            MigrationStatus(
                row.version,
                name,
                row.filename,
                state,
                row.applied_at,
                row.duration_ms,
                None,
                row.checksum,
                None,
                row.status,
            )
        )
    result.sort(key=lambda s: s.number)
    return result


def newest_applied(states: Sequence[MigrationStatus]) -> str | None:
    """The version of the newest migration in force (applied, edited or not), if any."""
    applied = [s for s in states if s.state in (State.APPLIED, State.CHANGED)]
    return max(applied, key=lambda s: s.number).version if applied else None


def _one_version(states: Sequence[MigrationStatus]) -> str:
    """The version to put in a repair command: the one listed, or a placeholder for many."""
    return states[0].version if len(states) == 1 else "VERSION"


def check_blockers(states: Sequence[MigrationStatus], *, allow_drift: bool = False) -> None:
    """Refuse to run while a failure needs an operator or applied files have drifted."""
    blocked = [s for s in states if _failed_part_way(s)]
    if blocked:
        version = _one_version(blocked)
        advice = (
            "Inspect the database, finish or undo its changes by hand, then record the "
            f"outcome: `sqlmig repair {version} --applied` (the changes are complete), "
            "`--rolled-back` (they were undone) or `--forget` (drop the record)."
        )
        if any(s.migration is None for s in blocked):
            advice += (
                " A failed migration whose file is gone cannot be retried: once its changes "
                f"are undone, drop its record with `sqlmig repair {version} --forget`."
            )
        raise StateError(
            "a migration that runs outside a transaction failed part-way and may have left "
            "partial changes",
            [
                f"{s.version} {s.filename}: failed"
                + (", and its file is gone" if s.migration is None else "")
                for s in blocked
            ],
            advice,
        )
    drifted = [s for s in states if s.state in (State.CHANGED, State.MISSING)]
    if drifted and not allow_drift:
        version = _one_version(drifted)
        edit = f"if an edit was intentional, `sqlmig repair {version} --checksum`"
        removal = (
            "if a migration was removed on purpose, drop its record with "
            f"`sqlmig repair {version} --forget`"
        )
        kinds = {s.state for s in drifted}
        if State.MISSING not in kinds:
            advice = f"Restore the files as they were applied, or, {edit}"
        elif State.CHANGED not in kinds:
            advice = f"Restore the files as they were applied; {removal}"
        else:
            advice = f"Restore the files as they were applied; {edit}; {removal}"
        raise StateError(
            "applied migrations no longer match their files",
            [
                f"{s.version} {s.filename}: "
                + (
                    "file is gone"
                    if s.state is State.MISSING
                    else f"checksum {s.checksum} differs from recorded {s.recorded_checksum}"
                )
                for s in drifted
            ],
            advice + "; to run anyway pass allow_drift=True.",
            options=("allow_drift",),
        )


def _failed_part_way(s: MigrationStatus) -> bool:
    """A failed row that may stand for partial changes; a gone file may have been anything."""
    if s.state is State.MISSING:
        return s.recorded_status == "failed"
    return s.state is State.FAILED and may_be_partial(s.migration)


def may_be_partial(m: Migration | None) -> bool:
    """Whether a failed row may stand for half-done changes.

    The row does not say which direction failed, so a migration whose down script
    runs outside a transaction counts too: retrying its up after a down that failed
    part-way would run it on top of a half-undone schema.
    """
    return m is None or any(
        script is not None and not script.transactional for script in (m.up, m.down)
    )


def _find(states: Sequence[MigrationStatus], target: str) -> MigrationStatus:
    if not target.isdigit():
        raise UsageError(f"target version {target!r} is not a version (digits only)")
    for s in states:
        if s.number == int(target):
            return s
    raise UsageError(f"target version {target} is not a known migration; see `sqlmig status`")


def plan_up(
    states: Sequence[MigrationStatus],
    *,
    target: str | None = None,
    steps: int | None = None,
    allow_out_of_order: bool = False,
) -> Plan:
    """Pending migrations in order, up to ``target`` (inclusive) or ``steps`` of them."""
    if steps is not None and steps < 0:
        raise _negative(steps)
    runnable = (State.PENDING, State.ROLLED_BACK, State.FAILED)
    pending = [s for s in states if s.state in runnable and s.migration is not None]
    if target is not None:
        limit = _find(states, target).number
        pending = [s for s in pending if s.number <= limit]
    if steps is not None:
        pending = pending[:steps]
    applied = [s.number for s in states if s.state in (State.APPLIED, State.CHANGED)]
    highest = max(applied, default=-1)
    early = [s for s in pending if s.number < highest]
    if early and not allow_out_of_order:
        raise StateError(
            f"pending migrations are older than the newest applied one ({highest})",
            [f"{s.version} {s.filename}: pending" for s in early],
            "This usually follows a merge of parallel branches. Check that they do not "
            "depend on the newer ones, then run with allow_out_of_order=True.",
            options=("allow_out_of_order",),
        )
    return Plan("up", tuple(s.migration for s in pending if s.migration is not None))


def plan_down(
    states: Sequence[MigrationStatus], *, steps: int | None = 1, target: str | None = None
) -> Plan:
    """Applied migrations newest first: ``steps`` of them, all (None), or down to ``target``.

    With a target, every applied migration above it is rolled back; the target stays.
    """
    applied = [s for s in states if s.state in (State.APPLIED, State.CHANGED)]
    applied.reverse()
    if target is not None:
        limit = 0 if target.isdigit() and int(target) == 0 else _find(states, target).number
        chosen = [s for s in applied if s.number > limit]
    elif steps is None:
        chosen = applied
    else:
        if steps < 0:
            raise _negative(steps)
        chosen = applied[:steps]
    missing = [s for s in chosen if s.migration is None or s.migration.down is None]
    if missing:
        raise StateError(
            "cannot roll back: some migrations have no down script",
            [
                f"{s.version} {s.filename}: "
                + ("file is gone" if s.migration is None else "no down script")
                for s in missing
            ],
            "Write the down scripts, or roll back fewer steps.",
        )
    return Plan("down", tuple(s.migration for s in chosen if s.migration is not None))


def _negative(steps: int) -> UsageError:
    """The refusal of a negative ``steps``, the same for up and down."""
    return UsageError(f"steps={steps}: the number of steps must be 0 or more", options=("steps",))

"""What a run reports while it works: small objects with named fields, sent to one callback.

A caller renders them (the CLI prints a line or a bar) or ignores them; adding a
field to an event breaks no one. The library also logs each on the ``sqlmig`` logger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmig.outcome import Direction
from sqlmig.source import Migration

if TYPE_CHECKING:
    from sqlmig.lint import Mode, Report
    from sqlmig.lockwait import Blocker


@dataclass(frozen=True)
class MigrationStarted:
    """``migration`` is about to run: the ``index``-th (0-based) of ``total`` in this run."""

    migration: Migration
    index: int
    total: int
    direction: Direction


@dataclass(frozen=True)
class MigrationDone:
    """``migration`` committed with its tracking row, after ``duration_ms``."""

    migration: Migration
    index: int
    total: int
    direction: Direction
    duration_ms: int


@dataclass(frozen=True)
class LockWaiting:
    """The migration lock is busy: the run waits up to ``timeout`` seconds for ``holder``
    (None when PostgreSQL does not show who holds it)."""

    holder: str | None
    timeout: float


@dataclass(frozen=True)
class ServerNotice:
    """A message the server sent while a migration ran (``RAISE WARNING``, a deprecation,
    "SET LOCAL can only be used in transaction blocks"): ``severity`` is PostgreSQL's
    (WARNING, NOTICE, INFO...); ``version`` the migration it came from, if any."""

    severity: str
    message: str
    detail: str | None
    hint: str | None
    version: str | None
    direction: Direction | None

    @property
    def warning(self) -> bool:
        return self.severity == "WARNING"

    def __str__(self) -> str:
        text = f"{self.severity}: {self.message}"
        for label, value in (("DETAIL", self.detail), ("HINT", self.hint)):
            if value:
                text += f" ({label}: {value})"
        return text


@dataclass(frozen=True)
class LockRetrying:
    """``migration`` waited longer than ``timeout`` seconds for a table lock at ``line``
    of its script, behind ``blockers``, on try ``attempt`` of ``tries``. It was rolled
    back (outside a transaction: that statement did not run) and is tried again after
    ``delay`` seconds."""

    migration: Migration
    direction: Direction
    attempt: int
    tries: int
    timeout: float
    delay: float
    line: int | None
    blockers: tuple[Blocker, ...]


@dataclass(frozen=True)
class LintReported:
    """The lint before ``up`` ran on the migrations to run: ``report`` holds what it
    found, and none of it is at the level ``mode`` stops at."""

    report: Report
    mode: Mode


Event = MigrationStarted | MigrationDone | LockWaiting | ServerNotice | LockRetrying | LintReported
OnEvent = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default handler: the ``sqlmig`` logger already has every event."""

"""What can go wrong between Alembic and sqlmig, on sqlmig's error hierarchy.

Each class derives from the :mod:`sqlmig.errors` class whose exit code fits, so the
``sqlmig alembic`` commands exit like every other sqlmig command: 1 when a check
fails, 2 for usage and configuration, 3 for the lock, 4 when the database is
unreachable. Like sqlmig's own errors, each carries ``problems`` (one line per
offending item, also rendered in ``--format json``) and says what to do next.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sqlmig.errors import UsageError, ValidationError

INSTALL_HINT = "the alembic commands need Alembic: pip install 'sqlmig[alembic]'"


class AlembicMissingError(UsageError):
    """Alembic is not installed."""

    def __init__(self) -> None:
        super().__init__(INSTALL_HINT)


def require_alembic() -> None:
    """Raise AlembicMissingError unless Alembic can be imported."""
    try:
        importlib.import_module("alembic")
    except ImportError:
        raise AlembicMissingError() from None


class AlembicConfigError(UsageError):
    """The Alembic configuration or its scripts cannot be loaded."""


class NonLinearHistoryError(ValidationError):
    """The Alembic history branches: several heads or bases, or merge revisions."""

    def __init__(self, summary: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "".join(f"\n  {p}" for p in problems)
        super().__init__(
            f"the Alembic history is not linear: {summary}; nothing was written:{lines}\n"
            "sqlmig migrations form one ordered line. Make the history linear first: set "
            "the down_revision of the first revision of one branch to the head of the "
            "other, then import again."
        )


@dataclass(frozen=True)
class RenderFailure:
    """A revision whose Python code could not be rendered to SQL offline.

    ``version`` and ``files`` are what the import gave it: the files to write by
    hand, starting with ``header`` so that adopt recognises them.
    """

    revision: str
    down_revision: str | None
    version: str
    files: tuple[str, str]
    source: str
    direction: str
    reason: str

    @property
    def header(self) -> str:
        return (
            f"-- alembic revision: {self.revision} (down_revision: {self.down_revision or 'none'})"
        )

    def __str__(self) -> str:
        return (
            f"{self.revision} ({self.source}, {self.direction}()): {self.reason}; "
            f"its files would be {self.files[0]} and {self.files[1]}"
        )


class UnrenderableError(ValidationError):
    """Revisions could not be rendered offline; nothing was written."""

    options = ("skip_unrenderable",)

    def __init__(self, failures: list[RenderFailure]) -> None:
        self.failures = failures
        self.problems = [str(f) for f in failures]
        noun = "revision" if len(failures) == 1 else "revisions"
        lines = "".join(f"\n  {p}" for p in self.problems)
        super().__init__(
            f"{len(failures)} Alembic {noun} could not be rendered to SQL offline; "
            f"nothing was written:{lines}\n"
            "Offline rendering has no database to read from: a revision that queries "
            "it (op.get_bind().execute(...) results, inspect(bind)) cannot be turned "
            "into SQL. Rewrite it as plain SQL (op.execute), or pass skip_unrenderable=True "
            "to write the others and the listed versions by hand."
        )


class AdoptError(ValidationError):
    """The database cannot be adopted as it is; nothing was recorded."""

    def __init__(self, summary: str, advice: str, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        lines = "".join(f"\n  {p}" for p in self.problems)
        super().__init__(f"cannot adopt: {summary}; nothing was recorded.{lines}\n{advice}")


class MetadataLoadError(UsageError):
    """A ``package.module:attribute`` path that does not lead to a MetaData."""

    options = ("path",)  # load_metadata's; the command line's --metadata


class PendingMigrationsError(ValidationError):
    """The database lags behind the migrations directory, so a draft would repeat it."""

    def __init__(self, pending: list[str]) -> None:
        self.problems = pending
        lines = "".join(f"\n  {p}" for p in pending)
        super().__init__(
            f"{len(pending)} migrations are not applied to the database, so a draft "
            f"would repeat them; nothing was written:{lines}\n"
            "Apply them first (`sqlmig up`), then draft again."
        )

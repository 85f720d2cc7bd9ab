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

    options = ("linearize",)

    def __init__(self, summary: str, problems: list[str], *, linearizable: bool) -> None:
        self.problems = problems
        lines = "".join(f"\n  {p}" for p in problems)
        advice = (
            "It has one base and one head, so linearize=True can import it in an order that "
            "every database at head satisfies."
            if linearizable
            else "sqlmig migrations form one ordered line. Join the heads first (`alembic "
            "merge heads`, then import with linearize=True), or set the down_revision of the "
            "first revision of one branch to the head of the other."
        )
        super().__init__(
            f"the Alembic history is not linear: {summary}; nothing was written:{lines}\n" + advice
        )


def import_hint(python: str = "python=") -> str:
    """What a revision that fails to import needs; ``python`` words the option."""
    return (
        "A revision that cannot be imported needs what the project's own commands have: "
        "its packages on the path (PYTHONPATH, or prepend_sys_path in the ini) and its "
        f"dependencies, or the project's own interpreter ({python}.venv/bin/python)."
    )


@dataclass(frozen=True)
class RenderFailure:
    """A revision that could not be imported, or rendered to SQL offline.

    ``direction`` is ``upgrade`` or ``downgrade``, or None when the revision file
    itself failed to import. ``version`` and ``files`` are what the import gave it:
    the files to write by hand, starting with ``header`` so that adopt recognises them.
    """

    revision: str
    down_revision: str | None
    version: str
    files: tuple[str, str]
    source: str
    direction: str | None
    reason: str

    @property
    def header(self) -> str:
        return (
            f"-- alembic revision: {self.revision} (down_revision: {self.down_revision or 'none'})"
        )

    @property
    def step(self) -> str:
        return "importing it" if self.direction is None else f"{self.direction}()"

    def __str__(self) -> str:
        return (
            f"{self.revision} ({self.source}, {self.step}): {self.reason}; "
            f"its files would be {self.files[0]} and {self.files[1]}"
        )


class UnrenderableError(ValidationError):
    """Revisions could not be imported or rendered offline; nothing was written."""

    options = ("skip_unrenderable", "python")

    def __init__(self, failures: list[RenderFailure]) -> None:
        self.failures = failures
        self.problems = [str(f) for f in failures]
        noun = "revision" if len(failures) == 1 else "revisions"
        lines = "".join(f"\n  {p}" for p in self.problems)
        advice = []
        if any(f.direction is None for f in failures):
            advice.append(import_hint())
        if any(f.direction is not None for f in failures):
            advice.append(
                "Offline rendering has no database to read from: a revision that queries "
                "it (op.get_bind().execute(...) results, inspect(bind)) cannot be turned "
                "into SQL; rewrite it as plain SQL (op.execute). A revision written for "
                "another SQLAlchemy or Alembic than sqlmig's renders in the project's own "
                "interpreter: python=PATH."
            )
        how = "imported or rendered" if any(f.direction is None for f in failures) else "rendered"
        super().__init__(
            f"{len(failures)} Alembic {noun} could not be {how} to SQL offline; "
            f"nothing was written:{lines}\n"
            + "\n".join(advice)
            + "\nOr pass skip_unrenderable=True to write the others and the listed versions "
            "by hand."
        )


@dataclass(frozen=True)
class OnlineOnly:
    """Code of a revision that Alembic runs only online, which offline rendering misses.

    ``direction`` is the function it is in, or None for code outside both.
    """

    revision: str
    version: str
    source: str
    direction: str | None
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{self.version} <- {self.revision} ({where}): {self.reason}"


class OnlineOnlyError(ValidationError):
    """With ``strict``, revisions whose code runs only online; nothing was written."""

    options = ("strict",)

    def __init__(self, found: list[OnlineOnly]) -> None:
        self.found = found
        self.problems = [str(f) for f in found]
        lines = "".join(f"\n  {p}" for p in self.problems)
        super().__init__(
            f"{len(found)} places in the Alembic revisions run only online, so their "
            f"files would lack what they do; with strict=True nothing was written:{lines}\n"
            "Offline rendering (alembic upgrade --sql) skips code that needs a database. "
            "Make those revisions render the same SQL offline, or import without "
            "strict=True and write what is missing into the files that say so."
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

"""The sqlmig files this package writes: their names, their header, and writing them safely.

An imported file starts with a header comment naming its Alembic revision
(``-- alembic revision: 1a2b3c4d5e01 (down_revision: none)``); that line is how
:func:`alembic_compat.adopt.adopt` finds the file that matches ``alembic_version``.
A set of files is written all or nothing, never over an existing file, nor with a
version the directory already has (:func:`sqlmig.scaffold.write_files`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlmig.errors import UsageError
from sqlmig.scaffold import existing_versions, slugify, write_files
from sqlmig.source import Migration, parse_filename

HEADER_PREFIX = "-- alembic revision: "
_HEADER = re.compile(r"^-- alembic revision: (\S+)(?: \(down_revision: ([^)]*)\))?", re.M)
_HEADER_LINES = 20  # the header is in the leading comments, not far down the file
NAME_LENGTH = 60


def header(revision: str, down_revision: str | None) -> str:
    """The first line of an imported file."""
    return f"{HEADER_PREFIX}{revision} (down_revision: {down_revision or 'none'})"


def recorded_revision(sql: str) -> str | None:
    """The Alembic revision named in a script's header, if it has one."""
    match = _header_match(sql)
    return match[1] if match else None


def recorded_down_revisions(sql: str) -> tuple[str, ...]:
    """The down revisions a script's header names (several for a merge), if any."""
    match = _header_match(sql)
    if match is None or match[2] in (None, "none"):
        return ()
    return tuple(part.strip() for part in match[2].split(","))


def _header_match(sql: str) -> re.Match[str] | None:
    return _HEADER.search("\n".join(sql.splitlines()[:_HEADER_LINES]))


def revisions_of(migrations: Iterable[Migration]) -> dict[str, Migration]:
    """The migrations that record an Alembic revision, by revision id."""
    found: dict[str, Migration] = {}
    for m in migrations:
        revision = recorded_revision(m.up.sql)
        if revision is not None:
            found.setdefault(revision, m)
    return found


def migration_name(message: str | None, revision: str) -> str:
    """A sqlmig file name part from a revision message, or from its id when it has none."""
    for text in (message or "", f"revision {revision}"):
        try:
            return _shorten(slugify(text))
        except UsageError:
            continue
    return "revision"


def _shorten(slug: str) -> str:
    """At most NAME_LENGTH characters, cut after a whole word when it must be cut (a
    single longer word is cut where it must)."""
    if len(slug) <= NAME_LENGTH:
        return slug
    kept = slug[: NAME_LENGTH + 1]
    return kept[: kept.rfind("_")] if "_" in kept else slug[:NAME_LENGTH]


def write_new_files(
    directory: Path, files: Mapping[str, str], *, reserved: Iterable[str] = ()
) -> list[Path]:
    """Create every file, or none: refuse when a version is taken or a file exists.

    ``files`` maps file names (``<version>_<name>.up.sql``...) to their text;
    ``reserved`` names files left for a person to write, whose versions must be free too.
    """
    taken = {int(version): name for version, name in existing_versions(directory).items()}
    clashes: dict[int, str] = {}
    for name in [*files, *reserved]:
        parsed = parse_filename(name)
        if parsed is not None and parsed.number in taken:
            clashes.setdefault(
                parsed.number, f"version {parsed.version}: {taken[parsed.number]} is already there"
            )
    if clashes:
        raise UsageError(
            f"{directory} already has migrations with these versions; nothing was written:\n  "
            + "\n  ".join(clashes[number] for number in sorted(clashes))
            + "\nNothing is ever overwritten: write into another directory, or move those "
            "files away."
        )
    return write_files(directory, files)

"""The sqlmig files this package writes: their names, their header, and writing them safely.

An imported file starts with a header comment naming its Alembic revision
(``-- alembic revision: 1a2b3c4d5e01 (down_revision: none)``); that line is how
:func:`alembic_compat.adopt.adopt` finds the file that matches ``alembic_version``.
Files are created with ``open(..., "x")`` and a set of them is written all or
nothing: existing files are never overwritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlmig.errors import MigrationFileError, UsageError
from sqlmig.scaffold import slugify
from sqlmig.source import Migration, parse_filename

HEADER_PREFIX = "-- alembic revision: "
_HEADER = re.compile(r"^-- alembic revision: (\S+)", re.M)
_HEADER_LINES = 20  # the header is in the leading comments, not far down the file


def header(revision: str, down_revision: str | None) -> str:
    """The first line of an imported file."""
    return f"{HEADER_PREFIX}{revision} (down_revision: {down_revision or 'none'})"


def recorded_revision(sql: str) -> str | None:
    """The Alembic revision named in a script's header, if it has one."""
    head = "\n".join(sql.splitlines()[:_HEADER_LINES])
    match = _HEADER.search(head)
    return match[1] if match else None


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
            return slugify(text)[:60].rstrip("_")
        except UsageError:
            continue
    return "revision"


def pair_names(version: str, name: str) -> tuple[str, str]:
    """The up and down file names of a migration."""
    return f"{version}_{name}.up.sql", f"{version}_{name}.down.sql"


def existing_versions(directory: Path) -> dict[int, str]:
    """The migration versions already in ``directory`` (by number), with a file name of each."""
    if not directory.is_dir():
        return {}
    found: dict[int, str] = {}
    for entry in os.scandir(directory):
        try:
            parsed = parse_filename(entry.name)
        except MigrationFileError:
            continue  # a badly named .sql file: loading the directory reports it
        if parsed is not None:
            found.setdefault(parsed.number, entry.name)
    return found


def write_new_files(
    directory: Path, files: Mapping[str, str], *, reserved: Iterable[str] = ()
) -> list[Path]:
    """Create every file, or none: refuse when a version is taken or a file exists.

    ``files`` maps file names (``<version>_<name>.up.sql``...) to their text;
    ``reserved`` names files left for a person to write, whose versions must be free too.
    """
    taken = existing_versions(directory)
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
    directory.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    try:
        for name, text in files.items():
            path = directory / name
            with path.open("x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            created.append(path)
    except FileExistsError as exc:
        _remove(created)
        raise UsageError(f"{exc.filename} already exists; nothing was written") from None
    except BaseException:
        _remove(created)
        raise
    return created


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)

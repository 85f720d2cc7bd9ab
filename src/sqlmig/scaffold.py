"""Creating new migration files: a safe name, the next version, never an overwrite.

``sqlmig new`` and the files ``alembic_compat`` writes share these, so that every
file sqlmig makes is named, numbered and written the same way.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlmig.errors import MigrationFileError, UsageError
from sqlmig.source import parse_filename

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """Lowercase letters, digits and single underscores: nothing that could leave the folder."""
    # Accents are dropped, not the letters that carry them: "Straße café" becomes
    # "strasse_cafe".
    folded = unicodedata.normalize("NFKD", name.casefold())
    ascii_name = folded.encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("_", ascii_name.lower()).strip("_")
    if not slug:
        raise UsageError(
            f"migration name {name!r} has no ASCII letters or digits; use something like "
            "'add_users'"
        )
    return slug[:100].rstrip("_")


# A version with fewer digits than a YYYYMMDDHHMMSS timestamp is a sequence number.
_TIMESTAMP_DIGITS = 14
_TIMESTAMP = "%Y%m%d%H%M%S"


@dataclass(frozen=True)
class NewMigration:
    """The files ``new`` created, and why the version is not what was asked, if it is not."""

    paths: list[Path]
    version: str
    note: str | None = None


def next_version(directory: Path, *, sequential: bool, now: datetime | None = None) -> str:
    """The version for a new migration in ``directory``; see :func:`choose_version`."""
    return choose_version(directory, sequential=sequential, now=now)[0]


def choose_version(
    directory: Path, *, sequential: bool, now: datetime | None = None
) -> tuple[str, str | None]:
    """The next version, and a note for the operator when it is not the kind asked for.

    A directory with migrations keeps its own kind, whatever ``sequential`` says:
    sequence numbers get the next number padded like the others, timestamps get the
    UTC time, moved past the newest one when the clock is behind it (so the new
    migration is never out of order). ``sequential`` decides for an empty directory.
    """
    existing = existing_versions(directory)
    if not existing:
        return ("0001" if sequential else _stamp(now)), None
    highest = max(existing, key=int)
    if int(highest) < 10 ** (_TIMESTAMP_DIGITS - 1):
        width = max(len(v) for v in existing)
        version = str(int(highest) + 1).zfill(width)
        note = None
        if not sequential:
            note = (
                f"{directory} numbers its migrations (newest {highest}), so this one is "
                f"{version} rather than a timestamp"
            )
        return version, note
    version = _stamp(now)
    reasons = []
    if sequential:
        reasons.append(f"{directory} names its migrations by timestamp")
    if int(version) <= int(highest):
        version = _after(highest)
        reasons.append(f"the newest, {highest}, is not older than the clock")
    return version, (f"{' and '.join(reasons)}, so this one is {version}" if reasons else None)


def _stamp(now: datetime | None) -> str:
    return (now or datetime.now(timezone.utc)).strftime(_TIMESTAMP)


def _after(highest: str) -> str:
    """The timestamp one second after ``highest`` (just the next number if it is no date)."""
    try:
        return (datetime.strptime(highest, _TIMESTAMP) + timedelta(seconds=1)).strftime(_TIMESTAMP)
    except ValueError:
        return str(int(highest) + 1).zfill(len(highest))


def existing_versions(directory: Path) -> dict[str, str]:
    """The versions of the migration files in ``directory``, each with one of its file
    names. An orphan down script counts (its version is taken); anything else, even a
    ``README.sql``, is not ``new``'s business."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(
            f"cannot list the migrations directory {directory}: {exc.strerror or exc}"
        ) from None
    found: dict[str, str] = {}
    for entry in entries:
        try:
            parsed = parse_filename(entry.name)
        except MigrationFileError:
            continue  # a badly named .sql file: loading the directory reports it
        if parsed is not None:
            found.setdefault(parsed.version, entry.name)
    return found


def pair_names(version: str, name: str) -> tuple[str, str]:
    """The up and down file names of a migration."""
    return f"{version}_{name}.up.sql", f"{version}_{name}.down.sql"


def new_migration(
    directory: str | os.PathLike[str],
    name: str,
    *,
    sequential: bool = False,
    single_file: bool = False,
    now: datetime | None = None,
) -> list[Path]:
    """Create an empty up/down pair (or one file with both sections); return the paths."""
    return create_migration(
        directory, name, sequential=sequential, single_file=single_file, now=now
    ).paths


def create_migration(
    directory: str | os.PathLike[str],
    name: str,
    *,
    sequential: bool = False,
    single_file: bool = False,
    now: datetime | None = None,
) -> NewMigration:
    """Create the files of a new migration, all or none, never overwriting one."""
    folder = Path(directory)
    slug = slugify(name)
    _make_directory(folder)
    version, note = choose_version(folder, sequential=sequential, now=now)
    if single_file:
        files = {f"{version}_{slug}.sql": "-- migrate:up\n\n\n-- migrate:down\n\n"}
    else:
        up, down = pair_names(version, slug)
        files = {up: f"-- {slug}: up\n\n", down: f"-- {slug}: undo what the up script did\n\n"}
    return NewMigration(write_files(folder, files), version, note)


def write_files(directory: Path, files: Mapping[str, str]) -> list[Path]:
    """Create every file of ``files`` (name: text) in ``directory``, or none of them,
    never overwriting one: half a pair would be a migration without its down script."""
    _make_directory(directory)
    created: list[Path] = []
    try:
        for filename, text in files.items():
            path = directory / filename
            try:
                with path.open("x", encoding="utf-8", newline="\n") as handle:  # "x": no overwrite
                    created.append(path)
                    handle.write(text)
            except FileExistsError:
                raise UsageError(f"{path} already exists; nothing was overwritten") from None
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return created


def _make_directory(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the migrations directory {folder}: {exc.strerror or exc}; "
            "pass another one as directory=DIR",
            options=("directory",),
        ) from None

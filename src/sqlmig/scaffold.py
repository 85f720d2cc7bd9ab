"""Creating new migration files: a safe name, the next version, never an overwrite."""

from __future__ import annotations

import os
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from sqlmig.errors import UsageError
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


def next_version(directory: Path, *, sequential: bool, now: datetime | None = None) -> str:
    """A UTC timestamp (YYYYMMDDHHMMSS), or the next sequence number padded like the others."""
    existing = _versions(directory)
    if not sequential:
        version = (now or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")
        if any(int(v) == int(version) for v in existing):
            raise UsageError(f"version {version} already exists; wait a second and try again")
        return version
    highest = max(existing, key=int, default="0")
    width = max((len(v) for v in existing), default=4)
    return str(int(highest) + 1).zfill(width)


def _versions(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    found = []
    for entry in os.scandir(directory):
        parsed = parse_filename(entry.name)
        if parsed is not None:
            found.append(parsed.version)
    return found


def new_migration(
    directory: str | os.PathLike[str],
    name: str,
    *,
    sequential: bool = False,
    single_file: bool = False,
    now: datetime | None = None,
) -> list[Path]:
    """Create an empty up/down pair (or one file with both sections); return the paths."""
    folder = Path(directory)
    slug = slugify(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the migrations directory {folder}: {exc.strerror or exc}; "
            "pass --dir with a directory"
        ) from None
    version = next_version(folder, sequential=sequential, now=now)
    if single_file:
        files = {f"{version}_{slug}.sql": "-- migrate:up\n\n\n-- migrate:down\n\n"}
    else:
        files = {
            f"{version}_{slug}.up.sql": f"-- {slug}: up\n\n",
            f"{version}_{slug}.down.sql": f"-- {slug}: undo what the up script did\n\n",
        }
    created: list[Path] = []
    for filename, body in files.items():
        path = folder / filename
        try:
            with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite
                handle.write(body)
        except FileExistsError:
            raise UsageError(f"{path} already exists; nothing was overwritten") from None
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        created.append(path)
    return created

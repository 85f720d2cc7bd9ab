"""Importing an Alembic history: each revision rendered offline into a sqlmig file pair.

The project is read and each revision rendered by :mod:`alembic_compat.project`,
in this process or in the project's own interpreter (``python``); the revisions
are put in order by :mod:`alembic_compat.graph`, their statements grouped into the
transactions Alembic runs them in by :mod:`alembic_compat.segments`, and what they
do only online found by :mod:`alembic_compat.online`. Then every file is written,
or none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from alembic_compat import online
from alembic_compat.errors import (
    AlembicConfigError,
    OnlineOnly,
    OnlineOnlyError,
    RenderFailure,
    UnrenderableError,
    require_alembic,
)
from alembic_compat.files import header, migration_name, write_new_files
from alembic_compat.graph import Revision, import_order
from alembic_compat.interpreter import records
from alembic_compat.segments import RenderedSql, segments_of
from sqlmig.scaffold import pair_names

VERSION_WIDTH = 4
NO_OP = "SELECT 1;  -- nothing to do: the Alembic function is empty\n"
NO_SQL = "SELECT 1;  -- offline rendering gave no SQL: see ONLINE ONLY above\n"


@dataclass(frozen=True)
class ImportedMigration:
    """One revision, written as a sqlmig migration; ``merges`` are the revisions a
    merge revision joins (empty for any other)."""

    revision: str
    down_revision: str | None
    message: str
    version: str
    name: str
    files: tuple[Path, ...]
    transactional: bool
    reversible: bool
    merges: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote, what it left for a person to write, and what it may miss."""

    directory: Path
    imported: tuple[ImportedMigration, ...]
    skipped: tuple[RenderFailure, ...]
    online_only: tuple[OnlineOnly, ...] = ()
    python: str | None = None  # the interpreter that rendered the revisions


def import_history(
    alembic_ini: str | PathLike[str] | None,
    out_dir: str | PathLike[str],
    *,
    script_location: str | PathLike[str] | None = None,
    name: str = "alembic",
    python: str | PathLike[str] | None = None,
    skip_unrenderable: bool = False,
    linearize: bool = False,
    strict: bool = False,
) -> ImportResult:
    """Render every revision of an Alembic history into sqlmig pairs in ``out_dir``.

    The project is ``alembic_ini``'s section ``name`` (Alembic's ``-n``), with
    ``script_location`` in place of the one it sets; or, with no ini,
    ``script_location`` alone (a Flask-Migrate layout). With ``python``, the
    revisions are imported and rendered by that interpreter, so the project's own
    SQLAlchemy and Alembic are used; else by this one.

    Versions are sequence numbers in import order (``0001``, ``0002``...), names
    come from the revision messages, and each file's first line records its revision
    (see :mod:`alembic_compat.files`). A revision whose ``downgrade()`` raises
    NotImplementedError gets no down file. A revision with ``autocommit_block()``
    becomes a no-transaction file whose other statements keep their transactions.

    Raises NonLinearHistoryError for several heads or bases, and for merge revisions
    unless ``linearize``; UnrenderableError, writing nothing, when revisions cannot
    be imported or rendered offline, unless ``skip_unrenderable``: then the others
    are written and the result lists the rest with the versions they were given;
    with ``strict``, OnlineOnlyError when revisions have code that runs only online
    (else the result lists it, and the files say so). Never overwrites a file, and
    refuses (UsageError) when ``out_dir`` already uses any of the versions.
    """
    if python is None:
        require_alembic()
    stream = records(
        None if alembic_ini is None else os.fspath(alembic_ini),
        script_location=None if script_location is None else os.fspath(script_location),
        section=name,
        python=python,
    )
    project = next(stream)
    revisions = [Revision.from_record(r) for r in stream]
    if not revisions:
        raise AlembicConfigError(f"the Alembic project in {project['script_dir']} has no revisions")
    ordered = import_order(revisions, linearize=linearize)
    width = max(VERSION_WIDTH, len(str(len(ordered))))
    here = Path(project["config_file"]).resolve().parent if project["config_file"] else Path()
    versions = {r.revision: str(i).zfill(width) for i, r in enumerate(ordered, start=1)}

    rendered: list[_Rendered] = []
    failures: list[RenderFailure] = []
    found: list[OnlineOnly] = []
    for revision in ordered:
        version = versions[revision.revision]
        name_part = migration_name(revision.doc, revision.revision)
        source = _relative(revision.path, here)
        try:
            up, down = _directions(revision)
        except _Failed as exc:
            failures.append(
                RenderFailure(
                    revision=revision.revision,
                    down_revision=revision.down_revision,
                    version=version,
                    files=pair_names(version, name_part),
                    source=source,
                    direction=exc.direction,
                    reason=exc.reason,
                )
            )
            continue
        nothing = {"upgrade": not up.statements}
        if down is not None:
            nothing["downgrade"] = not down.statements
        here_found = [
            OnlineOnly(revision.revision, version, source, f.direction, f.line, f.reason)
            for f in online.findings(revision.path, nothing)
        ]
        found += here_found
        merges = {
            down: versions.get(down, "?") for down in revision.down_revisions if revision.is_merge
        }
        rendered.append(
            _Rendered(revision, version, name_part, source, up, down, merges, tuple(here_found))
        )
    if failures and not skip_unrenderable:
        raise UnrenderableError(failures)
    if found and strict:
        raise OnlineOnlyError(found)

    directory = Path(out_dir)
    texts = {name: text for r in rendered for name, text in r.files().items()}
    written = write_new_files(directory, texts, reserved=[f.files[0] for f in failures])
    by_name = {path.name: path for path in written}
    return ImportResult(
        directory=directory,
        imported=tuple(r.result(by_name) for r in rendered),
        skipped=tuple(failures),
        online_only=tuple(found),
        python=project["python"] if python is not None else None,
    )


@dataclass(frozen=True)
class _Rendered:
    """A revision rendered, before it is written."""

    revision: Revision
    version: str
    name: str
    source: str
    up: RenderedSql
    down: RenderedSql | None
    merges: dict[str, str]  # the revisions a merge joins, with their versions
    online_only: tuple[OnlineOnly, ...]

    def files(self) -> dict[str, str]:
        up_name, down_name = pair_names(self.version, self.name)
        files = {up_name: self._text("upgrade", self.up)}
        if self.down is not None:
            files[down_name] = self._text("downgrade", self.down)
        return files

    def result(self, written: dict[str, Path]) -> ImportedMigration:
        return ImportedMigration(
            revision=self.revision.revision,
            down_revision=self.revision.down_revision,
            message=self.revision.doc,
            version=self.version,
            name=self.name,
            files=tuple(written[f] for f in self.files()),
            transactional=self.up.transactional,
            reversible=self.down is not None,
            merges=tuple(self.merges),
        )

    def _text(self, direction: str, rendered: RenderedSql) -> str:
        lines = [header(self.revision.revision, self.revision.down_revision)]
        lines += [f"-- {line}".rstrip() for line in self.revision.doc.splitlines()]
        lines.append(f"-- {direction}() of {self.source}, rendered by `sqlmig alembic import`.")
        if self.merges:
            joined = ", ".join(f"{rev} ({version})" for rev, version in self.merges.items())
            lines.append(
                f"-- A merge of {joined}, imported in a line (--linearize): every database "
                "at head has applied each of them before this one."
            )
        if not rendered.transactional:
            lines.append("-- sqlmig:no-transaction")
            lines.append(f"-- As Alembic runs it: {_shape(rendered)}.")
        notes = [o for o in self.online_only if o.direction in (direction, None)]
        if notes:
            lines.append(
                "-- ONLINE ONLY: offline rendering cannot see what this revision does online:"
            )
            lines += [f"--   line {o.line}: {o.reason}" for o in notes]
            lines.append("-- Compare with the revision and write what is missing here by hand.")
        body = rendered.body()
        empty = NO_SQL if notes else NO_OP
        text = "\n\n".join(body) + "\n" if body else empty
        return "\n".join(lines) + "\n\n" + text


def _shape(rendered: RenderedSql) -> str:
    """How a no-transaction file runs, for its header."""
    parts = []
    if rendered.transactions:
        parts.append(f"{_count(rendered.transactions, 'transaction')} (each BEGIN … COMMIT below)")
    alone = sum(len(s.statements) for s in rendered.segments if not s.transactional)
    if alone:
        parts.append(f"{_count(alone, 'statement')} of autocommit_block() outside any transaction")
    return " and ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


class _Failed(Exception):
    def __init__(self, direction: str | None, reason: str) -> None:
        super().__init__(reason)
        self.direction = direction
        self.reason = reason


def _directions(revision: Revision) -> tuple[RenderedSql, RenderedSql | None]:
    """The upgrade and the downgrade (None when it raises NotImplementedError itself)."""
    if revision.import_error is not None:
        raise _Failed(None, _reason(revision.import_error))
    assert revision.upgrade is not None and revision.downgrade is not None
    up = _sql("upgrade", revision.upgrade)
    error = revision.downgrade.get("error")
    if error is not None and error["type"] == "NotImplementedError" and error["raised_here"]:
        return up, None  # no down file: sqlmig calls the migration irreversible
    return up, _sql("downgrade", revision.downgrade)


def _sql(direction: str, rendered: dict[str, Any]) -> RenderedSql:
    if "error" in rendered:
        raise _Failed(direction, _reason(rendered["error"]))
    return segments_of(rendered["items"])


def _reason(error: dict[str, Any]) -> str:
    """The exception, and the line of the revision file that led to it."""
    if error["type"] is None:
        return str(error["message"])
    text = f"{error['type']}: {error['message']}" if error["message"] else str(error["type"])
    if error["line"] is not None:
        code = f": {error['code']}" if error["code"] else ""
        text += f" (line {error['line']}{code})"
    return text


def _relative(path: str, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path

"""Importing an Alembic history: each revision rendered offline into a sqlmig file pair.

Rendering runs each revision's ``upgrade()`` and ``downgrade()`` under Alembic's
offline ("--sql") machinery for the PostgreSQL dialect, exactly as ``alembic upgrade
--sql`` would, but without ``env.py`` and without a database: an ``EnvironmentContext``
of the project's own configuration (so ``context.config``, ``context.is_offline_mode()``
and ``-x`` arguments work in revisions), a ``MigrationContext`` with ``as_sql=True``,
and ``op`` bound to it. Every statement Alembic emits is captured one by one.

Since the revision functions are called directly, Alembic's version-table
bookkeeping and its BEGIN/COMMIT wrapper are never produced; :func:`strip_bookkeeping`
still removes them, so output of ``alembic upgrade --sql`` can go through it too.
Transaction control inside a revision (``autocommit_block()``, an explicit COMMIT)
turns the file into a ``-- sqlmig:no-transaction`` one.
"""

from __future__ import annotations

import contextlib
import os
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from alembic_compat.errors import (
    AlembicConfigError,
    NonLinearHistoryError,
    RenderFailure,
    UnrenderableError,
    require_alembic,
)
from alembic_compat.files import header, migration_name, write_new_files
from alembic_compat.offline import DIALECT, StatementLog, tidy
from sqlmig.scaffold import pair_names
from sqlmig.sqlscript import split_statements, transaction_control

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

VERSION_WIDTH = 4
NO_OP = "SELECT 1;  -- nothing to do: the Alembic function is empty\n"

_RUNNING = re.compile(r"^--\s*Running (?:upgrade|downgrade|stamp)\b")


@dataclass(frozen=True)
class ImportedMigration:
    """One revision, written as a sqlmig migration."""

    revision: str
    down_revision: str | None
    message: str
    version: str
    name: str
    files: tuple[Path, ...]
    transactional: bool
    reversible: bool


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote, and what it left for a person to write."""

    directory: Path
    imported: tuple[ImportedMigration, ...]
    skipped: tuple[RenderFailure, ...]


@dataclass(frozen=True)
class RenderedSql:
    """One direction of a revision as SQL, ready to be written to a file."""

    statements: tuple[str, ...]
    transactional: bool


class _Irreversible(Exception):
    """The revision's downgrade() raises NotImplementedError: it has no way down."""


def import_history(
    alembic_ini: str | PathLike[str],
    out_dir: str | PathLike[str],
    *,
    skip_unrenderable: bool = False,
) -> ImportResult:
    """Render every revision of a linear Alembic history into sqlmig pairs in ``out_dir``.

    Versions are sequence numbers in Alembic's order (``0001``, ``0002``...), names
    come from the revision messages, and each file's first line records its revision
    (see :mod:`alembic_compat.files`). A revision whose ``downgrade()`` raises
    NotImplementedError gets no down file.

    Raises NonLinearHistoryError for branches (several heads or bases, merges);
    UnrenderableError, writing nothing, when revisions cannot be rendered offline,
    unless ``skip_unrenderable``: then the others are written and the result lists
    the rest with the versions they were given. Never overwrites a file, and
    refuses (UsageError) when ``out_dir`` already uses any of the versions.
    """
    require_alembic()
    config = load_config(alembic_ini)
    script = script_directory(config)
    revisions = linear_history(script)
    width = max(VERSION_WIDTH, len(str(len(revisions))))
    here = Path(config.config_file_name or ".").resolve().parent

    rendered: list[_Rendered] = []
    failures: list[RenderFailure] = []
    for index, revision in enumerate(revisions, start=1):
        version = str(index).zfill(width)
        name = migration_name(revision.doc, revision.revision)
        source = _relative(revision.path, here)
        try:
            up = _render_revision(config, script, revision, "upgrade")
            down: RenderedSql | None = None
            with contextlib.suppress(_Irreversible):  # no down file: sqlmig calls it irreversible
                down = _render_revision(config, script, revision, "downgrade")
        except _RenderError as exc:
            failures.append(
                RenderFailure(
                    revision=revision.revision,
                    down_revision=_down(revision),
                    version=version,
                    files=pair_names(version, name),
                    source=source,
                    direction=exc.direction,
                    reason=exc.reason,
                )
            )
            continue
        rendered.append(_Rendered(revision, version, name, source, up, down))
    if failures and not skip_unrenderable:
        raise UnrenderableError(failures)

    directory = Path(out_dir)
    texts = {name: text for r in rendered for name, text in r.files().items()}
    written = write_new_files(directory, texts, reserved=[f.files[0] for f in failures])
    by_name = {path.name: path for path in written}
    return ImportResult(
        directory=directory,
        imported=tuple(r.result(by_name) for r in rendered),
        skipped=tuple(failures),
    )


@dataclass(frozen=True)
class _Rendered:
    """A revision rendered, before it is written."""

    revision: Script
    version: str
    name: str
    source: str
    up: RenderedSql
    down: RenderedSql | None

    def files(self) -> dict[str, str]:
        up_name, down_name = pair_names(self.version, self.name)
        files = {up_name: _file_text(self.revision, self.source, "upgrade", self.up)}
        if self.down is not None:
            files[down_name] = _file_text(self.revision, self.source, "downgrade", self.down)
        return files

    def result(self, written: dict[str, Path]) -> ImportedMigration:
        return ImportedMigration(
            revision=self.revision.revision,
            down_revision=_down(self.revision),
            message=self.revision.doc or "",
            version=self.version,
            name=self.name,
            files=tuple(written[f] for f in self.files()),
            transactional=self.up.transactional,
            reversible=self.down is not None,
        )


# --- the Alembic project -------------------------------------------------------


def load_config(alembic_ini: str | PathLike[str]) -> Config:
    """The Alembic configuration of an ``alembic.ini`` file."""
    from alembic.config import Config

    path = Path(alembic_ini)
    if not path.is_file():
        raise AlembicConfigError(
            f"Alembic configuration {path} not found; pass the path of the project's "
            "alembic.ini as alembic_ini=PATH",
            options=("alembic_ini",),
        )
    return Config(str(path))


def script_directory(config: Config) -> ScriptDirectory:
    """The project's revisions, loaded (revision modules are imported here)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        script = ScriptDirectory.from_config(config)
        script.get_heads()  # loads every revision file, so that errors surface here
    except CommandError as exc:
        raise AlembicConfigError(
            f"cannot load the Alembic scripts of {config.config_file_name}: {exc}"
        ) from None
    return script


def linear_history(script: ScriptDirectory) -> list[Script]:
    """The revisions from base to head; NonLinearHistoryError when they do not form a line."""
    revisions = list(script.walk_revisions())
    if not revisions:
        raise AlembicConfigError(f"the Alembic project in {script.dir} has no revisions")
    heads = [script.get_revision(h) for h in script.get_heads()]
    bases = [script.get_revision(b) for b in script.get_bases()]
    problems: list[str] = []
    if len(heads) > 1:
        for head in heads:
            assert head is not None
            problems.append(f"head {_describe(head)}, on the branch {_branch(script, head)}")
    if len(bases) > 1:
        for base in bases:
            assert base is not None
            problems.append(f"base {_describe(base)}")
    for revision in revisions:
        if revision.is_merge_point:
            parents = (_down(revision) or "").replace(",", ", ")
            problems.append(f"merge revision {_describe(revision)} joins {parents}")
    if problems:
        parts = [
            f"{len(heads)} heads" if len(heads) > 1 else "",
            f"{len(bases)} bases" if len(bases) > 1 else "",
            "merge revisions" if any(r.is_merge_point for r in revisions) else "",
        ]
        raise NonLinearHistoryError(", ".join(p for p in parts if p), problems)

    ordered: list[Script] = []
    current: Script | None = heads[0]
    while current is not None:
        ordered.append(current)
        down = _down(current)
        current = script.get_revision(down) if down else None
    ordered.reverse()
    return ordered


def _describe(revision: Script) -> str:
    return f"{revision.revision} ({revision.doc or 'no message'})"


def _branch(script: ScriptDirectory, head: Script) -> str:
    """The revisions of a head's own branch, newest first, down to where it forks."""
    chain = [head.revision]
    current: Script | None = head
    while current is not None and (down := _down(current)):
        parent = script.get_revision(down)
        if parent is None or parent.is_branch_point:
            chain.append(f"forks from {down}")
            break
        chain.append(parent.revision)
        current = parent
    return " <- ".join(chain)


def _down(revision: Script) -> str | None:
    down = revision.down_revision
    if isinstance(down, (tuple, list)):
        return ",".join(down) or None
    return down


def _relative(path: str, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path


# --- rendering ---------------------------------------------------------------------


class _RenderError(Exception):
    def __init__(self, direction: str, reason: str) -> None:
        super().__init__(reason)
        self.direction = direction
        self.reason = reason


def _render_revision(
    config: Config, script: ScriptDirectory, revision: Script, direction: str
) -> RenderedSql:
    """The SQL of one revision's ``upgrade()`` or ``downgrade()``, rendered offline."""
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext

    log = StatementLog()
    function = getattr(revision.module, direction, None)
    if function is None:
        raise _RenderError(direction, f"the revision file has no {direction}() function")
    destination = revision.revision if direction == "upgrade" else _down(revision)
    environment = EnvironmentContext(
        config,
        script,
        as_sql=True,
        starting_rev=_down(revision) if direction == "upgrade" else revision.revision,
        destination_rev=destination,
    )
    try:
        with environment:
            # As offline_context(), but inside the project's own environment.
            environment.configure(
                dialect_name=DIALECT,
                dialect_opts={"paramstyle": "named"},
                output_buffer=log,
                literal_binds=True,
                transactional_ddl=True,
            )
            with Operations.context(environment.get_context()):
                function()
    except NotImplementedError as exc:
        if direction == "downgrade" and _raised_in(exc, revision.path):
            raise _Irreversible() from None
        raise _RenderError(direction, _reason(exc, revision.path)) from None
    except Exception as exc:  # any failure of the revision's code is reported, with where
        raise _RenderError(direction, _reason(exc, revision.path)) from None
    statements, manages_transactions = strip_bookkeeping(log.statements)
    return RenderedSql(tuple(statements), transactional=not manages_transactions)


def strip_bookkeeping(
    statements: Iterable[str], version_table: str = "alembic_version"
) -> tuple[list[str], bool]:
    """Drop Alembic's version-table statements, its "Running" comments and transaction control.

    Returns the statements kept and whether any transaction control (BEGIN, COMMIT...)
    was dropped. sqlmig runs each file in its own transaction and records it in its
    own table, so neither has a place in a migration file.
    """
    touches_version_table = re.compile(
        r"^\s*(?:CREATE\s+TABLE|INSERT\s+INTO|UPDATE|DELETE\s+FROM|DROP\s+TABLE)\s+"
        rf'(?:"?\w+"?\.)?"?{re.escape(version_table)}"?(?:\s|\(|;|$)',
        re.I,
    )
    kept: list[str] = []
    transaction_control_found = False
    for statement in statements:
        text = statement.strip()
        if not text or touches_version_table.match(text) or _RUNNING.match(text):
            continue
        parsed = split_statements(text)
        if len(parsed) == 1 and transaction_control(parsed[0]) is not None:
            transaction_control_found = True
            continue
        kept.append(tidy(text))
    return kept, transaction_control_found


def _raised_in(exc: BaseException, path: str) -> bool:
    """Whether the innermost frame of the traceback is in the file at ``path``."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and _same_file(frames[-1].filename, path)


def _reason(exc: BaseException, path: str) -> str:
    """The exception, and the line of the revision file that led to it."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _same_file(f.filename, path)]
    if frames:
        line = (frames[-1].line or "").strip()
        text += f" (line {frames[-1].lineno}: {line})" if line else f" (line {frames[-1].lineno})"
    return text


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _file_text(revision: Script, source: str, direction: str, rendered: RenderedSql) -> str:
    lines = [header(revision.revision, _down(revision))]
    lines += [f"-- {line}".rstrip() for line in (revision.doc or "").splitlines()]
    lines.append(f"-- {direction}() of {source}, rendered by `sqlmig alembic import`.")
    if not rendered.transactional:
        lines.append("-- sqlmig:no-transaction")
        lines.append(
            "-- (the revision manages its own transactions, e.g. autocommit_block(): "
            "the statements run one by one outside a transaction)"
        )
    body = "\n\n".join(rendered.statements) + "\n" if rendered.statements else NO_OP
    return "\n".join(lines) + "\n\n" + body

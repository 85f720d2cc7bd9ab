"""``sqlmig lint``: squawk's findings, with what only sqlmig and the database know.

squawk (``pip install 'sqlmig[lint]'``) reads SQL and knows PostgreSQL's locks, but not
how a file will run nor what the tables hold. sqlmig tells it each file's transaction
mode (``--assume-in-transaction`` or not) and the server's version, and then reads each
finding against the facts:

- a finding about a table created earlier in the same migration is dropped (nobody
  else can be using that table yet), unless it is about the table's design;
- with a database, a finding whose harm grows with the table (a scan, a rewrite, an
  index build under a lock) says how many rows the table has and its size, and what
  the statement's lock blocks; below ``small_table_rows`` it is only informational;
- ``require-lock-timeout`` and ``require-statement-timeout`` are informational when the
  run sets those timeouts itself.

squawk's own ``-- squawk-ignore`` comments and ``.squawk.toml`` (found from the current
directory, as squawk finds it) keep working: sqlmig runs squawk on the files themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from sqlmig.ddl import Effect, Name, effect, statement_at
from sqlmig.errors import SqlmigError, UsageError
from sqlmig.source import Migration, Script
from sqlmig.sqlscript import Statement, split_statements

SMALL_TABLE_ROWS = 10_000
INSTALL = "sqlmig lint needs squawk: pip install 'sqlmig[lint]' (the squawk-cli package)"

# Rules whose harm grows with the table: the lock is held while it is scanned,
# rewritten or indexed. On a small table that is milliseconds.
SIZE_RULES = frozenset(
    {
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-reindex",
        "require-concurrent-partition-detach",
        "constraint-missing-not-valid",
        "adding-foreign-key-constraint",
        "adding-not-nullable-field",
        "adding-field-with-default",
        "adding-serial-primary-key-field",
        "changing-column-type",
        "disallowed-unique-constraint",
        "prefer-repack",
    }
)
# Rules about the schema's shape or the file itself: true whatever the table holds.
DESIGN_RULES = frozenset(
    {
        "syntax-error",
        "prefer-bigint-over-int",
        "prefer-bigint-over-smallint",
        "prefer-identity",
        "prefer-text-field",
        "prefer-timestamp-tz",
        "prefer-robust-stmts",
        "ban-char-field",
        "require-table-schema",
        "identifier-too-long",
        "require-enum-value-ordering",
        "ban-create-domain-with-constraint",
        "ban-alter-domain-with-add-constraint",
        "ban-concurrent-index-creation-in-transaction",
        "transaction-nesting",
        "ban-uncommitted-transaction",
        "unused-ignore",
    }
)


class Level(str, Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


class Mode(str, Enum):
    """How findings count (config ``lint``): ``warn`` lets warnings through and stops
    on errors only; ``error`` stops on warnings too; ``off``: no lint before ``up``."""

    OFF = "off"
    WARN = "warn"
    ERROR = "error"

    @property
    def fails_at(self) -> Level:
        return Level.ERROR if self is Mode.WARN else Level.WARNING


@dataclass(frozen=True)
class TableFacts:
    """An existing table as the database sees it: ``rows`` is PostgreSQL's estimate."""

    name: str
    rows: int
    bytes: int


@dataclass(frozen=True)
class Finding:
    """One finding, located in its migration file (line and column 1-based)."""

    path: str
    line: int
    column: int
    rule: str
    message: str
    fix: str | None
    level: Level
    version: str | None = None
    table: str | None = None  # the table it is about, as written
    lock: str | None = None  # the lock the statement takes on it
    blocks: str | None = None  # what that lock blocks
    facts: TableFacts | None = None
    note: str | None = None  # what sqlmig made of it


@dataclass(frozen=True)
class Report:
    """What the lint found. ``dropped``: findings about tables created earlier in the
    same migration, left out."""

    findings: tuple[Finding, ...]
    dropped: tuple[Finding, ...] = ()
    migrations: int = 0
    server_version: str | None = None  # with a database
    small_table_rows: int = SMALL_TABLE_ROWS

    def failing(self, mode: Mode) -> tuple[Finding, ...]:
        """The findings at or above the level ``mode`` stops at."""
        return tuple(f for f in self.findings if f.level.rank >= mode.fails_at.rank)


@dataclass(frozen=True)
class Guards:
    """The timeouts the run sets itself, which squawk cannot see in the files."""

    lock_timeout: bool = False
    statement_timeout: bool = False

    @classmethod
    def of(
        cls,
        ddl_lock_timeout: float | None,
        migration_lock_timeout: float | None,
        statement_timeout: float | None,
    ) -> Guards:
        """What a run with these settings sets (see sqlmig.run)."""
        locks = ddl_lock_timeout is not None or migration_lock_timeout is not None
        return cls(lock_timeout=locks, statement_timeout=statement_timeout is not None)


def lint(
    migrations: Sequence[Migration],
    *,
    database: Connection | None = None,
    small_table_rows: int = SMALL_TABLE_ROWS,
    guards: Guards = Guards(),
) -> Report:
    """Lint the up scripts of ``migrations`` with squawk and the database's facts.

    ``database``: a connection to read table sizes from (None: the SQL alone).
    Raises UsageError (exit 2) when squawk is not installed.
    """
    squawk = find_squawk()
    version = None
    if database is not None:
        info = database.dialect.server_version_info or ()
        version = ".".join(str(n) for n in info[:2]) or None
    scripts = {str(m.up.path): (m, m.up) for m in migrations}
    raw: list[dict[str, Any]] = []
    for transactional in (True, False):
        paths = [p for p, (_, s) in scripts.items() if s.transactional is transactional]
        raw.extend(_run_squawk(squawk, paths, transactional, version))
    readers: dict[str, _Script] = {}
    located: list[tuple[Finding, _Script, Statement | None]] = []  # each with its statement
    for item in raw:
        path = str(item.get("file", ""))
        if path not in scripts:
            continue
        m, script = scripts[path]
        reader = readers.setdefault(path, _Script(script))
        finding = reader.finding(item, m.version)
        if finding is not None:
            statement = reader.statement_at(finding)
            if _wrapper_nesting(finding, script, statement):
                continue
            located.append((finding, reader, statement))
    kept: list[Finding] = []
    dropped: list[Finding] = []
    for finding, reader, statement in located:
        what = effect(statement.sql) if statement is not None else Effect()
        main = what.locks[0] if what.locks else None
        if main is not None:
            finding = replace(finding, table=main.name.sql, lock=main.mode, blocks=main.blocks)
            if finding.rule not in DESIGN_RULES and reader.created_before(main.name, statement):
                dropped.append(finding)
                continue
        kept.append(_guarded(finding, guards))
    if database is not None:
        kept = _with_facts(kept, database, small_table_rows)
    order = sorted(kept, key=lambda f: (f.path, f.line, f.column, f.rule))
    return Report(tuple(order), tuple(dropped), len(migrations), version, small_table_rows)


def _wrapper_nesting(finding: Finding, script: Script, statement: Statement | None) -> bool:
    """squawk's transaction-nesting at a script's own BEGIN ... COMMIT around all of it:
    sqlmig leaves those out and runs the script as its one transaction (sqlmig.source)."""
    return (
        finding.rule == "transaction-nesting"
        and script.wrapper is not None
        and statement is not None
        and statement.start in script.wrapper.offsets
    )


def select(migrations: Sequence[Migration], versions: Sequence[str]) -> list[Migration]:
    """The migrations of the versions named (all when none is), in order."""
    if not versions:
        return list(migrations)
    by_number = {m.number: m for m in migrations}
    unknown = [v for v in versions if not v.isdigit() or int(v) not in by_number]
    if unknown:
        raise UsageError(f"no migration file for version {', '.join(unknown)}")
    return [by_number[n] for n in sorted({int(v) for v in versions})]


def headline(f: Finding) -> str:
    """'path:3:1: warning require-concurrent-index-creation: message'."""
    return f"{f.path}:{f.line}:{f.column}: {f.level.value} {f.rule}: {f.message}"


def find_squawk() -> str:
    """The squawk executable: next to this Python's scripts (a virtualenv need not be
    activated), else on PATH."""
    local = Path(sysconfig.get_path("scripts")) / ("squawk.exe" if os.name == "nt" else "squawk")
    if local.is_file():
        return str(local)
    found = shutil.which("squawk")
    if found is None:
        raise UsageError(INSTALL)
    return found


def _run_squawk(
    squawk: str, paths: list[str], transactional: bool, version: str | None
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    mode = "--assume-in-transaction" if transactional else "--no-assume-in-transaction"
    options = [mode, "--reporter", "json", "--no-error-on-unmatched-pattern"]
    if version:
        options.append(f"--pg-version={version}")
    for start in range(0, len(paths), 200):  # a command line of bounded length
        chunk = paths[start : start + 200]
        done = subprocess.run(
            [squawk, *options, *chunk], capture_output=True, text=True, check=False
        )
        try:
            items = json.loads(done.stdout) if done.stdout.strip() else []
        except json.JSONDecodeError:
            items = None
        if done.returncode not in (0, 1) or not isinstance(items, list):
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise SqlmigError(
                f"squawk failed (exit {done.returncode}): "
                f"{reason[0] if reason else 'no output'}; run it on the files to see why"
            )
        found.extend(items)
    return found


_NEWLINE = re.compile("\n")


class _Script:
    """One up script, split once, as the findings about it need it."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.statements = split_statements(script.sql)
        self.line_starts = [0, *(m.end() for m in _NEWLINE.finditer(script.sql))]
        self.created: list[tuple[int, Name]] = [
            (s.start, created)
            for s in self.statements
            if (created := effect(s.sql).creates) is not None
        ]

    def finding(self, item: dict[str, Any], version: str) -> Finding | None:
        """The finding in sqlmig's terms; None when it lies outside the up script (in
        the down section of a single file). squawk counts lines and columns from 0."""
        line = int(item.get("line", 0)) + 1
        local = line - self.script.first_line
        if not 0 <= local < len(self.line_starts):
            return None
        level = Level.ERROR if item.get("level") == "Error" else Level.WARNING
        return Finding(
            path=str(self.script.path),
            line=line,
            column=int(item.get("column", 0)) + 1,
            rule=str(item.get("rule_name", "")),
            message=str(item.get("message", "")),
            fix=item.get("help") or None,
            level=level,
            version=version,
        )

    def statement_at(self, finding: Finding) -> Statement | None:
        local = finding.line - self.script.first_line
        start = self.line_starts[local]
        end = (
            self.line_starts[local + 1]
            if local + 1 < len(self.line_starts)
            else len(self.script.sql)
        )
        return statement_at(self.statements, min(start + finding.column - 1, max(end - 1, start)))

    def created_before(self, name: Name, statement: Statement | None) -> bool:
        if statement is None:
            return False
        return any(start < statement.start and name.same(c) for start, c in self.created)


def _guarded(finding: Finding, guards: Guards) -> Finding:
    if finding.rule == "require-lock-timeout" and guards.lock_timeout:
        note = "sqlmig sets lock_timeout for each migration (ddl_lock_timeout)"
    elif finding.rule == "require-statement-timeout" and guards.statement_timeout:
        note = "sqlmig sets statement_timeout (statement_timeout)"
    else:
        return finding
    return replace(finding, level=Level.INFO, note=note)


_FACTS = text(
    """
    SELECT n.name, quote_ident(ns.nspname) || '.' || quote_ident(c.relname),
           CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint
                ELSE coalesce(pg_stat_get_live_tuples(c.oid), 0) END,
           pg_total_relation_size(c.oid)
      FROM unnest(:names) AS n(name)
      JOIN pg_class r ON r.oid = to_regclass(n.name)
      LEFT JOIN pg_index x ON x.indexrelid = r.oid
      JOIN pg_class c ON c.oid = coalesce(x.indrelid, r.oid)
      JOIN pg_namespace ns ON ns.oid = c.relnamespace
    """
).bindparams(bindparam("names", type_=ARRAY(Text())))


def table_facts(conn: Connection, names: Iterable[str]) -> dict[str, TableFacts]:
    """Rows (estimated) and size of each existing table named (an index's name: its
    table's), in one query; names that are no relation are left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = conn.execute(_FACTS, {"names": wanted}).all()
    return {row[0]: TableFacts(row[1], int(row[2]), int(row[3])) for row in rows}


def _with_facts(kept: list[Finding], conn: Connection, small: int) -> list[Finding]:
    facts = table_facts(conn, (f.table for f in kept if f.table is not None))
    out: list[Finding] = []
    for finding in kept:
        if finding.table is None:
            out.append(finding)
            continue
        known = facts.get(finding.table)
        if known is None:
            out.append(replace(finding, note=finding.note or "not in the database yet"))
            continue
        finding = replace(finding, facts=known)
        if finding.rule in SIZE_RULES and known.rows < small and finding.level is Level.WARNING:
            finding = replace(
                finding,
                level=Level.INFO,
                note=f"below {small:,} rows: the lock is held for moments",
            )
        out.append(finding)
    return out


def describe_facts(f: Finding) -> str | None:
    """'table public.t: ~200,000 rows, 7 MB; its SHARE lock blocks writes'."""
    parts: list[str] = []
    if f.facts is not None:
        parts.append(f"table {f.facts.name}: ~{f.facts.rows:,} rows, {_size(f.facts.bytes)}")
    elif f.table is not None:
        parts.append(f"table {f.table}")
    if f.lock is not None:
        parts.append(f"its {f.lock} lock blocks {f.blocks}")
    if f.note:
        parts.append(f.note)
    return "; ".join(parts) or None


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"

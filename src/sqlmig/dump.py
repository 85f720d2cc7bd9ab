"""The migrated schema as deterministic SQL: a ``schema.sql`` to commit, as with dbmate.

``pg_dump --schema-only`` writes it, without owners; what would differ between two
databases migrated the same way (the server's and pg_dump's versions, the random
``\\restrict`` key of recent pg_dump) is taken out, and the applied migrations follow
as rows of the tracking table, so ``psql -f schema.sql`` gives a database that sqlmig
sees as migrated. Committed, the file shows every schema change in review, and
:func:`check_schema_file` fails CI when it is stale.

pg_dump refuses a server newer than itself, so the first pg_dump at least as new as
the server is used: the one on PATH, else the embedded PostgreSQL's (pgserver's).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, insert, text

from sqlmig.database import connect, scrub
from sqlmig.errors import PgDumpUnusableError, SchemaDumpError, SchemaFileDiffersError
from sqlmig.migrator import Migrator
from sqlmig.plan import State
from sqlmig.tracker import migrations_table, version_key

PG_DUMP_OPTIONS = ("--schema-only", "--no-owner", "--encoding=UTF8")

# Lines that depend on the tools or on chance, not on the schema.
_NOISE = re.compile(
    r"^(?:-- Dumped (?:from database|by pg_dump) version .*|\\(?:un)?restrict .*)\n", re.M
)
_BLANK_RUNS = re.compile(r"\n{3,}")
# Some PostgreSQL builds stamp every column with an attribute option of their own,
# pg_attver=N, different in every database: a fact of the server, not of the schema.
_COLUMN_OPTIONS = re.compile(r"^(ALTER TABLE ONLY .* ALTER COLUMN .* SET )\((.*)\);\n", re.M)


def without_noise(dump: str) -> str:
    """pg_dump's output without what depends on the tools, the server build or chance."""
    return _BLANK_RUNS.sub("\n\n", _COLUMN_OPTIONS.sub(_unstamped, _NOISE.sub("", dump)))


def _unstamped(match: re.Match[str]) -> str:
    kept = [o for o in match[2].split(", ") if not o.startswith("pg_attver=")]
    return f"{match[1]}({', '.join(kept)});\n" if kept else ""


_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")

_DIFF_LINES = 60  # of a stale file's diff, shown in the error


@dataclass(frozen=True)
class PgDump:
    """A pg_dump executable and its version."""

    path: str
    version: tuple[int, int]

    @property
    def shown(self) -> str:
        return f"pg_dump {_dotted(self.version)} ({self.path})"


def pg_dump_candidates() -> list[str]:
    """The pg_dump on PATH, then the embedded PostgreSQL's, where they exist."""
    found = [shutil.which("pg_dump")]
    spec = importlib.util.find_spec("pgserver")  # its path, without importing it
    for folder in (spec and spec.submodule_search_locations) or ():
        found.append(str(Path(folder, "pginstall", "bin", "pg_dump")))
    return [path for path in found if path and os.access(path, os.X_OK)]


def find_pg_dump(server: tuple[int, int], candidates: Iterable[str] | None = None) -> PgDump:
    """The first candidate whose major version is at least the server's."""
    tried: list[str] = []
    for path in pg_dump_candidates() if candidates is None else candidates:
        tool = _probe(path)
        if tool is None:
            tried.append(f"{path}: does not say which version it is")
        elif tool.version[0] >= server[0]:
            return tool
        else:
            tried.append(f"{tool.shown}: older than the server")
    raise PgDumpUnusableError(server, tried)


def _probe(path: str) -> PgDump | None:
    try:
        said = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):  # not runnable, or hangs: not a pg_dump
        return None
    match = _VERSION.search(said)
    if match is None:
        return None
    return PgDump(path, (int(match[1]), int(match[2] or 0)))


def dump_schema(migrator: Migrator, *, pg_dump: Sequence[str] | None = None) -> str:
    """The database's schema as SQL, followed by its applied migrations.

    The same schema and migrations give the same bytes. ``pg_dump``: the executables
    to choose from (default :func:`pg_dump_candidates`).
    """
    engine = migrator.engine
    with connect(engine) as conn:
        rows = _applied_rows(migrator, conn)
        known = conn.dialect.server_version_info or (0, 0)  # learnt when connecting
    tool = find_pg_dump((int(known[0]), int(known[1])), pg_dump)
    # The password goes in pg_dump's environment: a command line is visible to all (ps).
    secret = str(engine.url.password) if engine.url.password else None
    target = engine.url.set(drivername="postgresql", password=None)
    env = dict(os.environ, PGPASSWORD=secret) if secret else dict(os.environ)
    done = subprocess.run(
        [tool.path, *PG_DUMP_OPTIONS, "--dbname", target.render_as_string(hide_password=False)],
        capture_output=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        said = scrub(done.stderr.decode(errors="replace").strip(), secret)
        raise SchemaDumpError(f"{tool.shown} failed (exit {done.returncode}): {said}")
    schema = without_noise(done.stdout.decode())
    return schema.rstrip("\n") + "\n\n" + rows


def _applied_rows(migrator: Migrator, conn: Connection) -> str:
    """The applied migrations as INSERTs into the tracking table, one line each, by version."""
    tracker = migrator.tracker
    rows = sorted(
        (r for r in tracker.read(conn) or [] if r.status == "applied"),
        key=lambda r: version_key(r.version),
    )
    # pg_dump empties search_path, so the table is named with its schema.
    schema = tracker.table.schema or conn.execute(text("SELECT current_schema()")).scalar_one()
    table = migrations_table(tracker.table.name, schema)
    lines = [
        str(
            insert(table)
            .values(version=r.version, filename=r.filename, checksum=r.checksum, duration_ms=0)
            .compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        ).replace("\n", " ")
        + ";\n"
        for r in rows
    ]
    header = f"--\n-- sqlmig: the applied migrations ({schema}.{table.name})\n--\n\n"
    return header + ("".join(lines) or "-- none\n")


def write_schema_file(migrator: Migrator, path: str | os.PathLike[str]) -> Path:
    """Write :func:`dump_schema` to ``path`` (its folder made when missing)."""
    target = Path(path)
    content = dump_schema(migrator)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8", newline="\n")
    return target


def check_schema_file(migrator: Migrator, path: str | os.PathLike[str]) -> None:
    """Raise SchemaFileDiffersError unless ``path`` holds what the migrations produce.

    The database must be migrated to the newest file: a database that lacks a
    migration says nothing about the schema the migrations produce.
    """
    unsettled = [s for s in migrator.status() if s.state is not State.APPLIED]
    if unsettled:
        raise SchemaFileDiffersError(
            f"cannot check {path}: the database is not migrated to the files",
            [f"{s.version} {s.filename}: {s.state.value}" for s in unsettled],
            "Run `sqlmig up` on a fresh database first, then check again.",
        )
    produced = dump_schema(migrator)
    try:
        committed = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        committed = ""
    if committed == produced:
        return
    diff = list(
        difflib.unified_diff(
            committed.splitlines(), produced.splitlines(), str(path), "migrated", lineterm=""
        )
    )
    shown = diff[:_DIFF_LINES] + (
        [f"... {len(diff) - _DIFF_LINES} more lines"] if len(diff) > _DIFF_LINES else []
    )
    raise SchemaFileDiffersError(
        f"{path} is not the schema the migrations produce"
        + ("" if committed else " (it does not exist)"),
        shown,
        f"Run `sqlmig dump --out {path}` on a database migrated from empty, and commit it.",
    )


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"

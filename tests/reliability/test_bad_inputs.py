"""Bad input through the real CLI against a real PostgreSQL: one directory per case.

Every case in ``bad_inputs/`` runs ``python -m sqlmig`` once, as an operator would,
and checks the exit code, the message on stderr (and the JSON error document when
the case asks for JSON), that no traceback is shown, and, for every case refused
before anything ran, that the database is exactly as it was: the same schemas,
relations, columns, functions and table contents.

A case directory holds:

- ``case.toml``: ``description``; ``command`` (the arguments after the global
  options, default ``["up"]``); ``exit_code``; ``message`` (substrings that must all
  appear in stderr, and in the JSON error's message); optional ``message_regex``,
  ``stdout`` (substrings), ``json`` (run with ``--format json`` and check the
  document), ``error_type`` (the JSON error's ``type``), ``ok`` (the document's
  ``ok``, default: exit code 0), ``unchanged`` (default: the exit code is not 0),
  ``setup_up`` (apply the migrations with the library before the command), ``dir``
  (default ``migrations``).
- ``migrations/``: the files, as committed.
- ``setup.sql``: run before the command, to put the database in a state
  (a tracking table of another tool's shape, rows whose files are gone...).
- ``make.py``: optional hooks, each taking the case's working directory:
  ``make(work)`` writes what cannot be committed (20 MB files, invalid bytes,
  symlinks, FIFOs), ``edit(work)`` changes files after the setup, and
  ``check(outcome)`` adds assertions of its own.

Adding a case is adding a directory; the table of cases is in ``bad_inputs/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import clean_environ
from sqlalchemy import Engine, text

from sqlmig.migrator import Migrator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.integration

CASES = Path(__file__).parent / "bad_inputs"
CASE_KEYS = {
    "description",
    "command",
    "exit_code",
    "message",
    "message_regex",
    "stdout",
    "json",
    "error_type",
    "ok",
    "unchanged",
    "setup_up",
    "dir",
    "timeout",
}


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    description: str
    command: list[str]
    exit_code: int
    message: list[str]
    message_regex: str | None
    stdout: list[str]
    json: bool
    error_type: str | None
    ok: bool
    unchanged: bool
    setup_up: bool
    dir: str
    timeout: float
    hooks: ModuleType | None = field(repr=False)


@dataclass(frozen=True)
class Outcome:
    """What one run of the CLI did, for a case's own ``check`` hook."""

    case: Case
    work: Path
    engine: Engine
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    document: dict[str, Any] | None  # the JSON document, when the case ran with --format json

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]


def load_case(path: Path) -> Case:
    with (path / "case.toml").open("rb") as f:
        spec = tomllib.load(f)
    unknown = set(spec) - CASE_KEYS
    assert not unknown, f"{path.name}/case.toml: unknown keys {sorted(unknown)}"
    message = spec.get("message", [])
    exit_code = spec["exit_code"]
    return Case(
        name=path.name,
        path=path,
        description=spec["description"],
        command=list(spec.get("command", ["up"])),
        exit_code=exit_code,
        message=[message] if isinstance(message, str) else list(message),
        message_regex=spec.get("message_regex"),
        stdout=list(spec.get("stdout", [])),
        json=spec.get("json", False),
        error_type=spec.get("error_type"),
        ok=spec.get("ok", exit_code == 0),
        unchanged=spec.get("unchanged", exit_code != 0),
        setup_up=spec.get("setup_up", False),
        dir=spec.get("dir", "migrations"),
        timeout=spec.get("timeout", 60),
        hooks=_hooks(path),
    )


def _hooks(path: Path) -> ModuleType | None:
    script = path / "make.py"
    if not script.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"bad_inputs_{path.name}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def all_cases() -> list[Case]:
    return [load_case(p) for p in sorted(CASES.iterdir()) if (p / "case.toml").exists()]


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a migration could have changed: schemas, relations, columns,
    functions, and the contents of every table (tracking table included)."""
    user = (
        "n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    )
    with engine.connect() as conn:
        state: dict[str, Any] = {
            "schemas": conn.execute(
                text(f"SELECT nspname FROM pg_namespace n WHERE {user} ORDER BY 1")
            ).all(),
            "relations": conn.execute(
                text(
                    "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
                    f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user} ORDER BY 1, 2"
                )
            ).all(),
            "columns": conn.execute(
                text(
                    "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)"
                    " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    f" WHERE {user} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, 3"
                )
            ).all(),
            "functions": conn.execute(
                text(
                    "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)"
                    f" FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user}"
                    " ORDER BY 1, 2, 3"
                )
            ).all(),
        }
        tables = conn.execute(
            text(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
                f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user}"
                " AND c.relkind IN ('r', 'p') ORDER BY 1"
            )
        ).scalars()
        for table in list(tables):
            # Catalog names quoted by format('%I'), so safe to paste.
            contents = (
                f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
            )
            state[table] = conn.execute(text(contents)).one()
    return state


def setup(case: Case, work: Path, engine: Engine) -> None:
    """Put files and database in the state the case starts from."""
    if case.hooks is not None and hasattr(case.hooks, "make"):
        case.hooks.make(work)
    setup_sql = case.path / "setup.sql"
    if setup_sql.exists():
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(setup_sql.read_text(encoding="utf-8"))
            raw.commit()
        finally:
            raw.close()
    if case.setup_up:
        Migrator(engine, work / "migrations", lock_timeout=10).up()
    if case.hooks is not None and hasattr(case.hooks, "edit"):
        case.hooks.edit(work)


def run_cli(case: Case, work: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env.update(SQLMIG_DATABASE_URL=database_url, NO_COLOR="1", COLUMNS="200")
    args = ["--dir", case.dir, "--lock-timeout", "10"]
    if case.json:
        args += ["--format", "json"]
    return subprocess.run(
        [sys.executable, "-m", "sqlmig", *args, *case.command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=case.timeout,
    )


def check_json(case: Case, stdout: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(stdout)
    assert document["ok"] is case.ok, document
    assert document["command"] == case.command[0]
    if not case.ok and case.exit_code != 0:
        error = document["error"]
        assert error["exit_code"] == case.exit_code
        if case.error_type is not None:
            assert error["type"] == case.error_type
        for part in case.message:
            assert part in error["message"], f"{part!r} not in the JSON error message"
    return document


CASE_LIST = all_cases()


def test_the_corpus_covers_every_case_directory() -> None:
    """A directory without case.toml would silently never run; the README lists them all."""
    directories = [p.name for p in CASES.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert sorted(directories) == sorted(c.name for c in CASE_LIST)
    assert len(CASE_LIST) >= 30
    listed = re.findall(r"^\| `(\w+)` \|", (CASES / "README.md").read_text(), re.M)
    assert listed == sorted(c.name for c in CASE_LIST)


@pytest.mark.parametrize("case", CASE_LIST, ids=[c.name for c in CASE_LIST])
def test_bad_input(case: Case, database_url: str, engine: Engine, tmp_path: Path) -> None:
    work = tmp_path / case.name
    shutil.copytree(
        case.path,
        work,
        symlinks=True,
        ignore=shutil.ignore_patterns("case.toml", "make.py", "setup.sql", "__pycache__"),
    )
    setup(case, work, engine)
    before = snapshot(engine)

    started = time.perf_counter()
    result = run_cli(case, work, database_url)
    seconds = time.perf_counter() - started

    shown = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == case.exit_code, shown
    assert "Traceback" not in result.stderr, shown
    for part in case.message:
        assert part in result.stderr, f"{part!r} not in stderr\n{shown}"
    if case.message_regex is not None:
        assert re.search(case.message_regex, result.stderr, re.M), shown
    for part in case.stdout:
        assert part in result.stdout, f"{part!r} not in stdout\n{shown}"
    document = check_json(case, result.stdout) if case.json else None
    if case.unchanged:
        assert snapshot(engine) == before, f"the database changed\n{shown}"
    if case.hooks is not None and hasattr(case.hooks, "check"):
        case.hooks.check(
            Outcome(
                case,
                work,
                engine,
                result.returncode,
                result.stdout,
                result.stderr,
                seconds,
                document,
            )
        )

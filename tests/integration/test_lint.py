"""`sqlmig lint` on the corpus (tests/lint_corpus.py), with squawk and a real PostgreSQL:
the findings and their levels from the SQL alone, then with the database's facts,
where the same statement on a 10-row and on a 200,000-row table differ; and the
command's exits, JSON, GitHub annotations and the lint before `up`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import CLEARED_ENV
from lint_corpus import DROPPED, EXPECTED, FILES, SETUP
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from sqlmig.cli import app
from sqlmig.lint import Finding, Guards, Level, Report, lint
from sqlmig.validation import validate_files

pytestmark = pytest.mark.integration


def key(f: Finding) -> tuple[str, int, str]:
    return (f.version or "", f.line, f.rule)


def levels(report: Report) -> dict[tuple[str, int, str], str]:
    return {key(f): f.level.value for f in report.findings}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name, body in FILES.items():
        (folder / name).write_text(body)
    return folder


@pytest.fixture
def tables(database_url: str) -> str:
    libpq = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(libpq.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(SETUP)
    return database_url


def test_from_the_sql_alone_every_finding_is_squawks_warning(corpus: Path) -> None:
    report = lint(validate_files(corpus))

    assert levels(report) == {k: without for k, (without, _) in EXPECTED.items()}
    assert {key(f) for f in report.dropped} == DROPPED
    assert report.server_version is None
    assert all(f.facts is None for f in report.findings)


def test_with_the_database_findings_on_the_small_table_are_informational(
    corpus: Path, tables: str, engine: Engine
) -> None:
    with engine.connect() as conn:
        report = lint(validate_files(corpus), database=conn)

    assert levels(report) == {k: with_facts for k, (_, with_facts) in EXPECTED.items()}
    assert {key(f) for f in report.dropped} == DROPPED
    assert report.server_version is not None and report.server_version.startswith("1")
    by_key = {key(f): f for f in report.findings}
    small = by_key[("0001", 1, "require-concurrent-index-creation")]
    big = by_key[("0002", 1, "require-concurrent-index-creation")]
    assert small.facts is not None and small.facts.name == "public.small"
    assert small.facts.rows == 10
    assert small.note == "below 10,000 rows: the lock is held for moments"
    assert big.facts is not None and big.facts.name == "public.big"
    assert 190_000 <= big.facts.rows <= 210_000
    assert big.facts.bytes > 5_000_000
    assert (big.lock, big.blocks) == ("SHARE", "writes")
    check = by_key[("0005", 1, "constraint-missing-not-valid")]
    assert (check.lock, check.blocks) == ("ACCESS EXCLUSIVE", "reads and writes")


def test_the_threshold_is_the_callers(corpus: Path, tables: str, engine: Engine) -> None:
    with engine.connect() as conn:
        report = lint(validate_files(corpus), database=conn, small_table_rows=5)

    assert levels(report)[("0001", 1, "require-concurrent-index-creation")] == "warning"


def test_timeouts_sqlmig_sets_make_their_rules_informational(corpus: Path) -> None:
    report = lint(validate_files(corpus), guards=Guards(lock_timeout=True, statement_timeout=True))

    timeouts = [f for f in report.findings if f.rule.endswith("-timeout")]
    assert timeouts and all(f.level is Level.INFO for f in timeouts)
    assert {f.rule for f in report.findings if f.level is Level.WARNING} == {
        "require-concurrent-index-creation",
        "constraint-missing-not-valid",
        "changing-column-type",
        "prefer-text-field",
        "renaming-column",
        "adding-not-nullable-field",
    }


# --- the command ----------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.chdir(tmp_path)
    for name in (*CLEARED_ENV, "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    yield CliRunner()


def invoke(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env)


def test_lint_exits_1_on_warnings_and_lists_each_with_its_fix(cli: CliRunner, corpus: Path) -> None:
    result = invoke(cli, "lint", "0002")

    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "migrations/0002_index_big.up.sql:1:1: warning require-concurrent-index-creation: "
        "During normal index creation, table updates are blocked, but reads are still allowed."
    )
    assert "  table big; its SHARE lock blocks writes" in lines
    assert "  fix: Use `concurrently` to avoid blocking writes." in lines
    assert lines[-1] == "lint: 1 migrations: 3 warning; 3 at or above warning"


def test_lint_with_facts_as_json_and_github_annotations(
    cli: CliRunner, corpus: Path, tables: str
) -> None:
    result = invoke(
        cli,
        "--format",
        "json",
        "lint",
        "0001",
        "0002",
        env={"DATABASE_URL": tables, "GITHUB_ACTIONS": "true"},
    )

    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["checked_database"] is True
    index = {
        (f["version"], f["rule"]): f
        for f in document["findings"]
        if f["rule"] == "require-concurrent-index-creation"
    }
    assert index[("0001", "require-concurrent-index-creation")]["level"] == "info"
    assert index[("0001", "require-concurrent-index-creation")]["rows"] == 10
    assert index[("0002", "require-concurrent-index-creation")]["level"] == "warning"
    assert index[("0002", "require-concurrent-index-creation")]["blocks"] == "writes"
    assert document["counts"] == {"info": 1, "warning": 5, "error": 0}
    assert (
        "::notice file=migrations/0001_index_small.up.sql,line=1,col=1,"
        "title=squawk require-concurrent-index-creation::" in result.stderr
    )


def test_with_lint_warn_only_errors_fail(cli: CliRunner, corpus: Path, tmp_path: Path) -> None:
    (tmp_path / "sqlmig.toml").write_text('lint = "warn"\n')

    assert invoke(cli, "lint").exit_code == 0


def test_pending_lints_only_what_up_has_not_applied(
    cli: CliRunner, corpus: Path, tables: str
) -> None:
    env = {"DATABASE_URL": tables}
    assert invoke(cli, "up", "--to", "0001", env=env).exit_code == 0

    document = json.loads(invoke(cli, "--format", "json", "lint", "--pending", env=env).stdout)

    assert document["migrations"] == len(FILES) - 1
    assert "0001" not in {f["version"] for f in document["findings"]}


def test_up_lint_stops_before_the_lock_with_nothing_run(
    cli: CliRunner, corpus: Path, tables: str, engine: Engine
) -> None:
    result = invoke(cli, "up", "--lint", env={"DATABASE_URL": tables})

    assert result.exit_code == 1
    assert "the lint found" in result.stderr and "nothing was run" in result.stderr
    assert "0002_index_big.up.sql:1:1: warning require-concurrent-index-creation" in result.stderr
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT to_regclass('schema_migrations')").scalar() is None


def test_up_with_lint_warn_reports_and_runs(
    cli: CliRunner, corpus: Path, tables: str, tmp_path: Path
) -> None:
    (tmp_path / "sqlmig.toml").write_text('lint = "warn"\n')

    result = invoke(cli, "up", "--to", "0002", env={"DATABASE_URL": tables})

    assert result.exit_code == 0, result.stderr
    assert "warning require-concurrent-index-creation" in result.stderr
    assert "[2/2] 0002 index_big done" in result.stderr


def test_without_squawk_lint_exits_2_saying_what_to_install(
    cli: CliRunner, corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sqlmig.lint.sysconfig.get_path", lambda name: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))

    result = invoke(cli, "lint")

    assert result.exit_code == 2
    assert "pip install 'sqlmig[lint]'" in result.stderr

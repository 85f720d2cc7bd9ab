"""The command line against a real PostgreSQL: every command, exit codes 0-4, JSON,
precedence of option, environment and config file, and no password in any output.

Most runs go through typer's CliRunner; a representative few run the installed
console script as a subprocess. Every run goes through `invoke` or `script`, which
check that the sentinel password never reaches stdout or stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from helpers import SENTINEL, clean_environ, document, invoke, tables, tracking, write
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_environment")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "migrations"
SCRIPT = Path(sys.executable).parent / "sqlmig"
VERSIONS = [
    "20261101090000",
    "20261102100000",
    "20261103110000",
    "20261104120000",
    "20261105130000",
]
NAMES = [
    "create_accounts",
    "create_projects",
    "add_project_slug",
    "touch_updated_at",
    "index_active_projects",
]
FILENAMES = [
    "20261101090000_create_accounts.up.sql",
    "20261102100000_create_projects.sql",
    "20261103110000_add_project_slug.up.sql",
    "20261104120000_touch_updated_at.up.sql",
    "20261105130000_index_active_projects.up.sql",
]


@pytest.fixture
def url(database_url: str) -> str:
    """The test database's URL with a password the server ignores (trust auth)."""
    return make_url(database_url).set(password=SENTINEL).render_as_string(hide_password=False)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    """A copy of examples/migrations in ./migrations, the default --dir."""
    return Path(shutil.copytree(EXAMPLES, tmp_path / "migrations"))


def script(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed console script (or `python -m sqlmig` when args start with -m)."""
    clean = clean_environ()
    argv = [sys.executable, *args] if args[0] == "-m" else [str(SCRIPT), *args]
    done = subprocess.run(
        argv, cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60
    )
    assert SENTINEL not in done.stdout + done.stderr
    return done


FAILING = {
    "0001_create_t.up.sql": "CREATE TABLE t (id int);\n",
    "0001_create_t.down.sql": "DROP TABLE t;\n",
    "0002_broken.up.sql": "CREATE TABLE u (id int);\nSELECT *\n  FROM nope;\n",
    "0002_broken.down.sql": "DROP TABLE u;\n",
}


# --- up ----------------------------------------------------------------------------


def test_up_applies_every_pending_migration_and_reports_each(
    url: str, examples: Path, engine: Engine
) -> None:
    result = invoke("--database-url", url, "up")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("applied 5 migrations in ")
    assert result.stdout.endswith(" ms\n")
    assert result.stdout.count("\n") == 1
    progress = result.stderr.splitlines()
    assert progress[0] == f"[1/5] {VERSIONS[0]} create_accounts ..."
    assert progress[1].startswith(f"[1/5] {VERSIONS[0]} create_accounts done in ")
    assert progress[-1].startswith(f"[5/5] {VERSIONS[4]} index_active_projects done in ")
    assert tracking(engine) == dict.fromkeys(VERSIONS, "applied")
    assert {"accounts", "projects"} <= tables(engine)

    again = invoke("--database-url", url, "up")

    assert (again.exit_code, again.stdout) == (0, "nothing to do: the database is up to date\n")


def test_up_to_and_steps(url: str, examples: Path, engine: Engine) -> None:
    to = invoke("--database-url", url, "up", "--to", VERSIONS[1])
    assert to.exit_code == 0
    assert tracking(engine) == dict.fromkeys(VERSIONS[:2], "applied")

    steps = invoke("--database-url", url, "up", "--steps", "2")
    assert steps.exit_code == 0
    assert steps.stdout.startswith("applied 2 migrations in ")
    assert tracking(engine) == dict.fromkeys(VERSIONS[:4], "applied")

    unknown = invoke("--database-url", url, "up", "--to", "123")
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "error: target version 123 is not a known migration; see `sqlmig status`\n"
    )


def test_up_dry_run_prints_the_sql_and_changes_nothing(
    url: str, examples: Path, engine: Engine
) -> None:
    result = invoke("--database-url", url, "up", "--dry-run", "--steps", "1")

    assert result.exit_code == 0
    # Each statement as it is sent: the comments around statements are not sent.
    assert result.stdout.startswith(
        "BEGIN;\n\nCREATE TYPE plan_tier AS ENUM ('free', 'team', 'enterprise');\n\n"
    )
    assert "INSERT INTO schema_migrations" in result.stdout
    assert result.stdout.endswith("COMMIT;\n\n")
    sent = result.stdout.count(";\n\n")
    assert result.stderr == f"dry run: {sent} statements, nothing was changed\n"
    assert tables(engine) <= {"schema_migrations"}

    as_json = invoke("--database-url", url, "--format", "json", "up", "--dry-run")
    doc = document(as_json.stdout)
    assert (doc["ok"], doc["command"], doc["dry_run"]) == (True, "up", True)
    assert doc["sql"][0] == "BEGIN"
    assert "CREATE INDEX CONCURRENTLY projects_active_by_account" in "".join(doc["sql"])
    assert tables(engine) <= {"schema_migrations"}


def test_up_refuses_out_of_order_unless_allowed(url: str, tmp_path: Path, engine: Engine) -> None:
    folder = write(tmp_path / "migrations", {"0002_b.up.sql": "CREATE TABLE b (id int);\n"})
    assert invoke("--database-url", url, "up").exit_code == 0
    write(folder, {"0001_a.up.sql": "CREATE TABLE a (id int);\n"})

    refused = invoke("--database-url", url, "up")
    allowed = invoke("--database-url", url, "up", "--allow-out-of-order")

    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: pending migrations are older than the newest applied one (2); nothing was run:\n"
        "  0001 0001_a.up.sql: pending\n"
    )
    assert allowed.exit_code == 0
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


def test_up_refuses_drift_unless_allowed(url: str, tmp_path: Path, engine: Engine) -> None:
    folder = write(tmp_path / "migrations", {"0001_a.up.sql": "CREATE TABLE a (id int);\n"})
    assert invoke("--database-url", url, "up").exit_code == 0
    write(
        folder,
        {"0001_a.up.sql": "CREATE TABLE a (id bigint);\n", "0002_b.up.sql": "CREATE TABLE b ();\n"},
    )

    refused = invoke("--database-url", url, "up")
    allowed = invoke("--database-url", url, "up", "--allow-drift")

    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        "error: applied migrations no longer match their files; nothing was run:\n"
        "  0001 0001_a.up.sql: checksum sha256:"
    )
    assert "pass --allow-drift" in refused.stderr
    assert allowed.exit_code == 0
    assert tracking(engine) == {"0001": "applied", "0002": "applied"}


def test_statement_timeout_stops_a_slow_migration(url: str, tmp_path: Path) -> None:
    write(tmp_path / "migrations", {"0001_slow.up.sql": "SELECT pg_sleep(5);\n"})

    result = invoke("--database-url", url, "--statement-timeout", "0.2", "up")

    assert result.exit_code == 1
    assert "[SQLSTATE 57014]" in result.stderr


# --- a failing migration (exit 1) --------------------------------------------------


def test_a_failing_migration_exits_1_with_file_line_column_sqlstate_and_caret(
    url: str, tmp_path: Path, engine: Engine
) -> None:
    write(tmp_path / "migrations", FAILING)

    result = invoke("--database-url", url, "up")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    error = result.stderr[result.stderr.index("error: ") :]
    assert error.startswith(
        "error: migration 0002 (up) failed at migrations/0002_broken.up.sql:3:8: "
        'relation "nope" does not exist [SQLSTATE 42P01]\n'
    )
    assert "  3 |   FROM nope;\n    |        ^\n" in error
    assert "Fix the script and run `sqlmig up` again" in error
    assert tracking(engine) == {"0001": "applied", "0002": "failed"}
    assert "u" not in tables(engine)


def test_a_failing_migration_in_json(url: str, tmp_path: Path) -> None:
    write(tmp_path / "migrations", FAILING)

    result = invoke("--database-url", url, "--format", "json", "up")

    assert result.exit_code == 1
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"]) == (False, "up")
    error = doc["error"]
    assert error["type"] == "MigrationError"
    assert error["exit_code"] == 1
    assert error["version"] == "0002"
    assert error["file"] == "migrations/0002_broken.up.sql"
    assert (error["line"], error["column"]) == (3, 8)
    assert error["sqlstate"] == "42P01"
    assert error["server_message"] == 'relation "nope" does not exist'
    assert error["message"].startswith("migration 0002 (up) failed at ")
    assert [m["version"] for m in doc["migrations"]] == ["0001"]
    assert doc["migrations"][0]["direction"] == "up"
    assert "Traceback" not in result.stderr
    assert "error: migration 0002 (up) failed" in result.stderr


def test_a_failing_migration_with_verbose_shows_the_traceback(url: str, tmp_path: Path) -> None:
    write(tmp_path / "migrations", FAILING)

    result = invoke("--database-url", url, "--verbose", "up")

    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "sqlmig.errors.MigrationError" in result.stderr


# --- down and redo -------------------------------------------------------------------


def test_down_rolls_back_one_by_default_then_steps_then_to_then_all(
    url: str, examples: Path, engine: Engine
) -> None:
    assert invoke("--database-url", url, "up").exit_code == 0

    one = invoke("--database-url", url, "down")
    assert one.exit_code == 0
    assert one.stdout.startswith("rolled back 1 migration in ")
    assert list(tracking(engine).items())[-1] == (VERSIONS[4], "rolled_back")

    two = invoke("--database-url", url, "down", "--steps", "2")
    assert two.stdout.startswith("rolled back 2 migrations in ")
    assert list(tracking(engine).values()) == ["applied"] * 2 + ["rolled_back"] * 3

    to = invoke("--database-url", url, "down", "--to", VERSIONS[0])
    assert to.exit_code == 0
    assert list(tracking(engine).values()) == ["applied"] + ["rolled_back"] * 4

    everything = invoke("--database-url", url, "down", "--all", "--yes")
    assert everything.exit_code == 0
    assert list(tracking(engine).values()) == ["rolled_back"] * 5
    assert tables(engine) == {"schema_migrations"}

    nothing = invoke("--database-url", url, "down")
    assert (nothing.exit_code, nothing.stdout) == (0, "nothing to roll back\n")


def test_down_in_json(url: str, examples: Path) -> None:
    assert invoke("--database-url", url, "up").exit_code == 0

    result = invoke("--database-url", url, "--format", "json", "down", "--steps", "2")

    assert result.exit_code == 0
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"], doc["lock_wait_s"]) == (True, "down", 0.0)
    first, second = doc["migrations"]
    assert first == {
        "version": VERSIONS[4],
        "name": NAMES[4],
        "filename": FILENAMES[4],
        "direction": "down",
        "duration_ms": first["duration_ms"],
        "transactional": False,
        "notices": [],
    }
    assert isinstance(first["duration_ms"], int) and first["duration_ms"] >= 0
    assert (second["version"], second["transactional"]) == (VERSIONS[3], True)
    assert "[1/2]" in result.stderr


def test_redo_rolls_back_and_reapplies_the_newest(url: str, examples: Path, engine: Engine) -> None:
    assert invoke("--database-url", url, "up", "--to", VERSIONS[2]).exit_code == 0

    text_run = invoke("--database-url", url, "redo")
    json_run = invoke("--database-url", url, "--format", "json", "redo")

    assert text_run.exit_code == 0
    assert text_run.stdout.startswith("redid 1 migration in ")
    progress = text_run.stderr.splitlines()
    assert progress[0] == f"[1/1] rolling back {VERSIONS[2]} {NAMES[2]} ..."
    assert progress[1].startswith(f"[1/1] {VERSIONS[2]} {NAMES[2]} rolled back in ")
    assert progress[2] == f"[1/1] {VERSIONS[2]} {NAMES[2]} ..."
    assert progress[3].startswith(f"[1/1] {VERSIONS[2]} {NAMES[2]} done in ")
    doc = document(json_run.stdout)
    assert (doc["ok"], doc["command"]) == (True, "redo")
    assert [(m["version"], m["direction"]) for m in doc["migrations"]] == [
        (VERSIONS[2], "down"),
        (VERSIONS[2], "up"),
    ]
    assert tracking(engine) == dict.fromkeys(VERSIONS[:3], "applied")


# --- status, validate, history ------------------------------------------------------


def test_status_table_and_exit_code(url: str, examples: Path) -> None:
    pending = invoke("--database-url", url, "status", "--exit-code")
    plain = invoke("--database-url", url, "status")
    assert invoke("--database-url", url, "up").exit_code == 0
    settled = invoke("--database-url", url, "status", "--exit-code")

    assert (pending.exit_code, plain.exit_code, settled.exit_code) == (1, 0, 0)
    assert pending.stdout.count("pending") == 5
    header = settled.stdout.splitlines()[0].split()
    assert [w for w in header if w.isalpha()] == ["version", "name", "state", "applied", "at", "ms"]
    for version, name in zip(VERSIONS, NAMES, strict=True):
        line = next(line for line in settled.stdout.splitlines() if version in line)
        assert name in line and "applied" in line
    assert "\x1b[" not in settled.stdout


@pytest.mark.parametrize("state", ["failed", "changed", "missing", "rolled_back"])
def test_status_exit_code_is_1_for_anything_unsettled(url: str, tmp_path: Path, state: str) -> None:
    folder = write(tmp_path / "migrations", {k: v for k, v in FAILING.items() if "0001" in k})
    assert invoke("--database-url", url, "up").exit_code == 0
    if state == "failed":
        write(folder, {"0002_broken.up.sql": FAILING["0002_broken.up.sql"]})
        assert invoke("--database-url", url, "up").exit_code == 1
    elif state == "changed":
        write(folder, {"0001_create_t.up.sql": "CREATE TABLE t (id bigint);\n"})
    elif state == "missing":
        (folder / "0001_create_t.up.sql").unlink()
        (folder / "0001_create_t.down.sql").unlink()
    else:
        assert invoke("--database-url", url, "down").exit_code == 0

    result = invoke("--database-url", url, "--format", "json", "status", "--exit-code")

    assert result.exit_code == 1
    assert state in document(result.stdout)["counts"]


def test_status_in_json(url: str, examples: Path) -> None:
    assert invoke("--database-url", url, "up", "--steps", "3").exit_code == 0

    result = invoke("--database-url", url, "--format", "json", "status")

    assert result.exit_code == 0
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"]) == (True, "status")
    assert doc["counts"] == {"applied": 3, "pending": 2}
    assert [m["version"] for m in doc["migrations"]] == VERSIONS
    assert [m["name"] for m in doc["migrations"]] == NAMES
    assert [m["filename"] for m in doc["migrations"]] == FILENAMES
    assert [m["state"] for m in doc["migrations"]] == ["applied"] * 3 + ["pending"] * 2
    first, last = doc["migrations"][0], doc["migrations"][-1]
    assert datetime.fromisoformat(first["applied_at"]).tzinfo is not None
    assert isinstance(first["duration_ms"], int)
    assert first["checksum"].startswith("sha256:")
    assert first["recorded_checksum"] == first["checksum"]
    assert (last["applied_at"], last["duration_ms"], last["recorded_checksum"]) == (None,) * 3
    assert last["checksum"].startswith("sha256:")
    assert result.stderr == ""


def test_validate_with_a_url_checks_drift(url: str, examples: Path) -> None:
    assert invoke("--database-url", url, "up").exit_code == 0

    clean = invoke("--database-url", url, "validate")
    clean_json = invoke("--database-url", url, "--format", "json", "validate")
    (examples / FILENAMES[2]).write_text("ALTER TABLE projects ADD COLUMN slug text;\n")
    drifted = invoke("--database-url", url, "validate")
    drifted_json = invoke("--database-url", url, "--format", "json", "validate")

    assert (clean.exit_code, clean.stdout) == (
        0,
        "ok: 5 migrations are valid and match the database\n",
    )
    assert document(clean_json.stdout) == {
        "ok": True,
        "command": "validate",
        "migrations": 5,
        "checked_database": True,
        "notes": [],
    }
    assert drifted.exit_code == 1
    assert drifted.stderr.startswith(
        "error: applied migrations no longer match their files; nothing was run:\n"
        f"  {VERSIONS[2]} {FILENAMES[2]}: checksum sha256:"
    )
    doc = document(drifted_json.stdout)
    assert (doc["ok"], doc["command"], doc["error"]["type"]) == (False, "validate", "StateError")
    assert doc["error"]["problems"][0].startswith(f"{VERSIONS[2]} {FILENAMES[2]}: checksum")


def test_history_lists_rows_newest_first(url: str, examples: Path) -> None:
    assert invoke("--database-url", url, "up").exit_code == 0
    assert invoke("--database-url", url, "down").exit_code == 0

    table = invoke("--database-url", url, "history")
    result = invoke("--database-url", url, "--format", "json", "history")

    assert table.exit_code == 0
    lines = [line for line in table.stdout.splitlines() if "2026110" in line]
    assert len(lines) == 5
    assert "rolled_back" in lines[0] and VERSIONS[4] in lines[0]
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"]) == (True, "history")
    history = doc["rows"]
    assert [r["version"] for r in history] == [VERSIONS[4], *reversed(VERSIONS[:4])]
    assert [r["status"] for r in history] == ["rolled_back"] + ["applied"] * 4
    assert [r["filename"] for r in history][1:] == list(reversed(FILENAMES[:4]))
    times = [datetime.fromisoformat(r["applied_at"]) for r in history]
    assert times == sorted(times, reverse=True)
    assert all(r["checksum"].startswith("sha256:") for r in history)
    assert all(isinstance(r["duration_ms"], int) for r in history)


# --- baseline and repair -------------------------------------------------------------


def test_baseline_records_without_running(url: str, examples: Path, engine: Engine) -> None:
    result = invoke("--database-url", url, "baseline", VERSIONS[2])
    again = invoke("--database-url", url, "--format", "json", "baseline", VERSIONS[2])

    assert (result.exit_code, result.stdout) == (
        0,
        f"recorded 3 migrations as applied, up to {VERSIONS[2]}\n",
    )
    assert tracking(engine) == dict.fromkeys(VERSIONS[:3], "applied")
    assert tables(engine) == {"schema_migrations"}
    assert again.exit_code == 1
    assert document(again.stdout)["error"]["type"] == "AlreadyTrackedError"


def test_baseline_json(url: str, examples: Path) -> None:
    result = invoke("--database-url", url, "--format", "json", "baseline", VERSIONS[1])

    assert document(result.stdout) == {
        "ok": True,
        "command": "baseline",
        "versions": VERSIONS[:2],
    }


@pytest.mark.parametrize(
    ("flag", "after", "message"),
    [
        (
            "--applied",
            [("0001", "applied"), ("0002", "applied")],
            "marked 0002 0002_broken.up.sql applied (was failed)",
        ),
        (
            "--rolled-back",
            [("0001", "applied"), ("0002", "rolled_back")],
            "marked 0002 0002_broken.up.sql rolled_back (was failed)",
        ),
        ("--forget", [("0001", "applied")], "forgot 0002 0002_broken.up.sql (was failed)"),
    ],
)
def test_repair_resolves_a_failed_row(
    url: str, tmp_path: Path, engine: Engine, flag: str, after: list[tuple[str, str]], message: str
) -> None:
    write(tmp_path / "migrations", FAILING)
    assert invoke("--database-url", url, "up").exit_code == 1

    result = invoke("--database-url", url, "repair", "0002", flag)

    assert (result.exit_code, result.stdout) == (0, message + "\n")
    assert list(tracking(engine).items()) == after


def test_repair_checksum_realigns_an_edited_file(url: str, tmp_path: Path) -> None:
    folder = write(tmp_path / "migrations", {"0001_a.up.sql": "CREATE TABLE a (id int);\n"})
    assert invoke("--database-url", url, "up").exit_code == 0
    write(folder, {"0001_a.up.sql": "-- explained\nCREATE TABLE a (id int);\n"})
    assert invoke("--database-url", url, "status", "--exit-code").exit_code == 1

    result = invoke("--database-url", url, "--format", "json", "repair", "0001", "--checksum")

    doc = document(result.stdout)
    assert (doc["ok"], doc["command"], doc["version"]) == (True, "repair", "0001")
    assert doc["result"].startswith("recorded checksum of 0001 0001_a.up.sql as sha256:")
    assert invoke("--database-url", url, "status", "--exit-code").exit_code == 0


def test_repair_of_an_unknown_version_is_a_usage_error(url: str, examples: Path) -> None:
    result = invoke("--database-url", url, "repair", "42", "--forget")

    assert result.exit_code == 2
    assert result.stderr == "error: no tracking row for version 42; see `sqlmig status`\n"


# --- the lock (exit 3) -----------------------------------------------------------------


@pytest.fixture
def lock_holder(database_url: str) -> Iterator[int]:
    """Another session holding the migration lock; yields its pid."""
    with psycopg.connect(
        make_url(database_url).render_as_string(hide_password=False), autocommit=True
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(123456789)")
        yield conn.info.backend_pid


def test_a_held_lock_with_no_wait_exits_3_naming_the_holder(
    url: str, examples: Path, lock_holder: int, engine: Engine
) -> None:
    result = invoke("--database-url", url, "--lock-timeout", "0", "up")

    assert result.exit_code == 3
    assert result.stderr.startswith(
        "error: could not take the migration lock (advisory lock 123456789) at once: "
        f"it is held by pid {lock_holder} ("
    )
    assert "waiting" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert tables(engine) <= {"schema_migrations"}


def test_a_held_lock_is_waited_for_then_exits_3(url: str, examples: Path, lock_holder: int) -> None:
    started = time.monotonic()
    result = invoke("--database-url", url, "--lock-timeout", "1", "--format", "json", "up")
    elapsed = time.monotonic() - started

    assert result.exit_code == 3
    assert elapsed >= 1.0
    waiting, error = result.stderr.splitlines()
    assert waiting.startswith(
        f"waiting up to 1s for the migration lock, held by pid {lock_holder} ("
    )
    assert error.startswith("error: could not take the migration lock (advisory lock 123456789) ")
    doc = document(result.stdout)
    assert doc["error"]["type"] == "LockTimeoutError"
    assert doc["error"]["exit_code"] == 3
    assert f"held by pid {lock_holder}" in doc["error"]["message"]


def test_a_lock_released_while_waiting_lets_the_run_proceed(
    url: str, examples: Path, database_url: str, engine: Engine
) -> None:
    holder = psycopg.connect(
        make_url(database_url).render_as_string(hide_password=False), autocommit=True
    )
    holder.execute("SELECT pg_advisory_lock(123456789)")
    release = threading.Timer(0.5, holder.close)
    release.start()
    try:
        result = invoke("--database-url", url, "--lock-timeout", "10", "up")
    finally:
        release.join()

    assert result.exit_code == 0
    assert result.stderr.startswith("waiting up to 10s for the migration lock, held by pid ")
    assert ", after waiting " in result.stdout
    assert tracking(engine) == dict.fromkeys(VERSIONS, "applied")


# --- the database cannot be reached (exit 4) -------------------------------------------


def test_a_database_that_does_not_exist_exits_4(url: str, examples: Path) -> None:
    missing = make_url(url).set(database="sqlmig_no_such_db").render_as_string(hide_password=False)

    result = invoke("--database-url", missing, "status")
    as_json = invoke("--database-url", missing, "--format", "json", "-v", "up")

    assert result.exit_code == 4
    assert result.stderr.startswith("error: database does not exist (server ")
    assert "database 'sqlmig_no_such_db'" in result.stderr
    assert "Traceback" not in result.stderr
    assert as_json.exit_code == 4
    assert document(as_json.stdout)["error"]["type"] == "DatabaseNotFoundError"


# --- precedence and configuration --------------------------------------------------------


def test_option_beats_sqlmig_database_url_beats_database_url_beats_config(
    url: str, examples: Path, tmp_path: Path, engine: Engine
) -> None:
    # Each losing source points at a database that does not exist: using it exits 4.
    wrong = make_url(url).set(database="sqlmig_wrong_db").render_as_string(hide_password=False)
    (tmp_path / "sqlmig.toml").write_text(f"database_url = {wrong!r}\n")

    from_config = invoke("status")
    from_database_url = invoke("status", env={"DATABASE_URL": url})
    from_sqlmig = invoke("status", env={"SQLMIG_DATABASE_URL": url, "DATABASE_URL": wrong})
    from_option = invoke(
        "--database-url", url, "up", env={"SQLMIG_DATABASE_URL": wrong, "DATABASE_URL": wrong}
    )

    assert from_config.exit_code == 4
    assert (from_database_url.exit_code, from_sqlmig.exit_code, from_option.exit_code) == (0, 0, 0)
    assert len(tracking(engine)) == 5


def test_config_in_a_parent_folder_with_dir_relative_to_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "db" / "sql")
    (tmp_path / "sqlmig.toml").write_text('database_url_env = "APP_DB_URL"\ndir = "db/sql"\n')
    deep = tmp_path / "services" / "api"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    result = invoke("up", env={"APP_DB_URL": url})

    assert result.exit_code == 0, result.stderr
    assert tracking(engine) == dict.fromkeys(VERSIONS, "applied")


def test_pyproject_tool_sqlmig_sets_table_and_schema(
    url: str, examples: Path, tmp_path: Path, engine: Engine
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.sqlmig]\ntable = "app_migrations"\nschema = "ops"\n'
    )

    result = invoke("--database-url", url, "up", "--steps", "1")

    assert result.exit_code == 0, result.stderr
    assert tracking(engine, "ops.app_migrations") == {VERSIONS[0]: "applied"}


def test_an_explicit_config_file(url: str, tmp_path: Path, engine: Engine) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "deploy" / "migrations")
    config = tmp_path / "deploy" / "prod.toml"
    config.write_text('table = "prod_migrations"\ndir = "migrations"\n')
    (tmp_path / "sqlmig.toml").write_text('dir = "elsewhere"\n')

    result = invoke("--config", str(config), "--database-url", url, "up")

    assert result.exit_code == 0, result.stderr
    assert tracking(engine, "prod_migrations") == dict.fromkeys(VERSIONS, "applied")


def test_environment_sets_dir_and_table(url: str, tmp_path: Path, engine: Engine) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "sql")

    result = invoke(
        "up", "--steps", "2", env={"DATABASE_URL": url, "SQLMIG_DIR": "sql", "SQLMIG_TABLE": "m"}
    )

    assert result.exit_code == 0, result.stderr
    assert tracking(engine, "m") == dict.fromkeys(VERSIONS[:2], "applied")


def test_quiet_prints_nothing_on_success(url: str, examples: Path) -> None:
    result = invoke("--database-url", url, "-q", "up")

    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_json_up_is_one_document_with_progress_on_stderr(url: str, examples: Path) -> None:
    result = invoke("--database-url", url, "--format", "json", "-v", "up")

    assert result.exit_code == 0
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"], doc["lock_wait_s"]) == (True, "up", 0.0)
    assert [m["version"] for m in doc["migrations"]] == VERSIONS
    assert [m["name"] for m in doc["migrations"]] == NAMES
    assert [m["filename"] for m in doc["migrations"]] == FILENAMES
    assert {m["direction"] for m in doc["migrations"]} == {"up"}
    assert [m["transactional"] for m in doc["migrations"]] == [True, True, True, True, False]
    assert all(isinstance(m["duration_ms"], int) for m in doc["migrations"])
    assert "[5/5]" in result.stderr
    assert "applying 20261101090000 create_accounts" in result.stderr  # the --verbose log


# --- the installed console script ---------------------------------------------------------


def test_console_script_up_then_status_json(url: str, examples: Path, tmp_path: Path) -> None:
    up = script("up", cwd=tmp_path, env={"DATABASE_URL": url})
    status = script("--format", "json", "status", cwd=tmp_path, env={"SQLMIG_DATABASE_URL": url})

    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("applied 5 migrations in ")
    assert "[5/5] 20261105130000 index_active_projects done in " in up.stderr
    assert status.returncode == 0
    doc = document(status.stdout)
    assert doc["counts"] == {"applied": 5}
    assert [m["state"] for m in doc["migrations"]] == ["applied"] * 5
    assert status.stderr == ""


def test_console_script_failing_migration(url: str, tmp_path: Path) -> None:
    write(tmp_path / "migrations", FAILING)

    done = script("--database-url", url, "up", cwd=tmp_path)

    assert done.returncode == 1
    assert "migrations/0002_broken.up.sql:3:8" in done.stderr
    assert "[SQLSTATE 42P01]" in done.stderr
    assert "    |        ^" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_dash_m_sqlmig_runs_a_command(url: str, examples: Path, tmp_path: Path) -> None:
    done = script("-m", "sqlmig", "--database-url", url, "--format", "json", "up", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert len(document(done.stdout)["migrations"]) == 5


def test_console_script_missing_url_exit_2(tmp_path: Path) -> None:
    done = script("status", cwd=tmp_path)

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: no database URL:")
    assert done.stderr.count("\n") == 1


def test_a_progress_bar_on_a_terminal_is_cleared_when_a_migration_fails(
    url: str, tmp_path: Path, engine: Engine
) -> None:
    """The bar (more than 5 migrations, stderr a terminal) stops before the error prints,
    so the error is the last thing on the screen."""
    import pty

    files = {f"000{i}_t{i}.up.sql": f"CREATE TABLE t{i} (id int);\n" for i in range(1, 7)}
    files["0007_broken.up.sql"] = "SELECT 1;\nCREATE TABLE t1 (id int);\n"
    write(tmp_path / "migrations", files)
    leader, follower = pty.openpty()
    clean = clean_environ()
    process = subprocess.Popen(
        [str(SCRIPT), "--database-url", url, "up"],
        cwd=tmp_path,
        env={**clean, "TERM": "xterm", "COLUMNS": "100"},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        screen += chunk
    os.close(leader)

    assert process.wait(timeout=60) == 1
    text_out = screen.decode("utf-8", "replace")
    after_error = text_out[text_out.index("error: ") :]
    assert 'relation "t1" already exists' in after_error
    assert "migrating" in text_out  # the bar was shown
    assert "migrating" not in after_error  # and gone before the error
    assert list(tracking(engine).items())[-1] == ("0007", "failed")

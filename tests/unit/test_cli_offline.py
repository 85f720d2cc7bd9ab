"""The command line without a database: usage errors, files, `new`, `validate`, start-up.

Every invocation goes through `invoke`, which checks that the sentinel password
never reaches stdout or stderr.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from helpers import SENTINEL, document, invoke

from alembic_compat.cli import FLAGS as ALEMBIC_FLAGS
from sqlmig import __version__
from sqlmig.clikit import FLAGS, in_flags
from sqlmig.errors import StateError, UsageError

pytestmark = pytest.mark.usefixtures("clean_environment")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "migrations"
NO_URL = (
    "error: no database URL: pass --database-url, set SQLMIG_DATABASE_URL or DATABASE_URL, "
    "or name the variable that holds it with database_url_env in sqlmig.toml\n"
)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- version, help, start-up ---------------------------------------------------


def test_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0
    assert result.stdout == f"sqlmig {__version__}\n"


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = invoke("--help")

    assert result.exit_code == 0
    for command in ("new", "up", "down", "redo", "status", "validate", "history", "baseline"):
        assert f"  {command} " in result.stdout
    assert "repair" in result.stdout
    flat = " ".join(result.stdout.split())
    assert (
        "Exit codes: 0 success; 1 a migration or a check failed; 2 usage or configuration" in flat
    )
    assert "4 the database could not be reached" in flat


def test_no_command_shows_the_help_as_a_usage_error() -> None:
    result = invoke()

    assert result.exit_code == 2
    assert "Usage:" in result.stdout + result.stderr


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["up", "--help"]])
def test_help_and_version_import_neither_sqlalchemy_nor_psycopg(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from sqlmig.cli import app\n"
        "try:\n"
        f"    app({argv!r}, prog_name='sqlmig')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg'))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr


def test_python_dash_m_sqlmig_version_imports_no_driver(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sqlmig", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0
    assert done.stdout == f"sqlmig {__version__}\n"
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert "sqlmig" in imported
    assert "sqlalchemy" not in imported
    assert "psycopg" not in imported


def test_a_command_reads_its_options_without_pydantic(tmp_path: Path) -> None:
    """typer >= 0.29 would import pydantic to read them: tens of milliseconds a command."""
    code = (
        "import sys\n"
        "from sqlmig.cli import app\n"
        "try:\n"
        f"    app(['--dir', {str(tmp_path)!r}, '--format', 'json', '--lock-timeout', '5',"
        " '--config', 'none.toml', 'new', 'x', '--sequential'], prog_name='sqlmig')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "assert 'pydantic' not in sys.modules\n"
    )
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "0001_x.up.sql").exists()


def test_console_script_help_and_version() -> None:
    script = str(Path(sys.executable).parent / "sqlmig")

    helped = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)

    assert helped.returncode == 0
    assert helped.stdout.startswith("Usage: sqlmig [OPTIONS] COMMAND [ARGS]...")
    assert "Exit codes:" in helped.stdout
    assert (version.returncode, version.stdout, version.stderr) == (
        0,
        f"sqlmig {__version__}\n",
        "",
    )


# --- usage errors (exit 2) ------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["up"], ["down"], ["redo"], ["status"], ["history"], ["baseline", "1"]]
)
def test_a_missing_url_is_one_clear_line_and_exit_2(command: list[str]) -> None:
    result = invoke(*command)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == NO_URL


def test_a_missing_url_in_json_is_one_error_document() -> None:
    result = invoke("--format", "json", "up")

    assert result.exit_code == 2
    assert document(result.stdout) == {
        "ok": False,
        "command": "up",
        "error": {"type": "UsageError", "exit_code": 2, "message": NO_URL[7:-1]},
        "migrations": [],
    }
    assert result.stderr == NO_URL


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lock-timeout", "-1", "up"], "'--lock-timeout': -1.0 is not in the range x>=0."),
        (["--lock-timeout", "soon", "up"], "'--lock-timeout': 'soon' is not a valid float range."),
        (["--statement-timeout", "-5", "up"], "'--statement-timeout': -5.0 is not in the range"),
        (["up", "--steps", "abc"], "'--steps': 'abc' is not a valid int range."),
        (["down", "--steps", "-1"], "'--steps': -1 is not in the range x>=0."),
        (["--format", "xml", "status"], "'--format': 'xml' is not one of 'text', 'json'."),
    ],
)
def test_a_bad_option_value_is_a_usage_error(args: list[str], message: str) -> None:
    result = invoke("--database-url", f"postgresql://u:{SENTINEL}@127.0.0.1:1/db", *args)

    assert result.exit_code == 2
    # click's wording on every typer (0.29 would say pydantic's: sqlmig.cliparams)
    assert f"Invalid value for {message}" in result.stderr
    assert result.stdout == ""


def test_a_statement_timeout_postgresql_would_refuse_is_a_usage_error() -> None:
    result = invoke(
        "--database-url", "postgresql://127.0.0.1:1/db", "--statement-timeout", "1e10", "up"
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "error: statement-timeout must be at most 2147483 seconds (PostgreSQL's limit), not 1e+10\n"
    )


def test_an_unknown_option_is_a_usage_error() -> None:
    result = invoke("up", "--force")

    assert result.exit_code == 2
    assert "No such option: --force" in result.stderr


def sqlmig_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a deploy script runs it."""
    script = str(Path(sys.executable).parent / "sqlmig")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "command", "message"),
    [
        (["--format", "json", "up", "--force"], "up", "No such option: --force"),
        (["--format=json", "new"], "new", "Missing argument 'name'."),
        (
            ["--format", "json", "--lock-timeout", "soon", "up"],
            "up",
            "Invalid value for '--lock-timeout'",
        ),
        (["--format", "json"], "", "Missing command."),
    ],
)
def test_a_parse_error_in_json_mode_is_one_error_document(
    args: list[str], command: str, message: str
) -> None:
    done = sqlmig_process(*args)

    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["ok"] is False
    assert error["command"] == command
    assert error["error"]["type"] == "UsageError"
    assert error["error"]["exit_code"] == 2
    assert message in error["error"]["message"]
    assert message in done.stderr  # the usage text still goes to the terminal


def test_a_parse_error_in_text_mode_keeps_stdout_empty() -> None:
    done = sqlmig_process("up", "--force")

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("Usage: sqlmig up [OPTIONS]")
    assert done.stderr.endswith("Error: No such option: --force\n")


def test_an_unknown_config_key_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "sqlmig.toml").write_text('database = "x"\n')

    result = invoke("status")

    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: {tmp_path / 'sqlmig.toml'}: unknown setting 'database';"
    )
    assert result.stderr.count("\n") == 1


def test_a_config_naming_an_unset_variable_says_so_when_a_url_is_needed(tmp_path: Path) -> None:
    (tmp_path / "sqlmig.toml").write_text('database_url_env = "APP_DB_URL"\n')

    result = invoke("up")

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'sqlmig.toml'} says the database URL is in $APP_DB_URL, "
        "but it is not set\n"
    )


def test_a_config_naming_an_unset_variable_does_not_stop_new(tmp_path: Path) -> None:
    (tmp_path / "sqlmig.toml").write_text('database_url_env = "APP_DB_URL"\ndir = "sql"\n')

    result = invoke("new", "--sequential", "add users")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"{tmp_path / 'sql' / '0001_add_users.up.sql'}\n"
        f"{tmp_path / 'sql' / '0001_add_users.down.sql'}\n"
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_a_malformed_url_is_a_usage_error_that_hides_the_password(
    fmt: str, verbose: list[str]
) -> None:
    url = f"postgresql://u:{SENTINEL}@host:notaport/db"

    result = invoke("--database-url", url, "--format", fmt, *verbose, "up")

    assert result.exit_code == 2
    assert result.stderr.endswith(
        "error: malformed database URL 'postgresql://u:***@host:notaport/db': expected "
        "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE\n"
    )
    if fmt == "json":
        assert document(result.stdout)["error"]["type"] == "InvalidURLError"


def test_a_url_of_another_database_is_a_usage_error() -> None:
    result = invoke("--database-url", f"mysql://u:{SENTINEL}@h/db", "status")

    assert result.exit_code == 2
    assert "unsupported database URL scheme 'mysql' in mysql://u:***@h/db" in result.stderr


def test_down_all_without_yes_and_no_terminal_is_a_usage_error() -> None:
    result = invoke("--database-url", f"postgresql://u:{SENTINEL}@127.0.0.1:1/db", "down", "--all")

    assert result.exit_code == 2
    assert result.stderr == "error: down --all rolls back every migration: pass --yes to confirm\n"


def test_down_with_two_ways_to_choose_is_a_usage_error() -> None:
    result = invoke(
        "--database-url", "postgresql://127.0.0.1:1/db", "down", "--steps", "1", "--all"
    )

    assert result.exit_code == 2
    assert result.stderr == "error: give only one of --steps, --to and --all\n"


@pytest.mark.parametrize("flags", [[], ["--applied", "--forget"], ["--checksum", "--rolled-back"]])
def test_repair_needs_exactly_one_action(flags: list[str]) -> None:
    result = invoke("--database-url", "postgresql://127.0.0.1:1/db", "repair", "0001", *flags)

    assert result.exit_code == 2
    assert result.stderr == (
        "error: give exactly one of --applied, --rolled-back, --forget, --checksum\n"
    )


def test_a_missing_migrations_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("--dir", "nowhere", "validate")
    as_json = invoke("--dir", "nowhere", "--format", "json", "validate")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: migrations directory nowhere does not exist; create it or pass --dir DIR\n"
    )
    assert document(as_json.stdout)["error"]["message"] == result.stderr[7:-1]


# --- library options as flags -----------------------------------------------------


def test_an_error_shows_the_flags_where_the_library_names_its_options() -> None:
    drift = StateError("drifted", ["0001 a"], "Pass allow_drift=True.", options=("allow_drift",))
    named = UsageError("pass directory=DIR; table=NAME is not named", options=("directory",))
    quoting = UsageError("UPDATE t SET target=5, allow_drift=True")  # names no option
    mid_sentence = UsageError("or pass allow_drift=True to go on", options=("allow_drift",))

    assert in_flags(drift) == "drifted; nothing was run:\n  0001 a\nPass --allow-drift."
    assert in_flags(named) == "pass --dir DIR; table=NAME is not named"
    assert in_flags(quoting) == str(quoting)
    assert in_flags(mid_sentence) == "or pass --allow-drift to go on"


def flags_of(app: typer.Typer) -> set[str]:
    group = typer.main.get_command(app)
    commands = [group, *getattr(group, "commands", {}).values()]
    return {flag for command in commands for param in command.params for flag in param.opts}


def test_every_flag_the_library_options_map_to_is_a_flag_of_the_command_line() -> None:
    from alembic_compat.cli import app as alembic_app
    from sqlmig.cli import app

    assert set(FLAGS.values()) <= flags_of(app)
    # The alembic commands run under sqlmig's global options.
    assert set(ALEMBIC_FLAGS.values()) <= flags_of(app) | flags_of(alembic_app)


# --- exit 4 without a server ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_closed_port_exits_4_with_connection_refused(fmt: str, tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "migrations")
    port = closed_port()
    url = f"postgresql://u:{SENTINEL}@127.0.0.1:{port}/db"

    result = invoke("--database-url", url, "--format", fmt, "up")

    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"error: connection refused (server 127.0.0.1:{port}, database 'db')"
    )
    assert result.stderr.endswith("Check that PostgreSQL is running and listening there.\n")
    assert "Traceback" not in result.stderr
    if fmt == "json":
        error = document(result.stdout)["error"]
        assert (error["type"], error["exit_code"]) == ("RefusedConnectionError", 4)
        assert error["message"] == result.stderr[7:-1]
    else:
        assert result.stdout == ""


def test_a_closed_port_with_verbose_shows_a_traceback_but_no_password() -> None:
    url = f"postgresql://u:{SENTINEL}@127.0.0.1:{closed_port()}/db"

    result = invoke("--database-url", url, "-v", "status")

    assert result.exit_code == 4
    assert "Traceback (most recent call last)" in result.stderr
    assert "RefusedConnectionError" in result.stderr


# --- validate without a database ---------------------------------------------------


def test_validate_without_a_url_checks_the_files_only(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "migrations")

    text = invoke("validate")
    as_json = invoke("--format", "json", "validate")

    assert (text.exit_code, text.stdout) == (0, "ok: 5 migrations are valid\n")
    assert as_json.exit_code == 0
    assert document(as_json.stdout) == {
        "ok": True,
        "command": "validate",
        "migrations": 5,
        "checked_database": False,
        "notes": [],
    }


def _bad_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "0001_ok.up.sql").write_text("CREATE TABLE t (id int);\n")
    (folder / "0002_empty.up.sql").write_text("\n")
    (folder / "notes.sql").write_text("SELECT 1;\n")
    (folder / "0003_orphan.down.sql").write_text("DROP TABLE t;\n")


def test_validate_lists_every_problem_in_bad_files_and_exits_1(tmp_path: Path) -> None:
    _bad_files(tmp_path / "migrations")

    result = invoke("validate")

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "error: 3 problems in the migration files; nothing was run. Fix the files and run again:"
    )
    assert lines[1] == (
        "  migrations/0002_empty.up.sql: the up script is empty (0 bytes or only blank lines); "
        "write its SQL, or a comment saying why it has none (it is then recorded without "
        "running anything)"
    )
    assert lines[2].startswith(
        "  migrations/0003_orphan.down.sql: down script without its up script 0003_orphan.up.sql"
    )
    assert lines[3].startswith("  migrations/notes.sql: looks like a migration")
    assert len(lines) == 4
    assert "Traceback" not in result.stderr


def test_validate_bad_files_in_json(tmp_path: Path) -> None:
    _bad_files(tmp_path / "migrations")

    result = invoke("--format", "json", "validate")

    assert result.exit_code == 1
    doc = document(result.stdout)
    assert (doc["ok"], doc["command"], doc["migrations"]) == (False, "validate", [])
    assert doc["error"]["type"] == "MigrationFileError"
    assert doc["error"]["exit_code"] == 1
    assert [p.split(":")[0] for p in doc["error"]["problems"]] == [
        "migrations/0002_empty.up.sql",
        "migrations/0003_orphan.down.sql",
        "migrations/notes.sql",
    ]


def test_validate_reports_transaction_control_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_a.up.sql").write_text("CREATE TABLE t (id int);\nCOMMIT;\nSELECT 1;\n")
    (folder / "0002_b.up.sql").write_text("BEGIN;\nSELECT 1;\nCOMMIT;\nSELECT 2;\nCOMMIT;\n")

    result = invoke("validate")

    assert result.exit_code == 1
    assert "  migrations/0001_a.up.sql:2: COMMIT inside a migration" in result.stderr
    assert "  migrations/0002_b.up.sql:3: COMMIT inside the script's own BEGIN" in result.stderr
    assert "0002_b.up.sql:1" not in result.stderr


def test_an_error_shows_a_traceback_only_with_verbose(tmp_path: Path) -> None:
    _bad_files(tmp_path / "migrations")

    quiet = invoke("validate")
    verbose = invoke("--verbose", "validate")

    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "sqlmig.errors.MigrationFileError" in verbose.stderr
    assert verbose.exit_code == 1


def test_verbose_leaves_no_log_handler_behind(tmp_path: Path) -> None:
    logger = logging.getLogger("sqlmig")
    before = (list(logger.handlers), logger.level)

    invoke("-v", "--dir", str(tmp_path), "validate")
    invoke("-v", "--dir", str(tmp_path), "validate")

    assert (list(logger.handlers), logger.level) == before


# --- new -----------------------------------------------------------------------------


def test_new_creates_a_timestamped_pair_and_prints_the_paths(tmp_path: Path) -> None:
    result = invoke("--dir", "db", "new", "add users")

    assert result.exit_code == 0, result.stderr
    created = sorted((tmp_path / "db").iterdir())
    assert [p.name[14:] for p in created] == ["_add_users.down.sql", "_add_users.up.sql"]
    version = created[0].name[:14]
    assert version.isdigit() and version.startswith("20")
    assert result.stdout == f"db/{version}_add_users.up.sql\ndb/{version}_add_users.down.sql\n"


def test_new_sequential_pads_like_the_existing_files(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_first.up.sql").write_text("SELECT 1;\n")

    first = invoke("new", "--sequential", "second")
    second = invoke("new", "--sequential", "--single-file", "third")

    assert first.exit_code == second.exit_code == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        "001_first.up.sql",
        "002_second.down.sql",
        "002_second.up.sql",
        "003_third.sql",
    ]
    text = (folder / "003_third.sql").read_text()
    assert "-- migrate:up" in text and "-- migrate:down" in text
    assert text.index("-- migrate:up") < text.index("-- migrate:down")


def test_new_sequential_in_an_empty_directory_starts_at_0001(tmp_path: Path) -> None:
    result = invoke("--format", "json", "new", "--sequential", "init")

    assert result.exit_code == 0
    assert document(result.stdout) == {
        "ok": True,
        "command": "new",
        "files": ["migrations/0001_init.up.sql", "migrations/0001_init.down.sql"],
    }


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("../../etc/evil", "etc_evil"),
        ("a/b", "a_b"),
        ("/abs/path", "abs_path"),
        ("Crème brûlée", "creme_brulee"),
    ],
)
def test_new_never_writes_outside_the_directory(tmp_path: Path, name: str, slug: str) -> None:
    work = tmp_path / "work"
    (work / "migrations").mkdir(parents=True)

    result = invoke("--dir", str(work / "migrations"), "new", "--sequential", name)

    assert result.exit_code == 0, result.stderr
    everything = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert everything == [
        "work",
        "work/migrations",
        f"work/migrations/0001_{slug}.down.sql",
        f"work/migrations/0001_{slug}.up.sql",
    ]


@pytest.mark.parametrize("name", ["", "..", "../..", "/", "日本語"])
def test_new_with_a_name_without_letters_or_digits_exits_2_and_writes_nothing(
    tmp_path: Path, name: str
) -> None:
    result = invoke("new", name)

    assert result.exit_code == 2
    assert result.stderr == (
        f"error: migration name {name!r} has no ASCII letters or digits; "
        "use something like 'add_users'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_new_with_a_file_as_directory_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "migrations").write_text("not a folder\n")

    result = invoke("new", "x")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot create the migrations directory migrations: File exists; "
        "pass another one as --dir DIR\n"
    )
    assert (tmp_path / "migrations").read_text() == "not a folder\n"


def test_new_with_a_file_as_directory_and_a_malformed_url_has_no_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "migrations").write_text("not a folder\n")

    result = invoke("new", "x", env={"DATABASE_URL": f"postgresql://u:{SENTINEL}@h:bad/db"})

    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_validate_verbose_says_what_it_made_of_wrapped_and_comment_only_scripts(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_a.up.sql").write_text("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n")
    (folder / "0002_keep_numbering.up.sql").write_text("-- intentionally empty\n")

    quiet = invoke("validate")
    verbose = invoke("-v", "validate")
    as_json = document(invoke("--format", "json", "validate").stdout)

    assert quiet.stdout == "ok: 2 migrations are valid\n"
    assert verbose.stdout.splitlines()[1:] == [
        "notes:",
        "  0001 0001_a.up.sql: up: its own BEGIN ... COMMIT (lines 1-3) is recognised: the "
        "statements between run as sqlmig's one transaction, with the tracking row",
        "  0002 0002_keep_numbering.up.sql: up: no SQL, only comments: runs nothing and is "
        "recorded",
    ]
    assert [(n["version"], len(n["notes"])) for n in as_json["notes"]] == [
        ("0001", 1),
        ("0002", 1),
    ]

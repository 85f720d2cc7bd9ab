"""The pytest plugin, run by pytester on sample projects written here: the five checks,
each failure's message, the fixtures' isolation, and a run that never turned it on."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import NoReturn

import alembic.autogenerate
import pytest
import sqlalchemy.dialects.postgresql
from helpers import CLEARED_ENV

import alembic_compat.compare
import sqlmig.testing.fixtures
import sqlmig.testing.suite
from sqlmig.testing.pgsource import ENV_URL, INSTALL_HINT, NoDatabaseError

# pytester unloads what an in-process run imported; loaded here, these stay loaded, so
# no run registers SQLAlchemy's functions or Alembic's comparators a second time.
PRELOADED = (
    alembic.autogenerate,
    alembic_compat.compare,
    sqlalchemy.dialects.postgresql,
    sqlmig.testing.fixtures,
    sqlmig.testing.suite,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["pytester"]

ON = '[tool.pytest.ini_options]\nsqlmig = true\nsqlmig_metadata = "models:metadata"\n'

# Every down undoes its up; 0003 has no down and is applied only.
REVERSIBLE = {
    "0001_create_tasks.up.sql": """
        CREATE TYPE task_status AS ENUM ('todo', 'done');
        CREATE TABLE tasks (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            title text NOT NULL,
            status task_status NOT NULL DEFAULT 'todo'
        );
        COMMENT ON TABLE tasks IS 'work to do';
    """,
    "0001_create_tasks.down.sql": "DROP TABLE tasks;\nDROP TYPE task_status;\n",
    "0002_touch_and_index.up.sql": """
        CREATE INDEX tasks_title_idx ON tasks (title);
        ALTER TABLE tasks ADD COLUMN updated_at timestamptz;
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
        CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks
            FOR EACH ROW EXECUTE FUNCTION touch();
        CREATE VIEW open_tasks AS SELECT id, title FROM tasks WHERE status = 'todo';
        GRANT SELECT ON open_tasks TO PUBLIC;
    """,
    "0002_touch_and_index.down.sql": """
        DROP VIEW open_tasks;
        DROP TRIGGER tasks_touch ON tasks;
        DROP FUNCTION touch();
        ALTER TABLE tasks DROP COLUMN updated_at;
        DROP INDEX tasks_title_idx;
    """,
    "0003_seed.up.sql": "INSERT INTO tasks (title) VALUES ('write the migrations');\n",
}

MODELS = """
    from sqlalchemy import BigInteger, Column, DateTime, Enum, Identity, Index, MetaData
    from sqlalchemy import Table, Text

    metadata = MetaData()
    Table(
        "tasks",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("title", Text, nullable=False),
        Column(
            "status", Enum("todo", "done", name="task_status"), nullable=False,
            server_default="todo",
        ),
        Column("updated_at", DateTime(timezone=True)),
        Index("tasks_title_idx", "title"),
        comment="work to do",
    )
"""

# Tests of the sample project's own: the fixtures, in the order they run.
FIXTURE_TESTS = """
    from sqlalchemy import text

    def count(engine, sql):
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def test_the_session_engine_is_migrated(sqlmig_engine, sqlmig_migrator):
        assert count(sqlmig_engine, "SELECT count(*) FROM tasks") == 1
        assert {s.state.value for s in sqlmig_migrator.status()} == {"applied"}

    def test_a_clean_database_can_be_changed(sqlmig_clean_database):
        with sqlmig_clean_database.begin() as conn:
            conn.execute(text("INSERT INTO tasks (title) VALUES ('mine')"))
            conn.execute(text("CREATE TABLE scratch (id int)"))
        assert count(sqlmig_clean_database, "SELECT count(*) FROM tasks") == 2

    def test_the_next_one_sees_none_of_it(sqlmig_clean_database, sqlmig_engine):
        for engine in (sqlmig_clean_database, sqlmig_engine):
            assert count(engine, "SELECT count(*) FROM tasks") == 1
            assert count(engine, "SELECT to_regclass('scratch')") is None

    def test_the_session_database_url_is_the_engines(sqlmig_database_url, sqlmig_engine):
        assert sqlmig_engine.url.database in sqlmig_database_url
"""


@pytest.fixture
def project(pytester: pytest.Pytester, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty sample project whose tests use the outer session's server."""
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV_URL, pg_admin_url)
    (pytester.path / "migrations").mkdir()
    return pytester.path


def write(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip())


def migrations(files: dict[str, str]) -> dict[str, str]:
    return {f"migrations/{name}": content for name, content in files.items()}


def failure_of(result: pytest.RunResult, test: str) -> str:
    """The text pytest printed for one failed test."""
    text = result.stdout.str()
    start = text.index(f"_ {test} _")
    end = min(
        (i for i in (text.find("\n____", start + 1), text.find("\n====", start)) if i != -1),
    )
    return text[start:end]


def test_a_project_whose_downs_undo_their_ups_passes_every_check(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, {"pyproject.toml": ON, "models.py": MODELS, "tests/test_app.py": FIXTURE_TESTS})
    write(project, migrations(REVERSIBLE))
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(
        [
            "sqlmig::test_files_validate PASSED*",
            "sqlmig::test_upgrade_from_empty PASSED*",
            "sqlmig::test_stairway PASSED*",
            "sqlmig::test_down_leaves_no_trace PASSED*",
            "sqlmig::test_models_match PASSED*",
            "tests/test_app.py::test_the_session_engine_is_migrated PASSED*",
        ]
    )


def test_a_down_that_forgets_things_is_named_by_each_trace(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, {"pyproject.toml": ON.replace("sqlmig_metadata", "# sqlmig_metadata")})
    write(
        project,
        migrations(
            {
                "0001_create_tasks.up.sql": """
                    CREATE TYPE task_status AS ENUM ('todo', 'done');
                    CREATE TABLE tasks (id int PRIMARY KEY, title text, status task_status);
                """,
                "0001_create_tasks.down.sql": "DROP TABLE tasks;\nDROP TYPE task_status;\n",
                # Its up can run again over what its down leaves: only the trace check sees it.
                "0002_forgetful.up.sql": """
                    CREATE INDEX IF NOT EXISTS tasks_title_idx ON tasks (title);
                    ALTER TABLE tasks ALTER COLUMN title SET DEFAULT 'untitled';
                    CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
                        AS $$ BEGIN RETURN NEW; END $$;
                    ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'archived';
                """,
                "0002_forgetful.down.sql": "-- forgets all of it\nSELECT 1;\n",
            }
        ),
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    message = failure_of(result, "test_down_leaves_no_trace")
    assert (
        "the down of 0002 (forgetful) leaves a trace: 4 differences between the schema "
        "before its up and the schema after its down:"
    ) in message
    for line in (
        "column public.tasks.title: text NULL before, text NULL DEFAULT 'untitled'::text after",
        "function public.touch(): not there before, there after",
        "index public.tasks_title_idx: not there before, there after "
        "(CREATE INDEX tasks_title_idx ON public.tasks USING btree (title))",
        "type public.task_status: enum ('todo', 'done') before, "
        "enum ('todo', 'done', 'archived') after",
    ):
        assert f"\n  {line}\n" in message + "\n", line
    assert "0001" not in message


def test_a_failing_down_is_named_by_the_stairway(project: Path, pytester: pytest.Pytester) -> None:
    write(project, {"pyproject.toml": ON})
    write(
        project,
        migrations(
            {
                "0001_create_tasks.up.sql": "CREATE TABLE tasks (id int);\n",
                "0001_create_tasks.down.sql": "DROP TABLE tasks;\n",
                "0002_add_notes.up.sql": "CREATE TABLE notes (id int);\n",
                "0002_add_notes.down.sql": "DROP TABLE note;\n",
            }
        ),
    )
    result = pytester.runpytest("-k", "stairway")
    result.assert_outcomes(failed=1, deselected=4)
    message = failure_of(result, "test_stairway")
    assert "0002 (add_notes): down failed: migration 0002 (down) failed at " in message
    assert '0002_add_notes.down.sql:1:1: table "note" does not exist [SQLSTATE 42P01]' in message


def test_a_down_that_leaves_what_its_up_creates_fails_the_stairway_up_again(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, {"pyproject.toml": ON})
    write(
        project,
        migrations(
            {
                "0001_create_tasks.up.sql": "CREATE TABLE tasks (id int);\n",
                "0001_create_tasks.down.sql": "SELECT 1;\n",
            }
        ),
    )
    result = pytester.runpytest("-k", "stairway or trace")
    result.assert_outcomes(failed=2, deselected=3)
    assert (
        "0001 (create_tasks): up after its down (does the down leave something behind?) failed"
    ) in failure_of(result, "test_stairway")
    trace = failure_of(result, "test_down_leaves_no_trace")
    assert "\n  table public.tasks: not there before, there after\n" in trace
    assert "(stopped there: 0001 (create_tasks): up after its down" in trace


def test_models_that_lack_a_column_are_named(project: Path, pytester: pytest.Pytester) -> None:
    write(project, {"pyproject.toml": ON, "models.py": MODELS.replace('Column("updated_at"', "#")})
    write(project, migrations(REVERSIBLE))
    result = pytester.runpytest("-k", "models")
    result.assert_outcomes(failed=1, deselected=4)
    message = failure_of(result, "test_models_match")
    assert (
        "the schema migrated up to 0003 (seed) and the models differ in 1 way:\n"
        "  column tasks.updated_at: in the database, not in the models (TIMESTAMP WITH TIME "
        "ZONE NULL)"
    ) in message


def test_files_that_do_not_validate_fail_the_first_check(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, {"pyproject.toml": ON})
    write(project, migrations({"0001_bad.up.sql": "SELECT 'unterminated;\n"}))
    result = pytester.runpytest("-k", "validate")
    result.assert_outcomes(failed=1, deselected=4)
    assert "0001_bad.up.sql:1: unterminated quoted string" in failure_of(
        result, "test_files_validate"
    )


def test_checks_are_skipped_by_name_and_models_without_a_metadata_path(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(
        project,
        {
            "pyproject.toml": "[tool.pytest.ini_options]\nsqlmig = true\n"
            'sqlmig_skip = ["stairway", "test_down_leaves_no_trace"]\n'
        },
    )
    write(project, migrations(REVERSIBLE))
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * stairway is in sqlmig_skip",
            "SKIPPED * down_leaves_no_trace is in sqlmig_skip",
            "SKIPPED * no models to compare: set sqlmig_metadata = package.module:attribute",
        ]
    )


def test_an_unknown_check_name_is_a_usage_error(project: Path, pytester: pytest.Pytester) -> None:
    write(project, {"pyproject.toml": ON + 'sqlmig_skip = ["stairways"]\n'})
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*sqlmig_skip names no check: stairways; the checks are files_validate, "
            "upgrade_from_empty, stairway, down_leaves_no_trace, models_match"
        ]
    )


def test_the_option_turns_it_on_and_named_files_leave_the_checks_out(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, {"tests/test_app.py": FIXTURE_TESTS})
    write(project, migrations(REVERSIBLE))
    pytester.runpytest("--sqlmig").assert_outcomes(passed=8, skipped=1)
    pytester.runpytest("--sqlmig", "tests/test_app.py").assert_outcomes(passed=4)


def test_directory_table_and_schema_come_from_the_sqlmig_config(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(
        project,
        {
            "pyproject.toml": ON + '\n[tool.sqlmig]\ndir = "db/migrations"\n'
            'table = "applied"\nschema = "bookkeeping"\n',
            "models.py": MODELS,
            "tests/test_app.py": """
                def test_tracked_in_the_configured_table(sqlmig_migrator):
                    assert sqlmig_migrator.tracker.display_name == "bookkeeping.applied"
                    assert len(sqlmig_migrator.history()) == 3
            """,
        },
    )
    write(project, {f"db/{name}": content for name, content in migrations(REVERSIBLE).items()})
    pytester.runpytest().assert_outcomes(passed=6)


def test_installed_but_not_turned_on_it_changes_nothing(
    project: Path, pytester: pytest.Pytester
) -> None:
    write(project, migrations(REVERSIBLE))
    write(
        project,
        {
            "tests/test_app.py": """
                import sys

                def test_only_this(request):
                    assert request.config.pluginmanager.hasplugin("sqlmig")  # loaded...
                    assert "sqlmig.testing.fixtures" not in sys.modules  # ...and inert
                    assert "sqlalchemy" not in sys.modules
            """
        },
    )
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*plugins:*sqlmig*", "*collected 1 item"])
    result.stdout.no_fnmatch_line("*sqlmig::*")
    fixtures = pytester.runpytest_subprocess("--fixtures")
    fixtures.stdout.no_fnmatch_line("*sqlmig_engine*")


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_any_postgresql_the_tests_skip_saying_what_to_install_or_fail_in_ci(
    project: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    def nothing(env: object) -> NoReturn:
        raise NoDatabaseError(f"no PostgreSQL for the tests:\n  ...\nTo fix: {INSTALL_HINT}.")

    monkeypatch.setattr(sqlmig.testing.fixtures, "choose_source", nothing)  # the run's own
    monkeypatch.setenv("CI", ci)
    write(project, {"pyproject.toml": ON, "tests/test_app.py": FIXTURE_TESTS})
    write(project, migrations(REVERSIBLE))
    result = pytester.runpytest("-rsE")
    if ci:
        result.assert_outcomes(passed=1, errors=8)  # files_validate needs no database
        result.stdout.fnmatch_lines(["*CI=true and no PostgreSQL for the tests:*"])
    else:
        result.assert_outcomes(passed=1, skipped=8)
    result.stdout.fnmatch_lines([f"*{INSTALL_HINT[:60]}*"])

"""Where the command line's settings come from: option, environment, file, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlmig.config import Settings, find_config, resolve
from sqlmig.errors import UsageError


def given(**options: object) -> dict[str, object]:
    """What the command line said: None for every option not typed."""
    keys = (
        "database_url",
        "dir",
        "table",
        "schema",
        "lock_timeout",
        "statement_timeout",
        "lock_strategy",
        "lock_ttl",
        "lock_heartbeat",
    )
    return {key: options.get(key) for key in keys}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    settings = resolve(given(), {}, tmp_path)

    assert settings == Settings(
        database_url=None,
        dir="migrations",
        table="schema_migrations",
        schema=None,
        lock_timeout=60.0,
        statement_timeout=None,
    )
    assert settings.config_file is None


def test_option_beats_sqlmig_database_url_beats_database_url_beats_file(tmp_path: Path) -> None:
    write(tmp_path / "sqlmig.toml", 'database_url = "postgresql://file/db"\n')
    env = {
        "SQLMIG_DATABASE_URL": "postgresql://sqlmig-env/db",
        "DATABASE_URL": "postgresql://env/db",
    }

    option = resolve(given(database_url="postgresql://option/db"), env, tmp_path)
    sqlmig_env = resolve(given(), env, tmp_path)
    database_url = resolve(given(), {"DATABASE_URL": "postgresql://env/db"}, tmp_path)
    file = resolve(given(), {}, tmp_path)

    assert option.database_url == "postgresql://option/db"
    assert sqlmig_env.database_url == "postgresql://sqlmig-env/db"
    assert database_url.database_url == "postgresql://env/db"
    assert file.database_url == "postgresql://file/db"


def test_an_empty_sqlmig_database_url_falls_back_to_database_url(tmp_path: Path) -> None:
    env = {"SQLMIG_DATABASE_URL": "", "DATABASE_URL": "postgresql://env/db"}

    assert resolve(given(), env, tmp_path).database_url == "postgresql://env/db"


def test_every_setting_follows_option_then_environment_then_file(tmp_path: Path) -> None:
    write(
        tmp_path / "sqlmig.toml",
        'dir = "from_file"\ntable = "file_table"\nschema = "file_schema"\n'
        "lock_timeout = 5\nstatement_timeout = 6\nmigration_lock_timeout = 7\n",
    )
    env = {
        "SQLMIG_DIR": "from_env",
        "SQLMIG_TABLE": "env_table",
        "SQLMIG_SCHEMA": "env_schema",
        "SQLMIG_LOCK_TIMEOUT": "8",
        "SQLMIG_STATEMENT_TIMEOUT": "9.5",
    }

    from_file = resolve(given(), {}, tmp_path)
    from_env = resolve(given(), env, tmp_path)
    from_options = resolve(
        given(
            dir="cli",
            table="cli_table",
            schema="cli_schema",
            lock_timeout=0.0,
            statement_timeout=1.0,
        ),
        env,
        tmp_path,
    )

    assert (from_file.dir, from_file.table, from_file.schema) == (
        str(tmp_path / "from_file"),
        "file_table",
        "file_schema",
    )
    assert (from_file.lock_timeout, from_file.statement_timeout) == (5, 6)
    assert from_file.migration_lock_timeout == 7
    assert (from_env.dir, from_env.table, from_env.schema) == (
        "from_env",
        "env_table",
        "env_schema",
    )
    assert (from_env.lock_timeout, from_env.statement_timeout) == (8.0, 9.5)
    assert (from_options.dir, from_options.table, from_options.schema) == (
        "cli",
        "cli_table",
        "cli_schema",
    )
    assert (from_options.lock_timeout, from_options.statement_timeout) == (0.0, 1.0)


def test_config_is_found_in_a_parent_directory(tmp_path: Path) -> None:
    config = write(tmp_path / "sqlmig.toml", 'dir = "db/migrations"\n')
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)

    settings = resolve(given(), {}, deep)

    assert settings.config_file == config
    assert settings.dir == str(tmp_path / "db" / "migrations")


def test_dir_in_a_config_file_is_relative_to_the_file_not_the_working_directory(
    tmp_path: Path,
) -> None:
    write(tmp_path / "project" / "sqlmig.toml", 'dir = "sql"\n')
    elsewhere = tmp_path / "project" / "deploy"
    elsewhere.mkdir()

    assert resolve(given(), {}, elsewhere).dir == str(tmp_path / "project" / "sql")


def test_dump_schema_in_a_config_file_is_relative_to_the_file(tmp_path: Path) -> None:
    write(tmp_path / "project" / "pyproject.toml", '[tool.sqlmig]\ndump_schema = "db/schema.sql"\n')
    elsewhere = tmp_path / "project" / "deploy"
    elsewhere.mkdir()

    settings = resolve(given(), {}, elsewhere)

    assert settings.dump_schema == str(tmp_path / "project" / "db" / "schema.sql")
    assert resolve(given(), {}, tmp_path).dump_schema is None


def test_an_absolute_dir_in_a_config_file_is_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "somewhere" / "else"
    write(tmp_path / "sqlmig.toml", f"dir = {str(absolute)!r}\n")

    assert resolve(given(), {}, tmp_path).dir == str(absolute)


def test_pyproject_tool_sqlmig_table_is_read(tmp_path: Path) -> None:
    pyproject = write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "app"\n\n[tool.sqlmig]\ndir = "sql"\ntable = "app_migrations"\n',
    )

    settings = resolve(given(), {}, tmp_path)

    assert settings.config_file == pyproject
    assert (settings.dir, settings.table) == (str(tmp_path / "sql"), "app_migrations")


def test_a_pyproject_without_tool_sqlmig_is_passed_over_for_one_above(tmp_path: Path) -> None:
    config = write(tmp_path / "sqlmig.toml", 'table = "outer"\n')
    write(tmp_path / "inner" / "pyproject.toml", '[project]\nname = "inner"\n')

    settings = resolve(given(), {}, tmp_path / "inner")

    assert settings.config_file == config
    assert settings.table == "outer"


def test_the_nearest_config_wins_and_sqlmig_toml_before_pyproject_in_one_folder(
    tmp_path: Path,
) -> None:
    write(tmp_path / "sqlmig.toml", 'table = "outer"\n')
    inner_pyproject = write(tmp_path / "inner" / "pyproject.toml", '[tool.sqlmig]\ntable = "py"\n')

    assert find_config(tmp_path / "inner") == inner_pyproject
    inner_sqlmig = write(tmp_path / "inner" / "sqlmig.toml", 'table = "inner"\n')
    assert find_config(tmp_path / "inner") == inner_sqlmig
    assert resolve(given(), {}, tmp_path / "inner").table == "inner"


def test_database_url_env_reads_the_named_variable(tmp_path: Path) -> None:
    write(tmp_path / "sqlmig.toml", 'database_url_env = "APP_DB_URL"\n')

    settings = resolve(given(), {"APP_DB_URL": "postgresql://app/db"}, tmp_path)

    assert settings.database_url == "postgresql://app/db"
    assert settings.database_url_env == "APP_DB_URL"


def test_database_url_env_ranks_as_the_file_below_the_standard_variables(tmp_path: Path) -> None:
    write(tmp_path / "sqlmig.toml", 'database_url_env = "APP_DB_URL"\n')
    env = {"APP_DB_URL": "postgresql://app/db", "DATABASE_URL": "postgresql://env/db"}

    assert resolve(given(), env, tmp_path).database_url == "postgresql://env/db"
    assert (
        resolve(given(database_url="postgresql://cli/db"), env, tmp_path).database_url
        == "postgresql://cli/db"
    )


def test_an_unset_database_url_env_leaves_no_url_and_names_the_variable(tmp_path: Path) -> None:
    # Not an error here: `new` and an offline `validate` need no URL, and a URL on the
    # command line must still win. The CLI says which variable is unset when it needs one.
    write(tmp_path / "sqlmig.toml", 'database_url_env = "APP_DB_URL"\n')

    settings = resolve(given(), {}, tmp_path)
    with_option = resolve(given(database_url="postgresql://cli/db"), {}, tmp_path)

    assert settings.database_url is None
    assert settings.database_url_env == "APP_DB_URL"
    assert with_option.database_url == "postgresql://cli/db"


def test_an_explicit_config_file_is_used_instead_of_the_nearest(tmp_path: Path) -> None:
    write(tmp_path / "sqlmig.toml", 'table = "nearest"\n')
    explicit = write(tmp_path / "conf" / "deploy.toml", 'table = "explicit"\ndir = "m"\n')

    settings = resolve(given(), {}, tmp_path, explicit)

    assert settings.config_file == explicit
    assert settings.table == "explicit"
    assert settings.dir == str(tmp_path / "conf" / "m")


def test_an_explicit_config_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path, missing)

    assert str(raised.value) == f"config file {missing} does not exist"
    assert raised.value.exit_code == 2


def test_an_unknown_key_is_a_usage_error_listing_the_known_ones(tmp_path: Path) -> None:
    config = write(tmp_path / "sqlmig.toml", 'directory = "sql"\n')

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path)

    assert str(raised.value) == (
        f"{config}: unknown setting 'directory'; known settings: database_url, "
        "database_url_env, dir, table, schema, lock_timeout, statement_timeout, "
        "migration_lock_timeout, connection_budget, lock_strategy, lock_ttl, lock_heartbeat, "
        "ddl_lock_timeout, lock_retries, lint, lint_small_table_rows, dump_schema"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('lock_timeout = "ten"', "setting 'lock_timeout' must be a number, not 'ten'"),
        ("lock_timeout = true", "setting 'lock_timeout' must be a number, not True"),
        ("dir = 3", "setting 'dir' must be a string, not 3"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_usage_error(
    tmp_path: Path, line: str, expected: str
) -> None:
    config = write(tmp_path / "sqlmig.toml", line + "\n")

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path)

    assert str(raised.value) == f"{config}: {expected}"


def test_a_negative_timeout_in_the_file_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "sqlmig.toml", "lock_timeout = -1\n")

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path)

    assert str(raised.value) == "lock-timeout must be 0 or more, not -1"


def test_a_non_numeric_timeout_in_the_environment_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        resolve(given(), {"SQLMIG_LOCK_TIMEOUT": "soon"}, tmp_path)

    assert str(raised.value) == "$SQLMIG_LOCK_TIMEOUT must be a number of seconds, not 'soon'"


@pytest.mark.parametrize("content", [b"dir = \n", b'dir = "\xff"\n'], ids=["bad-toml", "not-utf8"])
def test_an_unreadable_config_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "sqlmig.toml").write_bytes(content)

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path)

    assert str(raised.value).startswith(f"config file {tmp_path / 'sqlmig.toml'} is not valid TOML")


def test_a_tool_sqlmig_that_is_not_a_table_is_a_usage_error(tmp_path: Path) -> None:
    pyproject = write(tmp_path / "pyproject.toml", '[tool]\nsqlmig = "yes"\n')

    with pytest.raises(UsageError) as raised:
        resolve(given(), {}, tmp_path)

    assert str(raised.value) == f"{pyproject}: [tool.sqlmig] must be a table"


@pytest.mark.parametrize(
    ("given_options", "env", "file", "name"),
    [
        ({"statement_timeout": 1e10}, {}, "", "statement-timeout"),
        ({}, {"SQLMIG_STATEMENT_TIMEOUT": "3000000"}, "", "statement-timeout"),
        ({}, {}, "migration_lock_timeout = 2147484\n", "migration-lock-timeout"),
    ],
)
def test_a_server_timeout_beyond_what_postgresql_accepts_is_a_usage_error(
    tmp_path: Path, given_options: dict[str, float], env: dict[str, str], file: str, name: str
) -> None:
    write(tmp_path / "sqlmig.toml", file)

    with pytest.raises(UsageError) as raised:
        resolve(given(**given_options), env, tmp_path)

    assert str(raised.value).startswith(
        f"{name} must be at most 2147483 seconds (PostgreSQL's limit), not "
    )


def test_the_largest_server_timeout_is_accepted(tmp_path: Path) -> None:
    settings = resolve(given(statement_timeout=2147483.0), {}, tmp_path)

    assert settings.statement_timeout == 2147483.0


def test_the_lock_strategy_and_lease_timing_come_from_option_then_environment_then_file(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    write(
        project / "sqlmig.toml",
        'lock_strategy = "table"\nlock_ttl = 30\nlock_heartbeat = 5\n',
    )
    env = {"SQLMIG_LOCK_STRATEGY": "advisory", "SQLMIG_LOCK_TTL": "20"}

    default = resolve(given(), {}, tmp_path)
    file = resolve(given(), {}, project)
    environment = resolve(given(), env, project)
    option = resolve(given(lock_strategy="table", lock_heartbeat=2.5), env, project)

    assert (default.lock_strategy, default.lock_ttl, default.lock_heartbeat) == (
        "advisory",
        60.0,
        10.0,
    )
    assert (file.lock_strategy, file.lock_ttl, file.lock_heartbeat) == ("table", 30, 5)
    assert (environment.lock_strategy, environment.lock_ttl) == ("advisory", 20.0)
    assert (option.lock_strategy, option.lock_ttl, option.lock_heartbeat) == ("table", 20.0, 2.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SQLMIG_LOCK_STRATEGY": "session"},
            "lock-strategy must be one of advisory, table, not 'session'",
        ),
        ({"SQLMIG_LOCK_TTL": "0"}, "lock-ttl and lock-heartbeat must be more than 0 seconds"),
        (
            {"SQLMIG_LOCK_TTL": "10", "SQLMIG_LOCK_HEARTBEAT": "10"},
            "lock-heartbeat (10s) must be less than lock-ttl (10s)",
        ),
        ({"SQLMIG_LOCK_HEARTBEAT": "soon"}, "$SQLMIG_LOCK_HEARTBEAT must be a number of seconds"),
    ],
)
def test_a_bad_lock_setting_is_a_usage_error(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as raised:
        resolve(given(), env, tmp_path)

    assert str(raised.value).startswith(message)
    assert raised.value.exit_code == 2

"""Settings for the command line: command line, then environment, then file, then defaults.

The file is ``[tool.sqlmig]`` in ``pyproject.toml`` or a ``sqlmig.toml``, found in the
current directory or above. It may name the environment variable that holds the URL
(``database_url_env = "APP_DB_URL"``) so that no secret has to be written in it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlmig.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

# Keys a config file may set, with the type each must have.
_FILE_KEYS: dict[str, tuple[type, ...]] = {
    "database_url": (str,),
    "database_url_env": (str,),
    "dir": (str,),
    "table": (str,),
    "schema": (str,),
    "lock_timeout": (int, float),
    "statement_timeout": (int, float),
    "migration_lock_timeout": (int, float),
    "connection_budget": (int,),
    "lock_strategy": (str,),
    "lock_ttl": (int, float),
    "lock_heartbeat": (int, float),
    "ddl_lock_timeout": (int, float),
    "lock_retries": (int,),
    "lint": (str,),
    "lint_small_table_rows": (int,),
    "dump_schema": (str,),
}
LINT_MODES = ("off", "warn", "error")

LOCK_STRATEGIES = ("advisory", "table")

# The largest statement_timeout or lock_timeout PostgreSQL accepts: 2**31 - 1 ms.
_MAX_SERVER_TIMEOUT = 2147483.647


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know, resolved."""

    database_url: str | None = None
    dir: str = "migrations"
    table: str = "schema_migrations"
    schema: str | None = None
    lock_timeout: float = 60.0
    statement_timeout: float | None = None
    migration_lock_timeout: float | None = None
    connection_budget: int = 20  # a fleet's connections to one server, at most
    lock_strategy: str = "advisory"
    # The lease's time to live and heartbeat (--lock-strategy table), as sqlmig.lease's.
    lock_ttl: float = 60.0
    lock_heartbeat: float = 10.0
    ddl_lock_timeout: float | None = None
    lock_retries: int = 0
    # "off", "warn" or "error": the lint before `up` (sqlmig.lint.Mode); unset, `up`
    # does not lint and `sqlmig lint` stops on warnings.
    lint: str | None = None
    lint_small_table_rows: int = 10_000
    # Where `up` and `down` write the schema after running, and `dump` by default.
    dump_schema: str | None = None
    # The variable the config file says holds the URL, for the message when it is unset.
    database_url_env: str | None = None
    config_file: Path | None = field(default=None, compare=False)


def find_config(start: Path) -> Path | None:
    """The nearest sqlmig.toml, or pyproject.toml with a [tool.sqlmig] table, at or above."""
    for folder in (start, *start.parents):
        candidate = folder / "sqlmig.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "sqlmig" in read_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file, its problems as usage errors."""
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def read_file_settings(path: Path) -> dict[str, Any]:
    """The sqlmig table of a config file, checked key by key."""
    data = read_toml(path)
    table = data.get("tool", {}).get("sqlmig", {}) if path.name == "pyproject.toml" else data
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.sqlmig] must be a table")
    for key, value in table.items():
        if key not in _FILE_KEYS:
            raise UsageError(
                f"{path}: unknown setting {key!r}; known settings: {', '.join(_FILE_KEYS)}"
            )
        kinds = _FILE_KEYS[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            expected = {float: "a number", int: "a whole number"}.get(kinds[-1], "a string")
            raise UsageError(f"{path}: setting {key!r} must be {expected}, not {value!r}")
    return dict(table)


def resolve(
    given: Mapping[str, Any],
    env: Mapping[str, str],
    cwd: Path,
    config_path: Path | None = None,
) -> Settings:
    """Merge the command line (``given``, None where not set), environment and file."""
    path = config_path or find_config(cwd)
    if config_path is not None and not config_path.is_file():
        raise UsageError(f"config file {config_path} does not exist")
    from_file = read_file_settings(path) if path else {}
    if path is not None:
        base = path.parent
        for key in ("dir", "dump_schema"):
            if key in from_file and not Path(from_file[key]).is_absolute():
                from_file[key] = str(base / from_file[key])

    from_env: dict[str, Any] = {}
    url = env.get("SQLMIG_DATABASE_URL") or env.get("DATABASE_URL")
    if url:
        from_env["database_url"] = url
    if env.get("SQLMIG_DIR"):
        from_env["dir"] = env["SQLMIG_DIR"]
    for key in ("table", "schema", "lock_strategy"):
        if env.get(f"SQLMIG_{key.upper()}"):
            from_env[key] = env[f"SQLMIG_{key.upper()}"]
    for key in (
        "lock_timeout",
        "statement_timeout",
        "lock_ttl",
        "lock_heartbeat",
        "ddl_lock_timeout",
    ):
        raw = env.get(f"SQLMIG_{key.upper()}")
        if raw:
            from_env[key] = _number(f"SQLMIG_{key.upper()}", raw)
    if env.get("SQLMIG_LOCK_RETRIES"):
        from_env["lock_retries"] = _whole("SQLMIG_LOCK_RETRIES", env["SQLMIG_LOCK_RETRIES"])

    # An unset variable is only an error for a command that needs the URL (see
    # sqlmig.cli): `new` and an offline `validate` work without it, and a URL on the
    # command line or in the environment wins anyway.
    url_env = from_file.get("database_url_env")
    if url_env and "database_url" not in from_env and env.get(url_env):
        from_file["database_url"] = env[url_env]

    merged: dict[str, Any] = {}
    for source in (from_file, from_env, {k: v for k, v in given.items() if v is not None}):
        merged.update(source)
    known = {f.name for f in fields(Settings)}
    settings = Settings(**{k: v for k, v in merged.items() if k in known}, config_file=path)
    _check_names(settings, given, from_env)
    _check_lock(settings)
    if settings.ddl_lock_timeout is not None and settings.ddl_lock_timeout <= 0:
        raise UsageError(
            f"ddl-lock-timeout must be more than 0 seconds, not {settings.ddl_lock_timeout:g}"
        )
    if settings.lint is not None and settings.lint not in LINT_MODES:
        raise UsageError(f"lint must be one of {', '.join(LINT_MODES)}, not {settings.lint!r}")
    if settings.lint_small_table_rows < 0:
        raise UsageError(
            f"lint_small_table_rows must be 0 or more, not {settings.lint_small_table_rows}"
        )
    if settings.lock_retries < 0:
        raise UsageError(f"lock-retries must be 0 or more, not {settings.lock_retries}")
    for key in ("lock_timeout", "statement_timeout", "migration_lock_timeout", "ddl_lock_timeout"):
        value = getattr(settings, key)
        if value is not None and value < 0:
            raise UsageError(f"{key.replace('_', '-')} must be 0 or more, not {value}")
        # These two become PostgreSQL settings in milliseconds, an int4 on the server.
        if key != "lock_timeout" and value is not None and value > _MAX_SERVER_TIMEOUT:
            raise UsageError(
                f"{key.replace('_', '-')} must be at most {int(_MAX_SERVER_TIMEOUT)} seconds "
                f"(PostgreSQL's limit), not {value:g}"
            )
    return settings


def _check_names(settings: Settings, given: Mapping[str, Any], from_env: Mapping[str, Any]) -> None:
    """Refuse a bad table or schema name before connecting, saying where it was set."""
    if settings.table == Settings.table and settings.schema is None:
        return  # the default needs no check, nor SQLAlchemy imported for one
    from sqlmig.tracker import check_identifier

    for key in ("table", "schema"):
        value = getattr(settings, key)
        if value is None:
            continue
        if given.get(key) is not None:
            origin = f"--{key}"
        elif key in from_env:
            origin = f"$SQLMIG_{key.upper()}"
        else:
            origin = str(settings.config_file)
        check_identifier(key, value, f" (from {origin})")


def _check_lock(settings: Settings) -> None:
    """Refuse an unknown lock strategy, or a lease that would lapse between renewals."""
    if settings.lock_strategy not in LOCK_STRATEGIES:
        raise UsageError(
            f"lock-strategy must be one of {', '.join(LOCK_STRATEGIES)}, "
            f"not {settings.lock_strategy!r}"
        )
    check_lease_timing(settings.lock_ttl, settings.lock_heartbeat)


def check_lease_timing(ttl: float, heartbeat: float) -> None:
    """A lease must outlive the time between two of its renewals."""
    if not ttl > 0 or not heartbeat > 0:
        raise UsageError(
            f"lock-ttl and lock-heartbeat must be more than 0 seconds, not {ttl:g} and "
            f"{heartbeat:g}"
        )
    if heartbeat >= ttl:
        raise UsageError(
            f"lock-heartbeat ({heartbeat:g}s) must be less than lock-ttl ({ttl:g}s): a "
            "lease renewed less often than it expires is lost between two renewals"
        )


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"${name} must be a number of seconds, not {raw!r}") from None


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"${name} must be a whole number, not {raw!r}") from None


def environment() -> Mapping[str, str]:
    return os.environ

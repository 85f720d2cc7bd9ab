"""What the tests share: URLs, migration files, the database seen from outside, and
running the command line in-process with a clean environment.

``tests/conftest.py`` puts this directory on ``sys.path`` (``from helpers import ...``)
and builds the shared fixtures (``observer``, ``clean_environment``) from these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from sqlmig.cli import app
from sqlmig.tracker import version_key

# --- URLs and sessions -------------------------------------------------------------


def libpq(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a libpq one, for plain psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect(url: str) -> psycopg.Connection[Any]:
    """A plain autocommit session of the test's own, named so that no count of sqlmig's
    sessions (``application_name = 'sqlmig'``) includes it."""
    return psycopg.connect(libpq(url), autocommit=True, application_name="sqlmig-test-observer")


# --- files -------------------------------------------------------------------------


def write(directory: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write each file byte for byte (UTF-8, no newline translation); return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(
            content if isinstance(content, bytes) else content.encode("utf-8")
        )
    return directory


# --- the database from outside -----------------------------------------------------

Database = Engine | psycopg.Connection[Any]
"""Where a helper looks: an Engine (on a connection of its own) or a test's session."""


def query(db: Database, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of one statement; ``%s`` takes ``params``, and a literal % is ``%%``."""
    if isinstance(db, psycopg.Connection):
        return db.execute(sql, params).fetchall()
    with db.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(sql, params)]


def tables(db: Database) -> set[str]:
    """The tables of the public schema."""
    found = query(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {name for (name,) in found}


def tracking(db: Database, table: str = "schema_migrations") -> dict[str, str]:
    """version -> status in the tracking table ``table`` (SQL, so ``schema.name`` works),
    in version order; empty when the table does not exist."""
    if query(db, "SELECT to_regclass(%s)", table) == [(None,)]:
        return {}
    found = query(db, f"SELECT version, status FROM {table}")
    return {str(v): str(s) for v, s in sorted(found, key=lambda row: version_key(row[0]))}


def sessions(
    observer: psycopg.Connection[Any], application: str, database: str | None = None
) -> int:
    """How many sessions ``application`` has open on ``database`` (default: the
    observer's own)."""
    rows = query(
        observer,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = coalesce(%s, current_database())",
        application,
        database,
    )
    return int(rows[0][0])


# --- the command line --------------------------------------------------------------

SETTINGS_ENV = (
    "DATABASE_URL",
    "SQLMIG_DATABASE_URL",
    "SQLMIG_DIR",
    "SQLMIG_TABLE",
    "SQLMIG_SCHEMA",
    "SQLMIG_LOCK_TIMEOUT",
    "SQLMIG_STATEMENT_TIMEOUT",
)
"""The environment variables that change what the CLI does."""

CLEARED_ENV = (
    *SETTINGS_ENV,
    "APP_DB_URL",  # the variable the tests' config files name with database_url_env
    "FORCE_COLOR",  # rich would style a pipe
)
"""What tests that run the CLI clear, so a developer's shell (a DATABASE_URL, say)
never changes a result."""


def clean_environ() -> dict[str, str]:
    """This process's environment without :data:`CLEARED_ENV`."""
    return {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}


SENTINEL = "Sentinel-PW-9f3k"
"""A password that must never reach the CLI's output (see :func:`invoke`)."""


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``sqlmig ARGS...`` in-process; fails the test if :data:`SENTINEL` is in its output."""
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert SENTINEL not in result.stdout + result.stderr
    return result


def document(stdout: str) -> dict[str, Any]:
    """stdout as exactly one JSON document (json.loads fails on anything more)."""
    parsed: dict[str, Any] = json.loads(stdout)
    return parsed

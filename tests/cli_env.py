"""The environment variables that change what the CLI does: tests that run it clear them,
so a developer's shell (a DATABASE_URL, say) never changes a result."""

from __future__ import annotations

import os

SETTINGS_ENV = (
    "DATABASE_URL",
    "SQLMIG_DATABASE_URL",
    "SQLMIG_DIR",
    "SQLMIG_TABLE",
    "SQLMIG_SCHEMA",
    "SQLMIG_LOCK_TIMEOUT",
    "SQLMIG_STATEMENT_TIMEOUT",
    "SQLMIG_DDL_LOCK_TIMEOUT",
    "SQLMIG_LOCK_RETRIES",
)
CLEARED_ENV = (
    *SETTINGS_ENV,
    "APP_DB_URL",  # the variable the tests' config files name with database_url_env
    "FORCE_COLOR",  # rich would style a pipe
)


def clean_environ() -> dict[str, str]:
    """This process's environment without the variables above."""
    return {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}

"""The fixtures the pytest plugin offers once turned on.

One PostgreSQL per test session, from the chain of :mod:`sqlmig.testing.pgsource`.
On it: an empty database for the session, the same migrated (``sqlmig_engine``),
and for a test that changes things, a copy of its own (``sqlmig_clean_database``)
made from a migrated template database, so a copy costs what an empty database
does however many migrations there are. Directory, table and schema come from the
project's sqlmig config.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from sqlmig.database import new_engine
from sqlmig.errors import SqlmigError
from sqlmig.migrator import Migrator
from sqlmig.testing.checks import Project
from sqlmig.testing.pgsource import (
    NoDatabaseError,
    choose_source,
    database_name,
    fresh_database,
    in_ci,
)


@pytest.fixture(scope="session")
def sqlmig_project(pytestconfig: pytest.Config) -> Project:
    """The migrations directory, tracking table and schema from the sqlmig config."""
    try:
        return Project.from_config(pytestconfig.rootpath, os.environ)
    except SqlmigError as exc:
        message = f"sqlmig config: {exc}"
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def sqlmig_admin_url() -> Iterator[str]:
    """An admin URL of the test server: ``SQLMIG_TEST_DATABASE_URL``, else a container
    (testcontainers and Docker), else an embedded PostgreSQL (pgserver).

    Without any, the tests that need one are skipped saying what to install; with
    ``CI=true`` they fail instead, so a CI run cannot pass by testing nothing.
    """
    try:
        source = choose_source(os.environ)
    except NoDatabaseError as exc:
        failure = str(exc)
    else:
        try:
            yield source.admin_url
        finally:
            source.stop()
        return
    if in_ci():
        pytest.fail(f"CI=true and {failure}", pytrace=False)
    pytest.skip(failure)


@pytest.fixture(scope="session")
def sqlmig_database_url(sqlmig_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for the test session, dropped at its end."""
    with fresh_database(sqlmig_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def sqlmig_engine(sqlmig_database_url: str, sqlmig_project: Project) -> Iterator[Engine]:
    """An Engine on the session's database with every migration applied."""
    engine = new_engine(sqlmig_database_url)
    try:
        _migrate(sqlmig_project, engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlmig_migrator(sqlmig_engine: Engine, sqlmig_project: Project) -> Migrator:
    """A Migrator for the project's migrations on ``sqlmig_engine``."""
    return sqlmig_project.migrator(sqlmig_engine)


@pytest.fixture(scope="session")
def _sqlmig_template(sqlmig_admin_url: str, sqlmig_project: Project) -> Iterator[str]:
    """The name of a migrated database that nobody connects to, to copy from."""
    with fresh_database(sqlmig_admin_url) as url:
        _migrate(sqlmig_project, url)  # a Migrator given a URL disposes its engine
        yield database_name(url)


@pytest.fixture
def sqlmig_clean_database(sqlmig_admin_url: str, _sqlmig_template: str) -> Iterator[Engine]:
    """An Engine on a migrated database of this test's own, dropped after it."""
    with fresh_database(sqlmig_admin_url, template=_sqlmig_template) as url:
        engine = new_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _migrate(project: Project, database: Engine | str) -> None:
    with project.migrator(database) as migrator:
        try:
            migrator.up()
            return
        except SqlmigError as exc:
            message = f"migrating the test database failed: {exc}"
    pytest.fail(message, pytrace=False)

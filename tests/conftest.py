"""Fixtures shared by all tests: a real PostgreSQL and a fresh database per test, and
PgBouncer in front of it for the pooler tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).parent))

import pgbouncer
import pgsource
from helpers import CLEARED_ENV, connect

_source: pgsource.Source | None = None
_failure: str | None = None
_bouncer: pgbouncer.Bouncer | None = None
_bouncer_failure: str | None = None


def _get_source() -> pgsource.Source:
    global _source, _failure
    if _source is None and _failure is None:
        try:
            _source = pgsource.choose_source(os.environ)
        except pgsource.NoDatabaseError as exc:
            _failure = str(exc)
    if _source is None:
        assert _failure is not None
        if pgsource.in_ci():
            pytest.fail(f"CI=true and {_failure}", pytrace=False)
        pytest.skip(_failure)
    return _source


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The reliability tests time faults and races: under ``make test``'s two workers
    (``--dist loadgroup``) they run one after the other on one worker, while the other
    runs everything else."""
    for item in items:
        if "reliability" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group("reliability"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _bouncer is not None:
        _bouncer.stop()
    if _source is not None:
        _source.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _source is not None:
        terminalreporter.write_line(f"PostgreSQL for integration tests: {_source.name}")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """An admin URL of the server the integration tests use (see tests/pgsource.py)."""
    return _get_source().admin_url


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    with pgsource.fresh_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine made by sqlmig on the test's fresh database."""
    from sqlmig.database import new_engine

    eng = new_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def observer(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit session of the test's own that looks at its database from outside."""
    with connect(database_url) as conn:
        yield conn


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the developer's shell, and the test's own directory as the current
    one: for tests that run the CLI (``pytest.mark.usefixtures("clean_environment")``)."""
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pgbouncer_server(pg_admin_url: str) -> pgbouncer.Bouncer:
    """PgBouncer in transaction mode in front of the test server (see tests/pgbouncer.py);
    its tests skip when it cannot be had, and fail under CI=true."""
    global _bouncer, _bouncer_failure
    if _bouncer is None and _bouncer_failure is None:
        try:
            _bouncer = pgbouncer.start(pg_admin_url)
        except pgbouncer.NoPgBouncerError as exc:
            _bouncer_failure = str(exc)
    if _bouncer is None:
        if pgsource.in_ci():
            pytest.fail(f"CI=true and {_bouncer_failure}", pytrace=False)
        pytest.skip(str(_bouncer_failure))
    return _bouncer


@pytest.fixture
def pooled_url(database_url: str, pgbouncer_server: pgbouncer.Bouncer) -> str:
    """The test's fresh database, reached through PgBouncer in transaction mode."""
    return pgbouncer_server.url(database_url)

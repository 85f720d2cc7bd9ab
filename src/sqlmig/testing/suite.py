"""The ready-made checks as the tests the pytest plugin adds, and the hook that adds them.

They join every run that collects a directory (``pytest``, ``pytest tests/``), first,
as ``sqlmig::test_<check>``; a run of named files or tests leaves them out. Each is
selected (``-k stairway``) or deselected by name like any test, and the
``sqlmig_skip`` ini option skips some for good. Each needing a database gets one of
its own on the session's server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sqlmig.errors import SqlmigError
from sqlmig.testing import checks, pgsource
from sqlmig.testing.checks import CheckFailed, Project


def test_files_validate(sqlmig_project: Project) -> None:
    _run(lambda: checks.files_validate(sqlmig_project))


def test_upgrade_from_empty(sqlmig_project: Project, sqlmig_admin_url: str) -> None:
    with pgsource.fresh_database(sqlmig_admin_url) as url:
        _run(lambda: checks.upgrade_from_empty(sqlmig_project, url))


def test_stairway(sqlmig_project: Project, sqlmig_admin_url: str) -> None:
    with pgsource.fresh_database(sqlmig_admin_url) as url:
        _run(lambda: checks.stairway(sqlmig_project, url))


def test_down_leaves_no_trace(sqlmig_project: Project, sqlmig_admin_url: str) -> None:
    with pgsource.fresh_database(sqlmig_admin_url) as url:
        _run(lambda: checks.down_leaves_no_trace(sqlmig_project, url))


def test_models_match(
    pytestconfig: pytest.Config, sqlmig_project: Project, sqlmig_clean_database: Engine
) -> None:
    from alembic_compat.metadata import load_metadata

    def check() -> None:
        path = pytestconfig.getini("sqlmig_metadata")
        metadata = load_metadata(path, search_path=pytestconfig.rootpath)
        checks.models_match(sqlmig_project, sqlmig_clean_database, metadata)

    _run(check)


TESTS: dict[str, Callable[..., None]] = {
    test.__name__.removeprefix("test_"): test
    for test in (
        test_files_validate,
        test_upgrade_from_empty,
        test_stairway,
        test_down_leaves_no_trace,
        test_models_match,
    )
}
"""The checks by name."""


def _run(check: Callable[[], object]) -> None:
    """A check's failure (or a sqlmig error, such as models that cannot be loaded) as
    its message alone: a traceback through sqlmig would tell the reader nothing."""
    try:
        check()
    except (CheckFailed, SqlmigError) as exc:
        message = str(exc)
    else:
        return
    pytest.fail(message, pytrace=False)  # outside the except: the message once, unchained


class Checks(pytest.Module):
    """The checks, collected from this module whatever the project's python_functions."""

    def _getobj(self) -> object:
        import sqlmig.testing.suite

        return sqlmig.testing.suite

    def collect(self) -> Iterable[pytest.Item]:
        for name, test in TESTS.items():
            item = pytest.Function.from_parent(self, name=test.__name__, callobj=test)
            reason = _skip_reason(self.config, name)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
            yield item


def pytest_configure(config: pytest.Config) -> None:
    _skipped(config)  # an unknown name is a usage error before anything runs


@pytest.hookimpl(tryfirst=True)  # before -k and --deselect choose among them
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not _collects_a_directory(config):
        return
    checks_node = Checks.from_parent(session, path=config.rootpath / "sqlmig", name="sqlmig")
    items[:0] = list(session.genitems(checks_node))


def _collects_a_directory(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0])
        if path.is_dir():
            return True
    return False


def _skip_reason(config: pytest.Config, name: str) -> str | None:
    if name in _skipped(config):
        return f"{name} is in sqlmig_skip"
    if name == "models_match":
        from alembic_compat.errors import AlembicMissingError, require_alembic

        if not config.getini("sqlmig_metadata"):
            return "no models to compare: set sqlmig_metadata = package.module:attribute"
        try:
            require_alembic()
        except AlembicMissingError:
            return "models_match compares through Alembic: pip install 'sqlmig[alembic]'"
    return None


def _skipped(config: pytest.Config) -> set[str]:
    names = {name.removeprefix("test_") for name in config.getini("sqlmig_skip")}
    unknown = sorted(names - TESTS.keys())
    if unknown:
        raise pytest.UsageError(
            f"sqlmig_skip names no check: {', '.join(unknown)}; the checks are {', '.join(TESTS)}"
        )
    return names

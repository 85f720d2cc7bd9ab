"""The pytest plugin, loaded wherever sqlmig is installed and inert until turned on.

pytest finds it through the ``pytest11`` entry point. Until a project sets
``sqlmig = true`` in its pytest configuration or runs ``pytest --sqlmig``, it only
declares its options and imports nothing but pytest: installing sqlmig changes
nobody's test run. Turned on, it brings the fixtures (:mod:`sqlmig.testing.fixtures`)
and the ready-made checks (:mod:`sqlmig.testing.suite`).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--sqlmig",
        action="store_true",
        default=False,
        help="sqlmig: turn on the migration fixtures and checks (as the sqlmig ini option does)",
    )
    parser.addini("sqlmig", type="bool", default=False, help="sqlmig: turn on fixtures and checks")
    parser.addini(
        "sqlmig_metadata",
        default="",
        help="sqlmig: the models to compare with the migrated schema, package.module:attribute",
    )
    parser.addini(
        "sqlmig_skip", type="args", default=[], help="sqlmig: names of the checks to skip"
    )


def pytest_configure(config: pytest.Config) -> None:
    if not (config.getoption("sqlmig") or config.getini("sqlmig")):
        return
    from sqlmig.testing import fixtures, suite

    config.pluginmanager.register(fixtures, "sqlmig.fixtures")
    config.pluginmanager.register(suite, "sqlmig.suite")

"""The package's face: ``from sqlmig import ...`` works, and costs nothing until used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import sqlmig


def test_the_public_names_come_from_the_package() -> None:
    from sqlmig import MigrationError, Migrator, Tracker, advisory_lock, new_engine
    from sqlmig.database import new_engine as defined
    from sqlmig.migrator import Migrator as the_migrator

    assert Migrator is the_migrator and new_engine is defined
    assert callable(advisory_lock) and isinstance(Tracker, type)
    assert issubclass(MigrationError, sqlmig.SqlmigError)
    assert set(sqlmig.__all__) <= set(dir(sqlmig))


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in sqlmig.__all__:
        assert getattr(sqlmig, name) is not None, name
    assert set(sqlmig.__all__) == {"__version__", *sqlmig._PUBLIC}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'sqlmig' has no attribute 'nope'"):
        sqlmig.nope  # type: ignore[attr-defined]  # noqa: B018


def test_importing_the_package_loads_neither_sqlalchemy_nor_psycopg() -> None:
    code = "import sys, sqlmig; print([m for m in ('sqlalchemy', 'psycopg') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"

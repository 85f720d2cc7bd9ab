"""Loading the models' MetaData from a package.module:attribute path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from alembic_compat.errors import MetadataLoadError
from alembic_compat.metadata import load_metadata


@pytest.fixture(autouse=True)
def restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_metadata puts its search path on sys.path; take it off after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_a_metadata_attribute_is_returned() -> None:
    from alembic_project import models

    assert load_metadata("alembic_project.models:metadata") is models.metadata


def test_a_dotted_attribute_and_a_declarative_base_both_lead_to_the_metadata() -> None:
    from alembic_project import models

    assert load_metadata("alembic_project.models:Base.metadata") is models.Base.metadata
    assert load_metadata("alembic_project.models:Base") is models.Base.metadata


def test_the_search_path_makes_a_local_package_importable(tmp_path: Path) -> None:
    package = tmp_path / "localapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "db.py").write_text("from sqlalchemy import MetaData\n\nmeta = MetaData()\n")

    assert isinstance(load_metadata("localapp.db:meta", search_path=tmp_path), MetaData)


@pytest.mark.parametrize("path", ["alembic_project.models", ":metadata", "models:", ""])
def test_a_path_without_module_and_attribute_is_refused(path: str) -> None:
    with pytest.raises(MetadataLoadError, match=r"not of the form package\.module:attribute"):
        load_metadata(path)


def test_an_unknown_module_is_named() -> None:
    with pytest.raises(
        MetadataLoadError, match=r"^path='no_such_app\.models:Base': module 'no_such_app\.models' "
    ) as caught:
        load_metadata("no_such_app.models:Base")
    assert caught.value.exit_code == 2


def test_an_unknown_attribute_is_named_with_what_the_module_has() -> None:
    with pytest.raises(MetadataLoadError) as caught:
        load_metadata("alembic_project.models:Bsae")
    message = str(caught.value)
    assert "alembic_project.models has no attribute 'Bsae'" in message
    assert "it has Base, metadata" in message


def test_an_attribute_that_is_not_a_metadata_is_refused() -> None:
    with pytest.raises(MetadataLoadError, match="is a ENUM, not a SQLAlchemy MetaData"):
        load_metadata("alembic_project.models:task_status")


def test_a_module_that_fails_to_import_says_why(tmp_path: Path) -> None:
    (tmp_path / "broken_models.py").write_text("import not_installed_dependency\n")

    with pytest.raises(MetadataLoadError, match="importing 'broken_models' failed: No module"):
        load_metadata("broken_models:meta", search_path=tmp_path)

"""Reading an Alembic env.py without running it: its version table and its models."""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_compat.envpy import Environment, read_environment
from alembic_compat.errors import AlembicConfigError

ONLINE = "context.configure(connection=connection{})\n"


def environment(
    tmp_path: Path, source: str, ini: str | None = None, section: str = "alembic"
) -> Environment:
    scripts = tmp_path / "migrations"
    scripts.mkdir()
    (scripts / "env.py").write_text("from alembic import context\n" + source)
    if ini is None:
        return read_environment(None, script_location=str(scripts), section=section)
    (tmp_path / "alembic.ini").write_text(ini.format(scripts=scripts))
    return read_environment(str(tmp_path / "alembic.ini"), section=section)


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ("", ("alembic_version", None)),
        (", version_table='deploys'", ("deploys", None)),
        (", version_table='deploys', version_table_schema='ops'", ("deploys", "ops")),
        (", version_table=None", ("alembic_version", None)),
        (", version_table=config.get_main_option('vt', 'fallback')", ("fallback", None)),
        (", version_table=context.config.get_main_option('vt')", ("alembic_version", None)),
    ],
)
def test_the_version_table_of_the_online_configure_call(
    tmp_path: Path, keywords: str, expected: tuple[str, str | None]
) -> None:
    offline = "context.configure(url='postgresql://', version_table='offline_only')\n"

    env = environment(tmp_path, offline + ONLINE.format(keywords))

    assert env.version_table() == expected


def test_an_ini_option_is_read_from_the_section_the_history_is_in(tmp_path: Path) -> None:
    ini = (
        "[core]\nscript_location = {scripts}\nvt = core_version\n\n"
        "[audit]\nscript_location = {scripts}\nvt = audit_version\n"
    )
    source = ONLINE.format(", version_table=config.get_main_option('vt', 'alembic_version')")

    env = environment(tmp_path, "config = context.config\n" + source, ini, section="audit")

    assert env.version_table() == ("audit_version", None)


def test_without_an_online_call_every_call_must_agree(tmp_path: Path) -> None:
    source = (
        "context.configure(url=u, version_table='a')\ncontext.configure(url=u, version_table='b')\n"
    )

    with pytest.raises(AlembicConfigError) as caught:
        environment(tmp_path, source).version_table()

    assert "its context.configure() calls name a and b; pass version_table=[SCHEMA.]NAME" in str(
        caught.value
    )
    assert caught.value.options == ("version_table",)


def test_a_computed_version_table_asks_for_the_option_naming_the_line(tmp_path: Path) -> None:
    env = environment(tmp_path, "\n" + ONLINE.format(", version_table=f'v_{tenant}'"))

    with pytest.raises(AlembicConfigError) as caught:
        env.version_table()

    assert str(caught.value) == (
        f"cannot tell from {env.path} without running it: its version_table is computed "
        "when it runs (f'v_{tenant}', line 3); pass version_table=[SCHEMA.]NAME"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from myapp.models import Base\ntarget_metadata = Base.metadata\n",
            "myapp.models:Base.metadata",
        ),
        ("from myapp.db import metadata as md\ntarget_metadata = md\n", "myapp.db:metadata"),
        (
            "import myapp.models as m\ntarget_metadata = m.Base.metadata\n",
            "myapp.models:Base.metadata",
        ),
        (
            "import myapp.models\ntarget_metadata = myapp.models.Base.metadata\n",
            "myapp.models:Base.metadata",
        ),
        ("import myapp\ntarget_metadata: object = myapp.db.metadata\n", "myapp:db.metadata"),
        (
            "from a import Base\nfrom b import Base\ntarget_metadata = Base.metadata\n",
            "b:Base.metadata",
        ),
    ],
)
def test_target_metadata_through_the_import_that_binds_it(
    tmp_path: Path, source: str, expected: str
) -> None:
    assert environment(tmp_path, source).target_metadata() == expected


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("x = 1\n", "it sets no target_metadata"),
        ("target_metadata = None\n", "its target_metadata is None (line 2)"),
        (
            "from m import a, b\ntarget_metadata = [a.metadata, b.metadata]\n",
            "its target_metadata is [a.metadata, b.metadata] (line 3)",
        ),
        (
            "from sqlalchemy import MetaData\nmetadata = MetaData()\ntarget_metadata = metadata\n",
            "its target_metadata, metadata (line 4), is not an attribute of a module it imports",
        ),
        (
            "from .models import Base\ntarget_metadata = Base.metadata\n",
            "its target_metadata, Base.metadata (line 3), is not an attribute of a module it "
            "imports",
        ),
    ],
)
def test_models_env_py_does_not_settle_ask_for_the_option(
    tmp_path: Path, source: str, what: str
) -> None:
    env = environment(tmp_path, source)

    with pytest.raises(AlembicConfigError) as caught:
        env.target_metadata()

    assert str(caught.value) == (
        f"cannot tell from {env.path} without running it: {what}; pass "
        "metadata=package.module:attribute"
    )


def test_a_missing_or_broken_env_py_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(AlembicConfigError) as missing:
        read_environment(None, script_location=str(tmp_path))
    (tmp_path / "env.py").write_text("def broken(:\n")
    with pytest.raises(AlembicConfigError) as broken:
        read_environment(None, script_location=str(tmp_path))

    assert f"cannot read {tmp_path / 'env.py'}" in str(missing.value)
    assert str(broken.value) == f"{tmp_path / 'env.py'}, line 1: invalid syntax"

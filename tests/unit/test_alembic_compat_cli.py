"""`sqlmig alembic ...` without a database: loading, help, import, errors and exit codes."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alembic_compat.errors import INSTALL_HINT
from sqlmig.cli import app

PROJECT = Path(__file__).parents[1] / "alembic_project"
INI = str(PROJECT / "alembic.ini")


def python(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run sqlmig's entry point in a fresh interpreter, after ``prelude``."""
    code = f"{prelude}\nfrom sqlmig.cli import entry\nentry()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


def test_top_level_help_lists_alembic_without_importing_it() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['sqlmig', '--help']\n"
        "from sqlmig.cli import entry\n"
        "try:\n    entry()\nexcept SystemExit:\n    pass\n"
        "heavy = ('alembic', 'alembic_compat.cli', 'sqlalchemy')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print('LOADED', loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert "alembic   Import an Alembic history" in done.stdout
    assert "LOADED []" in done.stdout


@pytest.mark.parametrize("blocker", ["sys.modules['alembic'] = None", "BLOCK_FINDER"])
@pytest.mark.parametrize("command", [["import", "--config", "alembic.ini"], ["--help"]])
def test_without_alembic_the_commands_exit_2_saying_what_to_install(
    blocker: str, command: list[str]
) -> None:
    if blocker == "BLOCK_FINDER":
        blocker = (
            "import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'alembic' or name.startswith('alembic.'):\n"
            "            raise ImportError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())"
        )
    argv = f"import sys; sys.argv = ['sqlmig', 'alembic', *{command!r}]"

    done = python(f"import sys\n{blocker}\n{argv}")

    assert done.returncode == 2
    assert "the alembic commands need Alembic: pip install 'sqlmig[alembic]'" in done.stderr


def test_without_alembic_json_output_carries_the_error() -> None:
    done = python(
        "import sys; sys.modules['alembic'] = None\n"
        "sys.argv = ['sqlmig', '--format', 'json', 'alembic', 'check', '--metadata', 'm:x']"
    )

    assert done.returncode == 2
    document = json.loads(done.stdout)
    assert document["ok"] is False
    assert document["command"] == "alembic"
    assert "pip install 'sqlmig[alembic]'" in document["error"]["message"]


def test_sqlmig_finds_the_alembic_commands_through_their_entry_point() -> None:
    (entry,) = importlib.metadata.entry_points(group="sqlmig.commands", name="alembic")

    from alembic_compat.cli import app as alembic_app
    from alembic_compat.cli import command

    assert entry.load() is command
    assert command() is alembic_app


@pytest.mark.parametrize(
    ("module", "other"), [("sqlmig.cli", "alembic_compat"), ("alembic_compat.cli", "sqlmig.cli")]
)
def test_neither_command_line_module_imports_the_other(module: str, other: str) -> None:
    code = f"import sys, {module}\nprint({other!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stdout == "False\n"


def test_without_the_entry_point_the_command_exits_2_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **selection: [])

    text = CliRunner().invoke(app, ["alembic", "import"])
    as_json = CliRunner().invoke(app, ["--format", "json", "alembic", "import"])

    assert text.exit_code == 2
    assert text.stderr == f"error: {INSTALL_HINT}\n"
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout)["command"] == "alembic"


def test_alembic_help_lists_the_four_commands() -> None:
    result = CliRunner().invoke(app, ["alembic", "--help"])

    assert result.exit_code == 0
    for command in ("import", "adopt", "draft", "check"):
        assert f"  {command} " in result.stdout


def test_import_writes_into_the_dir_option(tmp_path: Path) -> None:
    out = tmp_path / "migrations"

    result = CliRunner().invoke(app, ["--dir", str(out), "alembic", "import", "--config", INI])

    assert result.exit_code == 0, result.stderr
    assert f"imported 5 Alembic revisions into {out}" in result.stdout
    assert "  0004 rename_users_name_to_display_name <- 4d5e6f708104" in result.stdout
    assert len(list(out.glob("*.sql"))) == 10


def test_import_json_lists_each_migration_with_its_revision(tmp_path: Path) -> None:
    out = tmp_path / "elsewhere"

    result = CliRunner().invoke(
        app,
        ["--format", "json", "alembic", "import", "--config", INI, "--out", str(out)],
    )

    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["command"] == "alembic import"
    assert [m["revision"] for m in document["migrations"]][:2] == ["1a2b3c4d5e01", "2b3c4d5e6f02"]
    assert document["migrations"][0]["files"][0].endswith("0001_create_users_and_projects.up.sql")
    assert document["unrenderable"] == []


def test_import_of_a_branched_history_exits_1_naming_the_heads(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    branch = (project / "versions" / "5e6f70819205_project_slugs.py").read_text()
    (project / "versions" / "6f708192a306_other.py").write_text(
        branch.replace("5e6f70819205", "6f708192a306")
    )

    result = CliRunner().invoke(
        app,
        ["--dir", str(tmp_path / "m"), "alembic", "import", "-c", str(project / "alembic.ini")],
    )

    assert result.exit_code == 1
    assert "the Alembic history is not linear: 2 heads" in result.stderr
    assert "head 5e6f70819205" in result.stderr and "head 6f708192a306" in result.stderr
    assert not (tmp_path / "m").exists()


def test_import_skipping_an_unrenderable_revision_says_what_to_write(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    head = (project / "versions" / "5e6f70819205_project_slugs.py").read_text()
    reads = head.replace('revision: str = "5e6f70819205"', 'revision: str = "6f708192a306"')
    reads = reads.replace('"4d5e6f708104"', '"5e6f70819205"').replace(
        '"""Project slugs, filled from the names', '"""Count users'
    )
    reads = reads.replace(
        "def upgrade() -> None:\n",
        "def upgrade() -> None:\n    op.get_bind().execute(sa.text('SELECT 1')).scalar()\n",
    )
    (project / "versions" / "6f708192a306_count.py").write_text(reads)
    out = tmp_path / "m"
    args = ["--dir", str(out), "alembic", "import", "-c", str(project / "alembic.ini")]

    refused = CliRunner().invoke(app, args)
    skipped = CliRunner().invoke(app, [*args, "--skip-unrenderable"])

    assert refused.exit_code == 1
    assert "1 Alembic revision could not be rendered to SQL offline" in refused.stderr
    assert skipped.exit_code == 0, skipped.stderr
    assert "imported 5 Alembic revisions" in skipped.stdout
    assert f"write {out / '0006_count_users.up.sql'} and 0006_count_users.down.sql" in (
        skipped.stderr
    )
    assert "header: -- alembic revision: 6f708192a306 (down_revision: 5e6f70819205)" in (
        skipped.stderr
    )


def test_import_with_a_missing_config_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--dir", str(tmp_path), "alembic", "import", "--config", str(tmp_path / "nope.ini")]
    )

    assert result.exit_code == 2
    assert "nope.ini not found" in result.stderr


@pytest.mark.parametrize("command", [["check"], ["draft", "add_things"]])
def test_an_unknown_metadata_path_exits_2(command: list[str]) -> None:
    result = CliRunner().invoke(
        app,
        [
            *("--database-url", "postgresql://u@localhost/db", "alembic", *command),
            *("--metadata", "no_such_app.models:Base"),
        ],
    )

    assert result.exit_code == 2
    assert "--metadata 'no_such_app.models:Base': module 'no_such_app.models' not found" in (
        result.stderr
    )


@pytest.mark.parametrize("command", [["check"], ["draft", "add_things"]])
def test_without_metadata_or_a_project_the_models_are_asked_for(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    result = CliRunner().invoke(
        app, ["--database-url", "postgresql://u@localhost/db", "alembic", *command]
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "error: which models? pass --metadata package.module:attribute, or the Alembic "
        "project whose env.py sets target_metadata as --config PATH or --script-location "
        "DIR (there is no alembic.ini here)\n"
    )

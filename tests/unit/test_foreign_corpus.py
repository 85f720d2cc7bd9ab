"""Directories written for golang-migrate, dbmate and goose: one directory per case.

Each case in ``foreign_files/`` is a ``migrations/`` directory and a ``case.toml`` that
says which tool's documented rule it comes from (``tool``, ``rule``) and the verdict:

- ``verdict = "runs"``: ``sqlmig -v validate`` exits 0; ``migrations`` lists each
  migration's version, name and file name in order, and ``notes`` lines it prints;
- ``verdict = "refused"``: ``sqlmig validate`` exits 1 and every ``message`` appears on
  stderr; nothing is skipped silently.

Adding a case is adding a directory; the table of cases is in ``foreign_files/README.md``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlmig.cli import app
from sqlmig.errors import MigrationFileError
from sqlmig.validation import validate_files

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CASES = Path(__file__).parent / "foreign_files"
KEYS = {"description", "tool", "rule", "verdict", "migrations", "notes", "message"}


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    verdict: str
    migrations: list[tuple[str, str, str]]
    notes: list[str]
    message: list[str]


def load(path: Path) -> Case:
    with (path / "case.toml").open("rb") as f:
        spec = tomllib.load(f)
    assert set(spec) <= KEYS, f"{path.name}: unknown keys {sorted(set(spec) - KEYS)}"
    assert {"description", "tool", "rule"} <= set(spec), f"{path.name}: say where the rule is from"
    assert spec["verdict"] in ("runs", "refused")
    return Case(
        path.name,
        path,
        spec["verdict"],
        [tuple(m) for m in spec.get("migrations", [])],
        spec.get("notes", []),
        spec.get("message", []),
    )


CASE_LIST = [load(p) for p in sorted(CASES.iterdir()) if p.is_dir()]

pytestmark = pytest.mark.usefixtures("clean_environment")


def test_the_readme_lists_every_case() -> None:
    listed = re.findall(r"^\| `(\w+)` \|", (CASES / "README.md").read_text(), re.M)
    assert listed == [c.name for c in CASE_LIST]


@pytest.mark.parametrize("case", CASE_LIST, ids=[c.name for c in CASE_LIST])
def test_case(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case.path)
    runs = case.verdict == "runs"
    result = CliRunner().invoke(app, ["-v", "validate"] if runs else ["validate"])
    shown = f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, shown

    if runs:
        assert result.exit_code == 0, shown
        found = [(m.version, m.name, m.filename) for m in validate_files(case.path / "migrations")]
        assert found == case.migrations
        assert result.stdout.startswith(f"ok: {len(found)} migrations are valid\n")
        for note in case.notes:
            assert note in result.stdout, f"{note!r} not in stdout\n{shown}"
        if not case.notes:
            assert "notes:" not in result.stdout, shown
    else:
        assert result.exit_code == 1, shown
        with pytest.raises(MigrationFileError):
            validate_files(case.path / "migrations")
        for part in case.message:
            assert part in result.stderr, f"{part!r} not in stderr\n{shown}"

import os
from pathlib import Path
from typing import Any


def make(work: Path) -> None:
    os.symlink("shared/create_b.sql", work / "migrations" / "2_b.up.sql")


def check(outcome: Any) -> None:
    assert [m["filename"] for m in outcome.document["migrations"]] == ["1_a.up.sql", "2_b.up.sql"]
    assert outcome.query("SELECT to_regclass('b') IS NOT NULL") == [(True,)]

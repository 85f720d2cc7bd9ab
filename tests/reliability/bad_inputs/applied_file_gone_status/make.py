from pathlib import Path
from typing import Any


def edit(work: Path) -> None:
    (work / "migrations" / "2_b.up.sql").unlink()


def check(outcome: Any) -> None:
    states = [(m["version"], m["state"]) for m in outcome.document["migrations"]]
    assert states == [("1", "applied"), ("2", "missing")]

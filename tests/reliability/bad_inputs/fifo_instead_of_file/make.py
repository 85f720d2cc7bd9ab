import os
from pathlib import Path


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    os.mkfifo(migrations / "1_a.up.sql")

import os
from pathlib import Path


def make(work: Path) -> None:
    os.symlink("../elsewhere/shared.sql", work / "migrations" / "2_shared.up.sql")

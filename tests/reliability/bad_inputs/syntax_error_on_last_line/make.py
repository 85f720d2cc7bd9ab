from pathlib import Path
from typing import Any


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    lines = ["CREATE TABLE long_table (n int);"]
    lines += [f"INSERT INTO long_table VALUES ({n});" for n in range(1, 1_998)]
    lines += ["", "SELECT 1 + 2 +;"]
    assert len(lines) == 2_000
    (migrations / "1_long.up.sql").write_text("\n".join(lines) + "\n")


def check(outcome: Any) -> None:
    error = outcome.document["error"]
    assert (error["line"], error["column"], error["sqlstate"]) == (2000, 15, "42601")
    assert error["file"] == "migrations/1_long.up.sql"
    assert "2001 |" not in outcome.stderr  # no line past the end of the file
    # The transaction rolled back: only the record of the failure remains.
    assert outcome.query("SELECT version, status FROM schema_migrations") == [("1", "failed")]
    assert outcome.query("SELECT to_regclass('long_table') IS NULL") == [(True,)]

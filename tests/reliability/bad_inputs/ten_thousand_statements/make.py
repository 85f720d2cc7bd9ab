from pathlib import Path
from typing import Any


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    inside = ["CREATE TABLE counted (n int PRIMARY KEY);"]
    inside += [f"INSERT INTO counted VALUES ({n}); -- row {n}" for n in range(1, 9_999)]
    inside.append("CREATE INDEX counted_n ON counted ((n % 10));")
    assert len(inside) == 10_000
    (migrations / "1_inside.up.sql").write_text("\n".join(inside) + "\n")
    # Outside a transaction each statement is sent alone and commits on its own;
    # nextval() commits without a WAL flush, so 10,000 of them stay quick.
    outside = ["-- sqlmig:no-transaction", "CREATE SEQUENCE outside_seq;"]
    outside += [f"SELECT nextval('outside_seq'); -- {n}" for n in range(1, 10_000)]
    (migrations / "2_outside.up.sql").write_text("\n".join(outside) + "\n")


def check(outcome: Any) -> None:
    migrations = outcome.document["migrations"]
    assert [(m["version"], m["transactional"]) for m in migrations] == [
        ("1", True),
        ("2", False),
    ]
    assert outcome.query("SELECT count(*) FROM counted") == [(9_998,)]
    assert outcome.query("SELECT last_value FROM outside_seq") == [(9_999,)]
    assert outcome.query("SELECT version, status FROM schema_migrations ORDER BY 1") == [
        ("1", "applied"),
        ("2", "applied"),
    ]

"""20 MB is generated, not committed."""

from pathlib import Path
from typing import Any


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    parts = [
        "-- A data migration of about 20 MB.\n",
        "CREATE TABLE big_rows (id int PRIMARY KEY, label text NOT NULL, note text);\n",
    ]
    row = 0
    for _ in range(100):
        values = []
        for _ in range(1000):
            row += 1
            values.append(
                f"({row}, 'row {row}: it''s; \"quoted\" -- not a comment /* nor this */', "
                f"$${'x' * 80};$$)"
            )
        parts.append("INSERT INTO big_rows (id, label, note) VALUES\n" + ",\n".join(values) + ";\n")
    parts.append("/*\n" + "a long explanation; with 'quotes', $$ and -- dashes\n" * 50_000 + "*/\n")
    body = "".join(f"  v := v + {i}; -- step {i}; 'quote'\n" for i in range(60_000))
    parts.append(
        "CREATE FUNCTION big_sum() RETURNS bigint LANGUAGE plpgsql AS $body$\n"
        f"DECLARE v bigint := 0;\nBEGIN\n{body}  RETURN v;\nEND\n$body$;\n"
    )
    data = "".join(parts).encode()
    assert len(data) > 20_000_000
    (migrations / "1_big_seed.up.sql").write_bytes(data)


def check(outcome: Any) -> None:
    assert [m["version"] for m in outcome.document["migrations"]] == ["1"]
    assert outcome.query("SELECT count(*), max(id) FROM big_rows") == [(100_000, 100_000)]
    assert outcome.query("SELECT big_sum()") == [(sum(range(60_000)),)]
    assert outcome.seconds < 30, f"took {outcome.seconds:.1f}s"

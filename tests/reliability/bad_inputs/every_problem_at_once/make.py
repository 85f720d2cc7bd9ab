from pathlib import Path
from typing import Any

FILES = {
    "001_a.up.sql": b"CREATE TABLE a (id int);\nCOMMIT;\n",
    "1_dup.up.sql": b"SELECT $$ never closed\n",
    "2_b.down.sql": b"DROP TABLE b;\n",
    "3_c.up.sql": b"SELECT '\xff';\n",
    "4_d.up.sql": b"SELECT 1;\n\\set x 1\n",
    "5_e.up.sql": b"SELECT 1;\n\nSELECT 'open;\n",
    "Bad_Name.sql": b"SELECT 1;\n",
}


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    for name, data in FILES.items():
        (migrations / name).write_bytes(data)


def check(outcome: Any) -> None:
    problems = outcome.document["error"]["problems"]
    assert len(problems) == 8
    assert problems == sorted(problems, key=lambda p: p.split(":")[0])

"""The same script saved five ways; written here so that git cannot normalise it."""

from pathlib import Path
from typing import Any

SCRIPT = (
    "-- the same script, saved five ways\n"
    "CREATE TABLE IF NOT EXISTS t (id int);\n"
    "INSERT INTO t VALUES (1);\n"
)
FORMS = {
    "1_lf": SCRIPT.encode(),
    "2_crlf": SCRIPT.replace("\n", "\r\n").encode(),
    "3_bom": b"\xef\xbb\xbf" + SCRIPT.encode(),
    "4_bom_crlf": b"\xef\xbb\xbf" + SCRIPT.replace("\n", "\r\n").encode(),
    "5_cr": SCRIPT.replace("\n", "\r").encode(),
}


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    for name, data in FORMS.items():
        (migrations / f"{name}.up.sql").write_bytes(data)


def check(outcome: Any) -> None:
    migrations = outcome.document["migrations"]
    assert [m["state"] for m in migrations] == ["applied"] * 5
    assert len({m["checksum"] for m in migrations}) == 1, migrations
    assert {m["recorded_checksum"] for m in migrations} == {migrations[0]["checksum"]}
    assert outcome.query("SELECT count(*) FROM t") == [(5,)]

from pathlib import Path


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    (migrations / "1_a.up.sql").write_bytes("CREATE TABLE a (id int);\r\n".encode("utf-16"))

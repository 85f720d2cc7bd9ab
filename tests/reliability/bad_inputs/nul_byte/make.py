from pathlib import Path


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    (migrations / "1_a.up.sql").write_bytes(
        b"CREATE TABLE a (id int, t text);\nINSERT INTO a VALUES (1, 'x\x00y');\n"
    )

from pathlib import Path


def edit(work: Path) -> None:
    migrations = work / "migrations"
    (migrations / "1_a.up.sql").write_text("CREATE TABLE a (id bigint PRIMARY KEY);\n")
    (migrations / "2_b.up.sql").write_text("CREATE TABLE b (id int);\n")

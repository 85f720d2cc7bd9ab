from pathlib import Path


def edit(work: Path) -> None:
    (work / "migrations" / "20240103000000_c.up.sql").write_text("CREATE TABLE c (id int);\n")

from pathlib import Path


def edit(work: Path) -> None:
    (work / "migrations" / "2_b.up.sql").unlink()
    (work / "migrations" / "3_c.up.sql").write_text("CREATE TABLE c (id int);\n")

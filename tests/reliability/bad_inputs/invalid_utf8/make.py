"""Invalid bytes are written here: an editor or a checkout could "fix" them."""

import gzip
from pathlib import Path


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    latin1 = "CREATE TABLE cafe (id int);\n\nCOMMENT ON TABLE cafe IS 'caf\u00e9';\n"
    (migrations / "1_latin1.up.sql").write_bytes(latin1.encode("latin-1"))
    (migrations / "2_gzipped.up.sql").write_bytes(gzip.compress(b"SELECT 1;\n"))

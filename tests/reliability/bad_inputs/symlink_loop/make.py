import os
from pathlib import Path


def make(work: Path) -> None:
    migrations = work / "migrations"
    migrations.mkdir()
    os.symlink("1_self.up.sql", migrations / "1_self.up.sql")
    os.symlink("3_pong.up.sql", migrations / "2_ping.up.sql")
    os.symlink("2_ping.up.sql", migrations / "3_pong.up.sql")
    os.symlink("gone.sql", migrations / "4_dangling.up.sql")
    os.symlink(".", migrations / "again")  # a directory loop: directories are not read

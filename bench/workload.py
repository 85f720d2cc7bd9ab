"""The generated workload, written in each tool's layout.

Migration i creates table t_i with an index and ten rows; its down script drops it.
sqlmig and the floor read the same pair files; yoyo gets the same SQL in its own file
names; dbmate the same SQL in its single-file form; alembic gets a linear chain of
revisions that ``op.execute`` the same SQL.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def up_sql(i: int) -> str:
    return (
        f"CREATE TABLE t_{i} (id bigint PRIMARY KEY, v text NOT NULL, "
        "created_at timestamptz DEFAULT now());\n"
        f"CREATE INDEX t_{i}_v ON t_{i} (v);\n"
        f"INSERT INTO t_{i} (id, v) SELECT g, md5(g::text) FROM generate_series(1, 10) g;\n"
    )


def down_sql(i: int) -> str:
    return f"DROP TABLE t_{i};\n"


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def sqlmig_dir(directory: Path, migrations: int) -> Path:
    """``%04d_t_%d.up.sql`` / ``.down.sql`` pairs, 1..migrations."""
    directory.mkdir(parents=True, exist_ok=True)
    root = os.fspath(directory)
    for i in range(1, migrations + 1):
        _write(f"{root}/{i:04d}_t_{i}.up.sql", up_sql(i))
        _write(f"{root}/{i:04d}_t_{i}.down.sql", down_sql(i))
    return directory


def last_version(migrations: int) -> str:
    return f"{migrations:04d}"


def yoyo_dir(directory: Path, migrations: int) -> Path:
    """yoyo's layout: ``NNNN_t_i.sql`` and ``NNNN_t_i.rollback.sql``."""
    directory.mkdir(parents=True, exist_ok=True)
    root = os.fspath(directory)
    for i in range(1, migrations + 1):
        _write(f"{root}/{i:04d}_t_{i}.sql", up_sql(i))
        _write(f"{root}/{i:04d}_t_{i}.rollback.sql", down_sql(i))
    return directory


def dbmate_dir(directory: Path, migrations: int) -> Path:
    """dbmate's layout: ``NNNN_t_i.sql`` holding ``-- migrate:up`` and ``-- migrate:down``
    sections (version NNNN; each migration runs in a transaction, dbmate's default)."""
    directory.mkdir(parents=True, exist_ok=True)
    root = os.fspath(directory)
    for i in range(1, migrations + 1):
        text = f"-- migrate:up\n{up_sql(i)}\n-- migrate:down\n{down_sql(i)}"
        _write(f"{root}/{i:04d}_t_{i}.sql", text)
    return directory


# Logging as in alembic's own "generic" template: a line per migration on stderr.
ALEMBIC_INI = """\
[alembic]
script_location = %(here)s
path_separator = os

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
"""

# Online mode only, with one transaction per migration like sqlmig and the floor
# (alembic's default would run the whole upgrade in one transaction).
ALEMBIC_ENV = """\
import os

from alembic import context
from sqlalchemy import create_engine, pool

engine = create_engine(os.environ["BENCH_ALEMBIC_URL"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection, target_metadata=None, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()
"""

ALEMBIC_REVISION = '''\
"""t_{i}"""

from alembic import op

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade():
    op.execute("""{up}""")


def downgrade():
    op.execute("""{down_sql}""")
'''


def alembic_project(directory: Path, migrations: int) -> Path:
    """An alembic project (``alembic.ini``, ``env.py``, ``versions/``); returns the ini."""
    versions = directory / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    _write(os.fspath(directory / "alembic.ini"), ALEMBIC_INI)
    _write(os.fspath(directory / "env.py"), ALEMBIC_ENV)
    _write(os.fspath(directory / "script.py.mako"), "")
    for i in range(1, migrations + 1):
        down = f'"r{i - 1:04d}"' if i > 1 else "None"
        text = ALEMBIC_REVISION.format(
            i=i, rev=f"r{i:04d}", down=down, up=up_sql(i), down_sql=down_sql(i)
        )
        _write(os.fspath(versions / f"r{i:04d}_t_{i}.py"), text)
    return directory / "alembic.ini"


def big_script_dir(directory: Path, size_bytes: int, rows_per_statement: int = 1000) -> Path:
    """One migration whose up script is ``size_bytes`` of multi-row INSERT statements."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "0001_big.up.sql"
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL);\n")
        written = 0
        row = 0
        while written < size_bytes:
            values = []
            for _ in range(rows_per_statement):
                row += 1
                values.append(f"({row}, '{hashlib.md5(str(row).encode()).hexdigest()}')")
            line = "INSERT INTO big (id, v) VALUES " + ", ".join(values) + ";\n"
            f.write(line)
            written += len(line)
    _write(os.fspath(directory / "0001_big.down.sql"), "DROP TABLE big;\n")
    return path

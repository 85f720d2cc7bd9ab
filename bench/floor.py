"""The floor: the same work as ``sqlmig up`` with psycopg directly, and nothing else.

It creates the same tracking table (sqlmig's DDL), reads each up file, computes its
SHA-256, and runs each migration's script and the same upsert into the tracking
table in one transaction. No lock, no checks, no SQLAlchemy: whatever sqlmig costs
above this is its overhead.

    python bench/floor.py apply URL DIR   # up, as a process
    python bench/floor.py noop URL        # case 3: import SQLAlchemy and psycopg, one query
    python bench/floor.py noop-typer URL  # case 3: the same, and import typer too

``apply(conn, directory)`` is the same run on an open connection (case 2).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

import psycopg

# What sqlmig's tracker creates (CreateTable of its Core Table, compiled for PostgreSQL).
TRACKING_DDL = """\
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT NOT NULL,
    filename TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    duration_ms INTEGER NOT NULL,
    status TEXT DEFAULT 'applied' NOT NULL,
    PRIMARY KEY (version),
    CONSTRAINT schema_migrations_status_check
        CHECK (status IN ('applied', 'failed', 'rolled_back'))
)"""

# The row sqlmig records for an applied migration, by the same upsert.
RECORD = """\
INSERT INTO schema_migrations (version, filename, checksum, applied_at, duration_ms, status)
VALUES (%(version)s, %(filename)s, %(checksum)s, now(), %(duration_ms)s, 'applied')
ON CONFLICT (version) DO UPDATE SET
    filename = excluded.filename, checksum = excluded.checksum, applied_at = now(),
    duration_ms = excluded.duration_ms, status = 'applied'
WHERE schema_migrations.status != 'applied'
RETURNING schema_migrations.version"""


def apply(conn: psycopg.Connection, directory: str) -> int:
    """Apply every ``*.up.sql`` in ``directory`` in version order; returns how many."""
    with conn.transaction():
        conn.execute(TRACKING_DDL)
    names = [n for n in os.listdir(directory) if n.endswith(".up.sql")]
    names.sort(key=lambda n: int(n.split("_", 1)[0]))
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            script = f.read()
        checksum = "sha256:" + hashlib.sha256(script).hexdigest()
        start = time.perf_counter()
        with conn.transaction():
            conn.execute(script)  # no parameters: sent as written, simple query protocol
            conn.execute(
                RECORD,
                {
                    "version": name.split("_", 1)[0],
                    "filename": name,
                    "checksum": checksum,
                    "duration_ms": int((time.perf_counter() - start) * 1000),
                },
            )
    return len(names)


def noop(url: str, *, typer: bool = False) -> None:
    """Case 3's floors: start Python with both drivers (and typer, the CLI's one other
    dependency, when asked), connect, one query."""
    import sqlalchemy  # noqa: F401

    if typer:
        import typer as _  # noqa: F401

    with psycopg.connect(url) as conn:
        conn.execute("SELECT version, checksum, status FROM schema_migrations").fetchall()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "apply":
        with psycopg.connect(argv[1]) as conn:
            apply(conn, argv[2])
        return 0
    if len(argv) == 2 and argv[0] in ("noop", "noop-typer"):
        noop(argv[1], typer=argv[0] == "noop-typer")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

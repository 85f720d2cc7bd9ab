"""Case 2's worker: time one in-process run, connection made before the clock starts.

    python bench/inproc.py sqlmig URL DIR   # Migrator(engine, DIR).up() on an existing Engine
    python bench/inproc.py floor URL DIR    # floor.apply(conn, DIR) on an open connection

Prints ``{"seconds": ...}``. Each measurement is its own process, so no run inherits
another's heap, pool or caches.
"""

from __future__ import annotations

import json
import sys
import time


def time_sqlmig(url: str, directory: str) -> float:
    from sqlalchemy import create_engine
    from sqlmig.migrator import Migrator

    engine = create_engine(url)  # an application's engine: default pool, no pre-ping
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the application has used it already
    try:
        start = time.perf_counter()
        Migrator(engine, directory).up()
        return time.perf_counter() - start
    finally:
        engine.dispose()


def time_floor(url: str, directory: str) -> float:
    import psycopg

    import floor

    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        floor.apply(conn, directory)
        return time.perf_counter() - start


def main(argv: list[str]) -> int:
    tool, url, directory = argv
    seconds = (time_sqlmig if tool == "sqlmig" else time_floor)(url, directory)
    print(json.dumps({"seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

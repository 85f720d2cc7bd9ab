"""The no-transaction list: statements validation refuses in a transactional file, and
look-alikes it must let through (tests/unit/test_no_transaction.py and, on a server,
tests/integration/test_no_transaction_server.py)."""

from __future__ import annotations

# (statement, how the problem names it). Every one of these fails with SQLSTATE 25001
# inside a transaction block (tests/integration/test_no_transaction.py checks each on
# a real server).
REFUSED = [
    ("CREATE INDEX CONCURRENTLY t_a ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("create unique index concurrently if not exists t_a on t (a)", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS t_a", "DROP INDEX CONCURRENTLY"),
    ("REINDEX TABLE CONCURRENTLY t", "REINDEX ... CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX ... CONCURRENTLY"),
    ("REINDEX SCHEMA public", "REINDEX SCHEMA"),
    ("VACUUM", "VACUUM"),
    ("VACUUM (ANALYZE) t", "VACUUM"),
    ("vacuum full t", "VACUUM"),
    ("CREATE DATABASE sqlmig_never", "CREATE DATABASE"),
    ("DROP DATABASE IF EXISTS sqlmig_never", "DROP DATABASE"),
    ("ALTER DATABASE sqlmig_never SET TABLESPACE pg_default", "ALTER DATABASE ... SET TABLESPACE"),
    ("CREATE TABLESPACE sqlmig_never LOCATION '/nonexistent'", "CREATE TABLESPACE"),
    ("DROP TABLESPACE IF EXISTS sqlmig_never", "DROP TABLESPACE"),
    ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
    ("CLUSTER", "CLUSTER without a table (every table)"),
    ("CLUSTER VERBOSE", "CLUSTER without a table (every table)"),
    ("DISCARD ALL", "DISCARD ALL"),
    (
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
        "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
    ),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'host=nowhere' PUBLICATION pub",
        "CREATE SUBSCRIPTION (with its replication slot)",
    ),
    ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"),
    (
        "ALTER SUBSCRIPTION s SET PUBLICATION pub",
        "ALTER SUBSCRIPTION ... PUBLICATION (with refresh)",
    ),
]

# Statements that share words with those above and run fine in a transaction.
FINE = [
    "CREATE INDEX t_a ON t (a)",
    "CREATE UNIQUE INDEX t_b ON t (a)",
    "DROP INDEX IF EXISTS t_a",
    "REINDEX TABLE t",
    "REINDEX (VERBOSE) TABLE t",
    "REINDEX (CONCURRENTLY false) TABLE t",
    "ANALYZE t",
    "CLUSTER t USING t_pkey",
    "ALTER DATABASE postgres SET work_mem = '8MB'",
    "ALTER TABLE p DETACH PARTITION p1",
    "DISCARD PLANS",
    "ALTER TYPE mood ADD VALUE 'happy'",
    "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'calm' BEFORE 'sad'",
    "COMMENT ON TABLE t IS 'reindex concurrently, vacuum, create database'",
    "SELECT 'CREATE INDEX CONCURRENTLY' AS text",
    "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'VACUUM'; END $$",
    "CREATE SUBSCRIPTION s2 CONNECTION 'host=nowhere' PUBLICATION pub "
    "WITH (connect = false, create_slot = false, enabled = false, slot_name = NONE)",
    "ALTER SUBSCRIPTION s SET PUBLICATION pub WITH (refresh = false)",
]

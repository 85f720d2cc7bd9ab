"""The lint corpus: risky and safe migrations, and what `sqlmig lint` finds in each, at
which level, without a database and with one where `small` has 10 rows and `big`
200,000 (tests/integration/test_lint.py). Each risky statement appears once for each
table, so the facts are all that differs between the two."""

from __future__ import annotations

SETUP = """
CREATE TABLE small (a bigint PRIMARY KEY, b text);
INSERT INTO small SELECT n, 'x' FROM generate_series(1, 10) AS n;
CREATE TABLE big (a bigint PRIMARY KEY, b text);
INSERT INTO big SELECT n, 'x' FROM generate_series(1, 200000) AS n;
ANALYZE small;
ANALYZE big;
"""

FILES = {
    # An index built under a SHARE lock: writes wait while it builds.
    "0001_index_small.up.sql": "CREATE INDEX small_b ON small (b);\n",
    "0002_index_big.up.sql": "CREATE INDEX big_b ON big (b);\n",
    # The safe way: concurrently, outside a transaction, with its own timeouts.
    "0003_index_big_concurrently.up.sql": "-- sqlmig:no-transaction\n"
    "SET lock_timeout = '2s';\n"
    "SET statement_timeout = '30min';\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS big_b2 ON big (b);\n",
    # A CHECK constraint scans the table under an ACCESS EXCLUSIVE lock.
    "0004_check_small.up.sql": "ALTER TABLE small ADD CONSTRAINT small_a_pos CHECK (a > 0);\n",
    "0005_check_big.up.sql": "ALTER TABLE big ADD CONSTRAINT big_a_pos CHECK (a > 0);\n",
    # The safe way: NOT VALID, then VALIDATE in a migration of its own.
    "0006_check_big_not_valid.up.sql": "SET lock_timeout = '2s';\n"
    "ALTER TABLE big ADD CONSTRAINT big_a_pos2 CHECK (a > 0) NOT VALID;\n",
    "0007_validate_big.up.sql": "ALTER TABLE big VALIDATE CONSTRAINT big_a_pos2;\n",
    # A table created in the same migration: nobody else can be using it yet.
    "0008_new_table.up.sql": "CREATE TABLE fresh (id bigint PRIMARY KEY, name text);\n"
    "ALTER TABLE fresh ADD CONSTRAINT fresh_id_pos CHECK (id > 0);\n"
    "ALTER TABLE fresh ALTER COLUMN name SET NOT NULL;\n",
    # A type change rewrites the table.
    "0009_type_small.up.sql": "ALTER TABLE small ALTER COLUMN b TYPE varchar(100);\n",
    "0010_type_big.up.sql": "ALTER TABLE big ALTER COLUMN b TYPE varchar(100);\n",
    # A rename breaks clients, however small the table.
    "0011_rename_small.up.sql": "ALTER TABLE small RENAME COLUMN b TO c;\n",
    # SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock. A single file: only
    # its up section is linted.
    "0012_not_null_small.up.sql": "ALTER TABLE small ALTER COLUMN a SET NOT NULL;\n",
    "0013_not_null_big.sql": "-- migrate:up\n"
    "ALTER TABLE big ALTER COLUMN b SET NOT NULL;\n"
    "-- migrate:down\n"
    "ALTER TABLE big ALTER COLUMN b DROP NOT NULL;\n",
}

_LOCKS = ("require-lock-timeout", "require-statement-timeout")

# (version, line, rule): (level without a database, level with one). squawk-cli 2.70.
EXPECTED = {
    **{("0001", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0001", 1, "require-concurrent-index-creation"): ("warning", "info"),
    **{("0002", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0002", 1, "require-concurrent-index-creation"): ("warning", "warning"),
    **{("0004", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0004", 1, "constraint-missing-not-valid"): ("warning", "info"),
    **{("0005", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0005", 1, "constraint-missing-not-valid"): ("warning", "warning"),
    ("0006", 2, "require-statement-timeout"): ("warning", "warning"),
    **{("0007", 1, rule): ("warning", "warning") for rule in _LOCKS},
    **{("0009", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0009", 1, "changing-column-type"): ("warning", "info"),
    ("0009", 1, "prefer-text-field"): ("warning", "warning"),
    **{("0010", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0010", 1, "changing-column-type"): ("warning", "warning"),
    ("0010", 1, "prefer-text-field"): ("warning", "warning"),
    **{("0011", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0011", 1, "renaming-column"): ("warning", "warning"),
    **{("0012", 1, rule): ("warning", "warning") for rule in _LOCKS},
    ("0012", 1, "adding-not-nullable-field"): ("warning", "info"),
    **{("0013", 2, rule): ("warning", "warning") for rule in _LOCKS},
    ("0013", 2, "adding-not-nullable-field"): ("warning", "warning"),
}

# Left out with or without a database: about `fresh`, created on line 1 of 0008.
DROPPED = {
    ("0008", 2, "require-lock-timeout"),
    ("0008", 2, "require-statement-timeout"),
    ("0008", 3, "adding-not-nullable-field"),
}

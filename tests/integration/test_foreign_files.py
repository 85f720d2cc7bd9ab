"""Directories written for golang-migrate, dbmate and goose, run on a real PostgreSQL.

A script wrapped in its own BEGIN ... COMMIT runs as one transaction with its tracking
row; a script of comments only runs nothing and is recorded; names as those tools
write them are recorded as written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import write
from sqlalchemy import Engine

from sqlmig.errors import MigrationError
from sqlmig.migrator import Migrator
from sqlmig.plan import State

pytestmark = pytest.mark.integration

WRAPPED = "-- golang-migrate runs files as sent\nBEGIN;\nCREATE TABLE {table} (id int);\nCOMMIT;\n"


def created_by(observer: psycopg.Connection[Any], table: str) -> str:
    """The transaction that created a table (the xmin of its catalog row)."""
    row = observer.execute("SELECT xmin::text FROM pg_class WHERE relname = %s", (table,))
    return str(row.fetchone()[0])  # type: ignore[index]


def recorded_by(observer: psycopg.Connection[Any], version: str) -> str:
    """The transaction that wrote a tracking row."""
    query = "SELECT xmin::text FROM schema_migrations WHERE version = %s"
    return str(observer.execute(query, (version,)).fetchone()[0])  # type: ignore[index]


def test_a_wrapped_script_runs_as_one_transaction_with_its_tracking_row(
    engine: Engine, tmp_path: Path, observer: psycopg.Connection[Any]
) -> None:
    folder = write(tmp_path / "m", {"0001_a.up.sql": WRAPPED.format(table="a")})

    Migrator(engine, folder).up()

    assert created_by(observer, "a") == recorded_by(observer, "0001")


def test_a_wrapped_script_sends_one_begin_and_one_commit(engine: Engine, tmp_path: Path) -> None:
    folder = write(tmp_path / "m", {"0001_a.up.sql": WRAPPED.format(table="a")})

    statements = Migrator(engine, folder).plan("up")

    assert statements[0] == "BEGIN"
    assert statements[1] == "CREATE TABLE a (id int)"
    assert statements[-1] == "COMMIT"
    assert [s for s in statements if s in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]


def test_a_failure_inside_a_wrapped_script_leaves_nothing_and_names_its_line(
    engine: Engine, tmp_path: Path, observer: psycopg.Connection[Any]
) -> None:
    text = "BEGIN;\nCREATE TABLE a (id int);\nSELECT 1 / 0;\nCOMMIT;\n"
    folder = write(tmp_path / "m", {"0001_a.up.sql": text})

    with pytest.raises(MigrationError) as caught:
        Migrator(engine, folder).up()

    assert caught.value.line == 3
    assert observer.execute("SELECT to_regclass('a')").fetchone() == (None,)
    status = {s.version: s.state for s in Migrator(engine, folder).status()}
    assert status == {"0001": State.FAILED}


def test_wrapped_scripts_join_a_single_transaction(
    engine: Engine, tmp_path: Path, observer: psycopg.Connection[Any]
) -> None:
    files = {
        "0001_a.up.sql": WRAPPED.format(table="a"),
        "0002_b.sql": "-- migrate:up\nSTART TRANSACTION;\nCREATE TABLE b (id int);\nEND;\n",
    }
    folder = write(tmp_path / "m", files)

    Migrator(engine, folder).up(single_transaction=True)

    assert created_by(observer, "a") == created_by(observer, "b") == recorded_by(observer, "0002")


def test_a_comment_only_script_runs_nothing_is_recorded_and_noticed(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = {
        "0001_a.up.sql": "CREATE TABLE a (id int);\n",
        "0002_placeholder.up.sql": "-- intentionally empty: keeps the numbering\n",
        "0003_c.up.sql": "CREATE TABLE c (id int);\n",
    }
    folder = write(tmp_path / "m", files)
    migrator = Migrator(engine, folder)

    with caplog.at_level(logging.INFO, logger="sqlmig"):
        done = migrator.up()

    assert [r.version for r in done.migrations] == ["0001", "0002", "0003"]
    assert "0002 placeholder has no SQL, only comments: it runs nothing" in caplog.text
    states = migrator.status()
    assert [s.state for s in states] == [State.APPLIED] * 3
    placeholder = states[1]
    assert placeholder.migration is not None
    assert placeholder.recorded_checksum == placeholder.migration.checksum
    assert placeholder.migration.notes == (
        "up: no SQL, only comments: runs nothing and is recorded",
    )


def test_names_as_the_other_tools_write_them_apply_in_version_order(
    engine: Engine, tmp_path: Path, observer: psycopg.Connection[Any]
) -> None:
    files = {
        "00000000000000-initial-schema.sql": "-- migrate:up\nCREATE TABLE a (id int);\n",
        "0002_1.7.0_schema.up.sql": "CREATE TABLE b (id int);\n",
        "20231002232836_Add-Sms-Consent-Column-To-Users.sql": "-- +goose Up\nSELECT 1;\n",
        "20230524032337_add-cbsa.sql.sql": "-- migrate:up\nSELECT 2;\n",
    }
    folder = write(tmp_path / "m", files)

    Migrator(engine, folder).up()

    rows = observer.execute("SELECT version, filename FROM schema_migrations ORDER BY 1")
    assert sorted(rows.fetchall(), key=lambda r: int(r[0])) == [
        ("00000000000000", "00000000000000-initial-schema.sql"),
        ("0002", "0002_1.7.0_schema.up.sql"),
        ("20230524032337", "20230524032337_add-cbsa.sql.sql"),
        ("20231002232836", "20231002232836_Add-Sms-Consent-Column-To-Users.sql"),
    ]
    names = [s.name for s in Migrator(engine, folder).status()]
    assert names == [
        "initial-schema",
        "1.7.0_schema",
        "add-cbsa.sql",
        "Add-Sms-Consent-Column-To-Users",
    ]


def test_lint_does_not_flag_the_wrapper_sqlmig_runs_as_its_transaction(tmp_path: Path) -> None:
    from sqlmig.lint import lint
    from sqlmig.validation import validate_files

    wrapped = "BEGIN;\nCREATE TABLE a (id bigint PRIMARY KEY);\nALTER TABLE a ADD COLUMN b text;\n"
    folder = write(tmp_path / "m", {"0001_a.up.sql": wrapped + "COMMIT;\n"})

    report = lint(validate_files(folder))

    assert [f.rule for f in report.findings if f.rule == "transaction-nesting"] == []

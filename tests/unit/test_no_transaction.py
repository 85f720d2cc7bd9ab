"""Statements PostgreSQL refuses inside a transaction, found in a transactional script
by validation (no database), each at its line, with the directive that fixes it; and
the statements that look alike but are fine, left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from no_transaction_cases import FINE, REFUSED

from sqlmig.errors import MigrationFileError
from sqlmig.validation import validate_files

DIRECTIVE = "add `-- sqlmig:no-transaction` to the leading comments of the file"


def refused(tmp_path: Path, sql: str, name: str = "0001_a.up.sql") -> list[tuple[int | None, str]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(sql, encoding="utf-8")
    try:
        validate_files(tmp_path)
    except MigrationFileError as exc:
        return [(p.line, p.problem) for p in exc.problems]
    return []


@pytest.mark.parametrize(("statement", "named"), REFUSED)
def test_each_statement_that_cannot_run_in_a_transaction_is_refused_at_its_line(
    tmp_path: Path, statement: str, named: str
) -> None:
    sql = f"-- what it does\nCREATE TABLE a (id bigint);\n\n/* then */ {statement};\nSELECT 1;\n"

    assert refused(tmp_path, sql) == [
        (
            4,
            f"{named} cannot run inside a transaction, and sqlmig runs this file in one: "
            f"{DIRECTIVE} (its statements then run one by one, each on its own)",
        )
    ]


@pytest.mark.parametrize("statement", [s for s, _ in REFUSED])
def test_the_same_statements_are_fine_in_a_no_transaction_file(
    tmp_path: Path, statement: str
) -> None:
    assert refused(tmp_path, f"-- sqlmig:no-transaction\n{statement};\n") == []


@pytest.mark.parametrize("statement", FINE)
def test_look_alikes_that_run_in_a_transaction_are_left_alone(
    tmp_path: Path, statement: str
) -> None:
    assert refused(tmp_path, f"{statement};\nUPDATE t SET a = 1 WHERE b = 'sad';\n") == []


def test_a_new_enum_value_used_later_in_the_transaction_is_refused_at_the_use(
    tmp_path: Path,
) -> None:
    sql = (
        "ALTER TYPE mood ADD VALUE 'happy';\n"
        "-- 'happy' in a comment is no use\n"
        "UPDATE people\n"
        "   SET feeling = 'happy'\n"
        " WHERE feeling = 'fine';\n"
    )

    assert refused(tmp_path, sql) == [
        (
            4,
            "the enum value 'happy' is used in the transaction that adds it (ALTER TYPE ... "
            "ADD VALUE at line 1); PostgreSQL refuses that until the ALTER TYPE commits: move "
            f"this statement to a later migration, or {DIRECTIVE}",
        )
    ]


def test_a_single_file_names_lines_of_the_whole_file_and_checks_only_transactional_parts(
    tmp_path: Path,
) -> None:
    sql = (
        "-- migrate:up\n"
        "CREATE TABLE a (id bigint);\n"
        "CREATE INDEX CONCURRENTLY a_id ON a (id);\n"
        "-- migrate:down\n"
        "DROP INDEX CONCURRENTLY a_id;\n"
    )

    found = refused(tmp_path, sql, "0001_a.sql")

    assert [line for line, _ in found] == [3, 5]
    assert all(problem.startswith(("CREATE INDEX", "DROP INDEX")) for _, problem in found)


def test_every_statement_of_every_file_is_listed_at_once(tmp_path: Path) -> None:
    sql = "VACUUM;\nCREATE INDEX CONCURRENTLY i ON t (a);\nALTER SYSTEM SET work_mem = '1MB';\n"

    assert [line for line, _ in refused(tmp_path, sql)] == [1, 2, 3]

"""Checks on the SQL of every script before anything runs: open literals, transaction control."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import write
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlmig.errors import FileProblem, MigrationFileError
from sqlmig.source import Script
from sqlmig.validation import script_problems, validate_files

NO_TRANSACTION = "-- sqlmig:no-transaction\n"


def problems(directory: Path, files: dict[str, str]) -> list[FileProblem]:
    """Write the files and return what validate_files refuses (empty if none)."""
    try:
        validate_files(write(directory, files))
    except MigrationFileError as exc:
        return exc.problems
    return []


def control(keyword: str) -> str:
    return (
        f"{keyword} inside a migration that sqlmig runs in its own transaction would end "
        "that transaction half-way; remove it (sqlmig commits for you), or add "
        "`-- sqlmig:no-transaction` to manage transactions yourself"
    )


# --- unterminated literals and comments --------------------------------------------------


@pytest.mark.parametrize(
    ("opening", "what"),
    [
        ("'unfinished", "quoted string"),
        ("E'it\\'s", "escape string"),
        ('"unfinished', "quoted identifier"),
        ("$body$ BEGIN", "dollar-quoted string $body$"),
        ("$$ BEGIN", "dollar-quoted string $$"),
        ("/* open /* nested */", "block comment"),
    ],
)
def test_an_unterminated_literal_is_refused_at_the_line_where_it_opens(
    tmp_path: Path, opening: str, what: str
) -> None:
    sql = f"CREATE TABLE a (id int);\n-- a comment\nSELECT {opening}\n;\nSELECT 2;\n"

    found = problems(tmp_path, {"0001_a.up.sql": sql})

    assert found == [
        FileProblem(
            str(tmp_path / "0001_a.up.sql"),
            f"unterminated {what}: it opens here and never closes",
            3,
        )
    ]
    assert str(found[0]).startswith(f"{tmp_path / '0001_a.up.sql'}:3: unterminated {what}")


def test_an_unterminated_literal_in_a_single_file_is_located_in_the_whole_file(
    tmp_path: Path,
) -> None:
    sql = (
        "-- A dbmate migration.\n"
        "\n"
        "-- migrate:up\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $fn$\n"
        "  SELECT 1;\n"
        "-- migrate:down\n"
        "DROP FUNCTION f;\n"
        "SELECT 'open\n"
    )

    found = problems(tmp_path, {"0001_f.sql": sql})

    assert [(p.line, p.problem) for p in found] == [
        (4, "unterminated dollar-quoted string $fn$: it opens here and never closes"),
        (8, "unterminated quoted string: it opens here and never closes"),
    ]


def test_closed_literals_full_of_quotes_and_semicolons_are_fine(tmp_path: Path) -> None:
    sql = (
        "SELECT 'it''s; fine', E'\\'; ok', \"odd \"\" name;\", $$ ' $$, $t$ $$ ' $t$;\n"
        "/* a /* nested */ ' comment */ -- and a ' line comment\n"
        "SELECT 1;\n"
    )
    assert problems(tmp_path, {"0001_a.up.sql": sql}) == []


# --- transaction control ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "keyword"),
    [
        ("COMMIT", "COMMIT"),
        ("commit work", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("rollback transaction", "ROLLBACK"),
        ("BEGIN", "BEGIN"),
        ("begin isolation level serializable", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("END", "END"),
        ("ABORT", "ABORT"),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("/* why */ Commit", "COMMIT"),
    ],
)
def test_transaction_control_is_refused_in_a_transactional_script(
    tmp_path: Path, statement: str, keyword: str
) -> None:
    sql = f"CREATE TABLE a (id int);\n\n  {statement};\nCREATE TABLE b (id int);\n"

    found = problems(tmp_path, {"0001_a.up.sql": sql})

    assert found == [FileProblem(str(tmp_path / "0001_a.up.sql"), control(keyword), 3)]


@pytest.mark.parametrize(
    "statement",
    ["COMMIT", "ROLLBACK", "BEGIN", "END", "START TRANSACTION", "ABORT"],
)
def test_transaction_control_is_allowed_in_a_no_transaction_script(
    tmp_path: Path, statement: str
) -> None:
    sql = f"{NO_TRANSACTION}BEGIN;\nCREATE TABLE a (id int);\n{statement};\nCOMMIT;\n"
    assert problems(tmp_path, {"0001_a.up.sql": sql}) == []


@pytest.mark.parametrize(
    ("sql", "keyword", "line"),
    [
        ("BEGIN;\nCREATE TABLE a (id int);\n", "BEGIN", 2),
        ("SELECT 1;\nstart transaction;\nCOMMIT;\nBEGIN;\nSELECT 2;\n", "BEGIN", 5),
        ("BEGIN;\nSELECT 1;\nBEGIN;\nSELECT 2;\n", "BEGIN", 2),
        ("/* go */ START TRANSACTION;\nSELECT 1;\n", "START TRANSACTION", 2),
    ],
)
def test_a_no_transaction_script_that_leaves_a_transaction_open_is_refused(
    tmp_path: Path, sql: str, keyword: str, line: int
) -> None:
    found = problems(tmp_path, {"0001_a.up.sql": NO_TRANSACTION + sql})

    assert found == [
        FileProblem(
            str(tmp_path / "0001_a.up.sql"),
            f"{keyword} opens a transaction that the script never ends: sqlmig runs this "
            "script outside a transaction and cannot commit or record it while one is open; "
            "add COMMIT after the statements it should cover",
            line,
        )
    ]


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {"0001_a.sql": "-- migrate:up transaction:false\nBEGIN;\nCOMMIT;\n"}, id="dbmate"
        ),
        pytest.param(
            {"0001_a.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nBEGIN;\nCOMMIT;\n"},
            id="goose",
        ),
    ],
)
def test_transaction_control_is_allowed_in_dbmate_and_goose_no_transaction_forms(
    tmp_path: Path, files: dict[str, str]
) -> None:
    assert problems(tmp_path, files) == []


@pytest.mark.parametrize(
    "statement",
    [
        "SAVEPOINT before_insert",
        "RELEASE SAVEPOINT before_insert",
        "RELEASE before_insert",
        "ROLLBACK TO SAVEPOINT before_insert",
        "ROLLBACK TO before_insert",
        "rollback work to savepoint before_insert",
        "PREPARE transaction AS SELECT 1",
        "PREPARE transaction (int) AS SELECT $1",
    ],
)
def test_savepoints_and_lookalikes_are_allowed_in_a_transactional_script(
    tmp_path: Path, statement: str
) -> None:
    sql = f"SAVEPOINT before_insert;\n{statement};\n"
    assert problems(tmp_path, {"0001_a.up.sql": sql}) == []


def test_begin_and_end_inside_function_bodies_are_not_transaction_control(
    tmp_path: Path,
) -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  RETURN 1;\nEND;\n$$;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN true THEN 1 END;\nEND;\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "-- COMMIT in a comment\n"
        "SELECT 'COMMIT; ROLLBACK';\n"
    )
    assert problems(tmp_path, {"0001_a.up.sql": sql}) == []


def test_down_scripts_are_checked_and_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\nCOMMIT;\n",
            "0001_a.down.sql": "DROP TABLE a;\nROLLBACK;\n",
            "0002_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"
            "-- migrate:down\nBEGIN;\nDROP TABLE b;\nSELECT 'x\n",
        },
    )

    assert [
        (Path(p.path).name, p.line, p.problem.split(":")[0].split(" inside")[0]) for p in found
    ] == [  # sorted by file, then line
        ("0001_a.down.sql", 2, "ROLLBACK"),
        ("0001_a.up.sql", 2, "COMMIT"),
        ("0002_b.sql", 4, "BEGIN"),
        ("0002_b.sql", 6, "unterminated quoted string"),
    ]


def test_the_error_message_names_every_file_and_line(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "0001_a.up.sql").write_text("COMMIT;\n", encoding="utf-8")

    with pytest.raises(MigrationFileError) as caught:
        validate_files(directory)

    assert str(caught.value) == (
        "1 problem in the migration files; nothing was run. Fix the files and run again:\n"
        f"  {directory / '0001_a.up.sql'}:1: {control('COMMIT')}"
    )


# --- one run reports everything ---------------------------------------------------------


def test_validate_files_reports_file_and_script_problems_together_sorted_by_file(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    files = {
        "0001_a.up.sql": b"CREATE TABLE a (id int);\nCOMMIT;\n",
        "1_b.up.sql": b"SELECT 'open\n",  # a duplicate version, and unterminated too
        "0002_c.down.sql": b"DROP TABLE c;\n",
        "0003_d.up.sql": b"SELECT \xff;\n",
        "0004_e.up.sql": b"SELECT 1;\n\\set x 1\n",
        "0005_f.up.sql": b"SELECT 1;\n$$ never closed\n",
        "Bad.sql": b"SELECT 1;\n",
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)

    with pytest.raises(MigrationFileError) as caught:
        validate_files(directory)

    assert [(Path(p.path).name, p.line, p.problem[:30]) for p in caught.value.problems] == [
        ("0001_a.up.sql", None, "version 1 is used by more than"),
        ("0001_a.up.sql", 2, "COMMIT inside a migration that"),
        ("0002_c.down.sql", None, "down script without its up scr"),
        ("0003_d.up.sql", 1, "is not valid UTF-8 (byte 0xff "),
        ("0004_e.up.sql", 2, "psql meta-command \\set cannot "),
        ("0005_f.up.sql", 2, "unterminated dollar-quoted str"),
        ("1_b.up.sql", 1, "unterminated quoted string: it"),
        ("Bad.sql", None, "looks like a migration (ends i"),
    ]


def test_validate_files_returns_the_migrations_when_all_is_well(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "0002_b.up.sql").write_text("SELECT 2;\n", encoding="utf-8")
    (directory / "0001_a.sql").write_text("-- migrate:up\nSELECT 1;\n", encoding="utf-8")

    assert [m.version for m in validate_files(directory)] == ["0001", "0002"]


# --- transaction control is found only where it runs -----------------------------------

_CONTROL = ["COMMIT", "ROLLBACK", "BEGIN", "END", "ABORT", "START TRANSACTION"]


def _hidden(word: str) -> st.SearchStrategy[str]:
    """``word`` where the server never sees it as a command: in a literal or comment."""
    return st.sampled_from(
        [
            f"SELECT '{word};'",
            f"SELECT E'\\'{word};'",
            f'SELECT 1 AS "{word};"',
            f"SELECT $${word};$$",
            f"SELECT $t${word}; $$ {word};$t$",
            f"DO $$BEGIN {word}; END$$",
            f"-- {word};\nSELECT 1",
            f"/* {word}; /* nested */ {word}; */ SELECT 1",
            f"SELECT 1 /* ; {word} */",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        ]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["SELECT 1", "CREATE TABLE t (id int)", "SAVEPOINT s"]),
            st.sampled_from(_CONTROL).flatmap(_hidden),
        ),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([";\n", ";", " ;\n\n", ";\r\n"]),
)
def test_transaction_words_inside_literals_and_comments_are_never_refused(
    statements: list[str], separator: str
) -> None:
    script = Script(separator.join(statements) + separator, Path("1_a.up.sql"), 1, True)
    assert script_problems(script) == []


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["SELECT 1", "SELECT ';'", "-- c\nSELECT 2"]), max_size=4),
    st.sampled_from(_CONTROL),
    st.lists(st.sampled_from(["SELECT 3", "SELECT $$;$$"]), max_size=3),
)
def test_transaction_control_is_refused_at_its_own_line(
    before: list[str], keyword: str, after: list[str]
) -> None:
    sql = "".join(f"{s};\n" for s in [*before, keyword.lower(), *after])
    line = 1 + sum(s.count("\n") + 1 for s in before)

    found = script_problems(Script(sql, Path("1_a.up.sql"), 10, True))

    assert [(p.line, p.problem) for p in found] == [(9 + line, control(keyword))]


# --- a script's own BEGIN ... COMMIT -------------------------------------------------------


@pytest.mark.parametrize(
    ("begin", "end"),
    [
        ("BEGIN", "COMMIT"),
        ("begin work", "end transaction"),
        ("START TRANSACTION", "END"),
        ("Begin Transaction", "COMMIT AND NO CHAIN"),
        ("/* all of it */ BEGIN", "COMMIT -- done"),
    ],
)
def test_a_script_wrapped_in_one_transaction_is_valid(tmp_path: Path, begin: str, end: str) -> None:
    sql = f"-- golang-migrate style\n{begin};\nCREATE TABLE a (id int);\n{end};\n"
    assert problems(tmp_path, {"0001_a.up.sql": sql}) == []


def test_a_commit_in_the_middle_of_a_wrapped_script_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    sql = "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n"

    found = problems(tmp_path, {"0001_a.up.sql": sql})

    path = str(tmp_path / "0001_a.up.sql")
    middle = (
        "inside the script's own BEGIN ... COMMIT (lines 1-6) would end that transaction "
        "half-way: sqlmig runs a wrapped script as one transaction with its tracking row; "
        "keep one BEGIN ... COMMIT around the whole script, or add "
        "`-- sqlmig:no-transaction` to run its transactions as written"
    )
    assert found == [
        FileProblem(path, f"COMMIT {middle}", 3),
        FileProblem(path, f"BEGIN {middle}", 4),
    ]


def test_a_wrapper_with_transaction_modes_is_refused_with_the_way_to_keep_them(
    tmp_path: Path,
) -> None:
    sql = "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n"

    found = problems(tmp_path, {"0001_a.up.sql": sql})

    assert found == [
        FileProblem(
            str(tmp_path / "0001_a.up.sql"),
            "BEGIN ISOLATION LEVEL SERIALIZABLE opens the script's own transaction with modes "
            "that sqlmig's BEGIN, which takes its place, would not set; write BEGIN; and make "
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; the first statement inside it",
            1,
        )
    ]


def test_a_wrapper_that_chains_into_another_transaction_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, {"0001_a.up.sql": "BEGIN;\nSELECT 1;\nCOMMIT AND CHAIN;\n"})

    assert [(p.line, p.problem.split(";")[0]) for p in found] == [
        (3, "COMMIT AND CHAIN ends the script's own transaction and starts another")
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN;\nSELECT 1;\n",  # never committed
        "SELECT 1;\nBEGIN;\nSELECT 2;\nCOMMIT;\n",  # not around the whole script
        "BEGIN;\nSELECT 1;\nROLLBACK;\n",  # a rehearsal, not a migration
    ],
)
def test_a_transaction_that_does_not_wrap_the_whole_script_is_still_refused(
    tmp_path: Path, sql: str
) -> None:
    found = problems(tmp_path, {"0001_a.up.sql": sql})
    assert found
    assert all(p.problem.split(" inside")[1].startswith(" a migration that sqlmig") for p in found)

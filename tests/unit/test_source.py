"""How a migrations directory becomes migrations: names, formats, checksums, problems."""

from __future__ import annotations

import os
import re
import shutil
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlmig.errors import FileProblem, MigrationFileError, UsageError
from sqlmig.source import (
    CHECKSUM_ALGORITHM,
    Migration,
    ParsedName,
    checksum,
    load_migrations,
    parse_filename,
)

NAME_CHARS = string.ascii_lowercase + string.digits + "_-"
NO_VERSION = (
    "looks like a migration (ends in .sql) but its name does not start with a version "
    "(digits): migrations are named <version>_<name>.up.sql and .down.sql "
    "(golang-migrate) or <version><name>.sql (dbmate, goose); rename it, "
    "or move it out of the migrations directory"
)


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block as an ordinary user: root reads any file, so as root (as in CI)
    the effective uid drops to nobody and comes back afterwards."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory that nobody can reach (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, str):
        path.write_bytes(text.encode("utf-8"))
    else:
        path.write_bytes(text)
    return path


def load_one(directory: Path) -> Migration:
    (migration,) = load_migrations(directory)
    return migration


def problems_of(directory: Path) -> list[FileProblem]:
    with pytest.raises(MigrationFileError) as caught:
        load_migrations(directory)
    return caught.value.problems


def only_problem(directory: Path) -> FileProblem:
    (problem,) = problems_of(directory)
    return problem


# --- file names --------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("0001_create_users.up.sql", ParsedName("0001", "create_users", "up")),
        ("0001_create_users.down.sql", ParsedName("0001", "create_users", "down")),
        ("1_init.sql", ParsedName("1", "init", "single")),
        ("20261124153000_add-index.sql", ParsedName("20261124153000", "add-index", "single")),
        ("000000000000042_x.up.sql", ParsedName("000000000000042", "x", "up")),
        ("7_up.sql", ParsedName("7", "up", "single")),
        ("0001_.up.sql", ParsedName("0001", "", "up")),
        ("0002_1.7.0_schema.up.sql", ParsedName("0002", "1.7.0_schema", "up")),
        ("3_a.up.x.down.sql", ParsedName("3", "a.up.x", "down")),
        ("4_a.up.SQL", ParsedName("4", "a", "up")),
        ("1_Create.sql", ParsedName("1", "Create", "single")),
        ("001-init.sql", ParsedName("001", "init", "single")),
        (
            "00000000000000-initial-schema.sql",
            ParsedName("00000000000000", "initial-schema", "single"),
        ),
        ("20230524032337_add-cbsa.sql.sql", ParsedName("20230524032337", "add-cbsa.sql", "single")),
        ("42.sql", ParsedName("42", "", "single")),
        ("5abc.sql", ParsedName("5", "abc", "single")),
    ],
)
def test_good_names_parse_into_version_name_and_kind(filename: str, expected: ParsedName) -> None:
    assert parse_filename(filename) == expected


@pytest.mark.parametrize(
    "filename", ["README.md", ".gitkeep", ".1_hidden.up.sql", "1_a.up.sql~", "notes.txt", ".sql"]
)
def test_files_that_are_not_sql_are_not_migrations(filename: str) -> None:
    assert parse_filename(filename) is None


@pytest.mark.parametrize("filename", ["abc.up.sql", "V2__add_email.sql", "_1_a.sql", "+1_a.sql"])
def test_a_sql_file_without_a_leading_version_is_a_problem(filename: str) -> None:
    with pytest.raises(MigrationFileError) as caught:
        parse_filename(filename)
    assert caught.value.problems == [FileProblem(filename, NO_VERSION)]


@pytest.mark.parametrize(
    ("filename", "problem"),
    [
        (
            "12_x.UP.sql",
            "is ambiguous: it ends like a golang-migrate up script, but golang-migrate skips it "
            "(its rule is <version>_<name>.up.sql, with _ after the version and .up in lower "
            "case) while dbmate would run it as a single-file migration; rename it "
            "12_x.up.sql or 12_x.sql",
        ),
        ("3-a.down.sql", "rename it 3_a.down.sql or 3_a.sql"),
        ("3.up.sql", "rename it 3_<name>.up.sql or 3_<name>.sql"),
        (
            "1_a.up.b.sql",
            "is ambiguous: golang-migrate reads it as the up script of version 1 (extension "
            ".b.sql), dbmate and goose as a single-file migration; rename it 1_a.up.sql for "
            "the first, or take .up out of its name for the second",
        ),
        (
            "1_a.SQL",
            "ends in .SQL, not .sql: dbmate and goose skip such a file, so sqlmig does not "
            "guess; rename it 1_a.sql",
        ),
    ],
)
def test_a_name_the_tools_would_read_differently_is_a_problem(filename: str, problem: str) -> None:
    with pytest.raises(MigrationFileError) as caught:
        parse_filename(filename)
    (found,) = caught.value.problems
    assert found.path == filename
    assert problem in found.problem


def test_a_version_beyond_bigint_is_a_problem() -> None:
    assert parse_filename("9223372036854775807_max.sql") is not None
    with pytest.raises(MigrationFileError, match="version 9223372036854775808 is too large"):
        parse_filename("9223372036854775808_over.sql")


@given(
    version=st.from_regex(r"\A[0-9]{1,19}\Z").filter(lambda v: int(v) < 2**63),
    name=st.text(NAME_CHARS, min_size=1, max_size=60),
    suffix=st.sampled_from([".up.sql", ".down.sql", ".sql"]),
)
def test_any_valid_name_parses_back(version: str, name: str, suffix: str) -> None:
    parsed = parse_filename(f"{version}_{name}{suffix}")
    assert parsed is not None
    assert (parsed.version, parsed.name, parsed.number) == (version, name, int(version))


# --- loading and ordering ----------------------------------------------------


def test_migrations_are_ordered_by_version_value_not_text(tmp_path: Path) -> None:
    for name in ["10_c.up.sql", "9_b.sql", "0002_a.up.sql", "20261124153000_d.up.sql"]:
        body = "-- migrate:up\nSELECT 1;\n" if name.endswith("_b.sql") else "SELECT 1;\n"
        write(tmp_path, name, body)
    migrations = load_migrations(tmp_path)
    assert [m.version for m in migrations] == ["0002", "9", "10", "20261124153000"]
    assert [m.number for m in migrations] == [2, 9, 10, 20261124153000]
    assert [m.filename for m in migrations] == [
        "0002_a.up.sql",
        "9_b.sql",
        "10_c.up.sql",
        "20261124153000_d.up.sql",
    ]


def test_pair_form_reads_up_and_optional_down(tmp_path: Path) -> None:
    write(tmp_path, "0001_users.up.sql", "CREATE TABLE users (id int);\n")
    write(tmp_path, "0001_users.down.sql", "DROP TABLE users;\n")
    write(tmp_path, "0002_no_down.up.sql", "SELECT 1;\n")
    first, second = load_migrations(tmp_path)
    assert (first.version, first.name) == ("0001", "users")
    assert first.up.sql == "CREATE TABLE users (id int);\n"
    assert first.up.path == tmp_path / "0001_users.up.sql"
    assert (first.up.first_line, first.up.transactional) == (1, True)
    assert first.down is not None
    assert first.down.sql == "DROP TABLE users;\n"
    assert first.down.path == tmp_path / "0001_users.down.sql"
    assert second.down is None


def test_an_empty_down_file_is_a_down_that_does_nothing(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    write(tmp_path, "1_a.down.sql", "")
    down = load_one(tmp_path).down
    assert down is not None
    assert down.sql == ""


def test_files_that_are_not_migrations_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    write(tmp_path, "README.md", "# migrations\n")
    write(tmp_path, ".gitkeep", "")
    write(tmp_path, ".2_hidden.up.sql", "SELECT 2;\n")
    write(tmp_path, "1_a.up.sql.orig", "SELECT 3;\n")
    (tmp_path / "archive.sql").mkdir()
    (tmp_path / "old").mkdir()
    write(tmp_path / "old", "3_old.up.sql", "SELECT 4;\n")
    assert [m.filename for m in load_migrations(tmp_path)] == ["1_a.up.sql"]


def test_an_empty_directory_has_no_migrations(tmp_path: Path) -> None:
    assert load_migrations(tmp_path) == []


def test_migrations_are_immutable(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    migration = load_one(tmp_path)
    with pytest.raises(AttributeError):
        migration.version = "2"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        migration.up.sql = "DROP TABLE users;"  # type: ignore[misc]


# --- single-file form ----------------------------------------------------------

DBMATE = """\
-- a comment before the first marker is allowed

-- migrate:up
CREATE TABLE users (id int);
CREATE INDEX users_id ON users (id);

-- migrate:down
DROP TABLE users;
"""

GOOSE = """\
-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION f();
"""


def test_dbmate_file_splits_into_sections_without_marker_lines(tmp_path: Path) -> None:
    write(tmp_path, "20261124153000_users.sql", DBMATE)
    migration = load_one(tmp_path)
    assert migration.up.sql == (
        "CREATE TABLE users (id int);\nCREATE INDEX users_id ON users (id);\n\n"
    )
    assert migration.up.first_line == 4
    assert migration.down is not None
    assert migration.down.sql == "DROP TABLE users;\n"
    assert migration.down.first_line == 8
    assert migration.up.transactional and migration.down.transactional
    assert migration.filename == "20261124153000_users.sql"
    assert migration.checksum == checksum(migration.up.sql)


def test_goose_file_keeps_statement_annotations_as_comments(tmp_path: Path) -> None:
    write(tmp_path, "00001_func.sql", GOOSE)
    migration = load_one(tmp_path)
    assert migration.up.sql.startswith("-- +goose StatementBegin\nCREATE FUNCTION")
    assert migration.up.sql.endswith("-- +goose StatementEnd\n\n")
    assert migration.up.first_line == 2
    assert migration.down is not None
    assert migration.down.sql == "DROP FUNCTION f();\n"
    assert migration.down.first_line == 7


def test_goose_annotations_are_case_insensitive_at_the_start_of_a_line(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "--  +goose up  \nSELECT 1;\n--+goose DOWN\nSELECT 2;\n")
    migration = load_one(tmp_path)
    assert migration.up.sql == "SELECT 1;\n"
    assert migration.down is not None
    assert migration.down.sql == "SELECT 2;\n"


def test_an_indented_marker_inside_a_statement_is_text(tmp_path: Path) -> None:
    body = "CREATE FUNCTION f() RETURNS text AS $$\n  -- migrate:down\n  SELECT 'x';\n$$"
    body += " LANGUAGE sql;\n"
    write(tmp_path, "1_a.sql", "-- migrate:up\n" + body + "-- migrate:down\nDROP FUNCTION f();\n")
    migration = load_one(tmp_path)
    assert migration.up.sql == body
    assert migration.down is not None
    assert migration.down.sql == "DROP FUNCTION f();\n"


@pytest.mark.parametrize(
    "marker", ["  -- migrate:down", "-- Migrate:Down", "\t-- +goose Down", "-- +GOOSE Down"]
)
def test_a_marker_that_the_tools_would_not_read_between_statements_is_a_problem(
    tmp_path: Path, marker: str
) -> None:
    up = "-- migrate:up" if "migrate" in marker.lower() else "-- +goose Up"
    write(tmp_path, "1_a.sql", f"{up}\nCREATE TABLE a (id int);\n{marker}\nDROP TABLE a;\n")
    problem = only_problem(tmp_path)
    assert problem.line == 3
    assert problem.problem.startswith("looks like a section marker but dbmate and goose do not")
    assert "the SQL after it stays in the up section" in problem.problem


def test_an_unknown_goose_annotation_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Dwon\nSELECT 2;\n")
    problem = only_problem(tmp_path)
    assert problem.line == 3
    assert problem.problem.startswith("unknown goose annotation '-- +goose Dwon': goose refuses")


def test_a_down_marker_in_an_up_script_is_a_problem(tmp_path: Path) -> None:
    text = "-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\nDROP TABLE a;\n"
    write(tmp_path, "1_a.up.sql", text)
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.up.sql"),
        "has a down marker, but its name makes it golang-migrate's up script, which runs "
        "whole: its down section would run too; rename it 1_a.sql to make it a single-file "
        "migration",
        3,
    )


def test_single_file_without_down_section_has_no_down(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up\nSELECT 1;\n")
    assert load_one(tmp_path).down is None


def test_single_file_with_crlf_line_endings(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up\r\nSELECT 1;\r\n-- migrate:down\r\nSELECT 2;\r\n")
    migration = load_one(tmp_path)
    assert migration.up.sql == "SELECT 1;\r\n"
    assert migration.down is not None
    assert (migration.down.sql, migration.down.first_line) == ("SELECT 2;\r\n", 4)
    assert migration.checksum == checksum("SELECT 1;\n")


def test_first_line_maps_a_line_inside_a_section_to_the_file(tmp_path: Path) -> None:
    lines = ["-- header", "-- migrate:up", "SELECT 1;", "", "SELECT broken;", "-- migrate:down"]
    write(tmp_path, "1_a.sql", "\n".join(lines) + "\nSELECT 2;\n")
    up = load_one(tmp_path).up
    line_in_sql = up.sql.splitlines().index("SELECT broken;") + 1
    assert lines[up.first_line + line_in_sql - 1 - 1] == "SELECT broken;"


# --- no-transaction directives -------------------------------------------------


def test_dbmate_transaction_false_applies_to_its_section_only(tmp_path: Path) -> None:
    text = "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
    write(tmp_path, "1_a.sql", text + "-- migrate:down\nDROP INDEX i;\n")
    write(tmp_path, "2_b.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down  transaction:false \n")
    first, second = load_migrations(tmp_path)
    assert first.down is not None and second.down is not None
    assert (first.up.transactional, first.down.transactional) == (False, True)
    assert (second.up.transactional, second.down.transactional) == (True, False)


def test_goose_no_transaction_applies_to_both_sections(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- +goose NO TRANSACTION\n" + GOOSE)
    migration = load_one(tmp_path)
    assert migration.down is not None
    assert not migration.up.transactional
    assert not migration.down.transactional


def test_sqlmig_no_transaction_in_the_leading_comments(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "-- build the index online\n-- sqlmig:no-transaction\n\nCREATE")
    write(tmp_path, "1_a.down.sql", "DROP INDEX i;\n")
    write(tmp_path, "2_b.sql", "-- migrate:up\n-- sqlmig:no-transaction\nSELECT 1;\n")
    write(tmp_path, "3_c.sql", "-- sqlmig:no-transaction\n-- migrate:up\nSELECT 1;\n")
    first, second, third = load_migrations(tmp_path)
    assert first.down is not None
    assert (first.up.transactional, first.down.transactional) == (False, True)
    assert not second.up.transactional
    assert not third.up.transactional


def test_a_directive_after_the_first_statement_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n-- sqlmig:no-transaction\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.up.sql"),
        "'-- sqlmig:no-transaction' after the first statement has no effect; "
        "move it to the comments at the top of the script",
        2,
    )


def test_an_unknown_directive_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "-- sqlmig:no-transactions\nSELECT 1;\n")
    problem = only_problem(tmp_path)
    assert problem.problem == (
        "unknown directive 'sqlmig:no-transactions'; the only one is 'sqlmig:no-transaction'"
    )
    assert problem.line == 1


def test_every_misused_directive_in_a_script_is_reported_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "-- sqlmig:nontx\n\nSELECT 1;\n\n-- sqlmig:no-transaction\n")
    assert [(p.line, p.problem.split(";")[0]) for p in problems_of(tmp_path)] == [
        (1, "unknown directive 'sqlmig:nontx'"),
        (5, "'-- sqlmig:no-transaction' after the first statement has no effect"),
    ]


def test_a_file_name_that_is_not_utf8_is_reported_printably(tmp_path: Path) -> None:
    os.close(os.open(os.fsencode(tmp_path) + b"/1_caf\xe9.up.sql", os.O_CREAT | os.O_WRONLY))
    problem = only_problem(tmp_path)
    assert problem.path == f"{tmp_path}/1_caf\\xe9.up.sql"
    str(problem).encode("utf-8")  # would raise on a lone surrogate


def test_an_unknown_dbmate_option_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up transaction:flase\nSELECT 1;\n")
    problem = only_problem(tmp_path)
    assert "unknown option 'transaction:flase'" in problem.problem
    assert problem.line == 1


def test_goose_envsub_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${X}';\n")
    assert "ENVSUB" in only_problem(tmp_path).problem


# --- checksums -------------------------------------------------------------------


def test_checksum_format() -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", checksum("SELECT 1;\n"))
    assert CHECKSUM_ALGORITHM == "sha256"
    # sha256 of the empty string, so the algorithm really is plain SHA-256
    assert checksum("") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


def test_checksum_ignores_bom_and_line_endings() -> None:
    lf = "CREATE TABLE t (id int);\nSELECT 'é';\n"
    assert checksum(lf) == checksum(lf.replace("\n", "\r\n"))
    assert checksum(lf) == checksum(lf.replace("\n", "\r"))
    assert checksum(lf) == checksum("\ufeff" + lf)


def test_checksum_differs_for_different_content() -> None:
    assert checksum("SELECT 1;\n") != checksum("SELECT 2;\n")
    assert checksum("SELECT 1;\n") != checksum("SELECT 1; \n")


def test_checksum_of_a_large_script_across_hashing_chunks() -> None:
    # a CR LF pair straddles the 1 MiB chunk boundary used when normalising
    lf = "x" * ((1 << 20) - 1) + "\n" + "SELECT 1;\n" * 200_000
    assert checksum(lf.replace("\n", "\r\n")) == checksum(lf)
    assert checksum(lf.replace("\n", "\r")) == checksum(lf)


@given(st.text().map(lambda text: text.replace("\r", "")))
def test_checksum_is_the_same_with_crlf(text: str) -> None:
    assert checksum(text) == checksum(text.replace("\n", "\r\n"))


def test_files_with_bom_and_crlf_have_the_lf_checksum(tmp_path: Path) -> None:
    write(tmp_path, "1_lf.up.sql", "SELECT 1;\nSELECT 2;\n")
    write(tmp_path, "2_crlf.up.sql", b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n")
    lf, crlf = load_migrations(tmp_path)
    assert lf.checksum == crlf.checksum == checksum("SELECT 1;\nSELECT 2;\n")
    assert crlf.up.sql == "SELECT 1;\r\nSELECT 2;\r\n"  # BOM removed, line endings as written


def test_bom_is_removed_from_single_file_sections(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", b"\xef\xbb\xbf-- migrate:up\nSELECT 1;\n")
    migration = load_one(tmp_path)
    assert migration.up.sql == "SELECT 1;\n"
    assert migration.up.first_line == 2


# --- problems in files -----------------------------------------------------------


def test_two_files_with_the_same_version_value(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    write(tmp_path, "0001_b.up.sql", "SELECT 1;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "0001_b.up.sql"),
        "version 1 is used by more than one migration (0001_b.up.sql, 1_a.up.sql); "
        "give each migration its own version",
    )


def test_both_forms_for_one_version(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "version 1 has both a single-file migration and an up/down pair "
        "(1_a.sql, 1_a.up.sql); keep one form",
    )


def test_a_down_script_without_its_up_script(tmp_path: Path) -> None:
    write(tmp_path, "1_a.down.sql", "DROP TABLE a;\n")
    write(tmp_path, "2_b.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "2_c.down.sql", "SELECT 1;\n")
    assert problems_of(tmp_path) == [
        FileProblem(
            str(tmp_path / "1_a.down.sql"),
            "down script without its up script 1_a.up.sql; add the up script or delete this file",
        ),
        FileProblem(
            str(tmp_path / "2_c.down.sql"),
            "down script without its up script 2_c.up.sql; add the up script or delete this file",
        ),
    ]


def test_a_down_script_belongs_to_the_up_script_of_its_version(tmp_path: Path) -> None:
    write(tmp_path, "1_create.up.sql", "CREATE TABLE a (id int);\n")
    write(tmp_path, "01_drop.down.sql", "DROP TABLE a;\n")
    migration = load_one(tmp_path)
    assert migration.down is not None
    assert migration.down.path.name == "01_drop.down.sql"


def test_two_down_scripts_for_one_version(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n")
    write(tmp_path, "1_a.down.sql", "SELECT 1;\n")
    write(tmp_path, "1_b.down.sql", "SELECT 1;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.down.sql"),
        "version 1 has more than one down script (1_a.down.sql, 1_b.down.sql); keep one",
    )


def test_a_look_alike_file_in_the_directory(tmp_path: Path) -> None:
    write(tmp_path, "init.sql", "SELECT 1;\n")
    assert only_problem(tmp_path) == FileProblem(str(tmp_path / "init.sql"), NO_VERSION)


@pytest.mark.parametrize("text", ["", "  \n\t\n", "\ufeff\r\n"])
def test_a_blank_up_script_is_a_problem(tmp_path: Path, text: str) -> None:
    write(tmp_path, "1_a.up.sql", text)
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.up.sql"),
        "the up script is empty (0 bytes or only blank lines); write its SQL, or a comment "
        "saying why it has none (it is then recorded without running anything)",
    )


@pytest.mark.parametrize("text", ["-- intentionally empty\n", "/* keeps the numbering */"])
def test_a_comment_only_up_script_is_a_migration_that_runs_nothing(
    tmp_path: Path, text: str
) -> None:
    write(tmp_path, "1_a.up.sql", text)
    migration = load_one(tmp_path)
    assert migration.up.empty
    assert migration.notes == ("up: no SQL, only comments: runs nothing and is recorded",)


def test_the_up_script_sqlmig_new_wrote_unedited_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_add_users.up.sql", "-- add_users: up\n\n")
    assert only_problem(tmp_path).problem.startswith(
        "the up script is still what `sqlmig new` wrote; write its SQL"
    )


def test_a_blank_up_section_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up\n\n\n-- migrate:down\nDROP TABLE a;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "the up section is empty (only blank lines); write its SQL, or a comment saying why "
        "it has none (it is then recorded without running anything)",
        1,
    )


def test_a_comment_only_up_section_runs_nothing(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:up\n-- nothing here\n-- migrate:down\n")
    assert load_one(tmp_path).up.empty


# --- a script's own transaction ----------------------------------------------------------


@pytest.mark.parametrize(
    ("begin", "end"),
    [("BEGIN;", "COMMIT;"), ("begin transaction;", "end;"), ("START TRANSACTION;", "COMMIT WORK;")],
)
def test_a_script_wrapped_in_its_own_transaction_is_recognised(
    tmp_path: Path, begin: str, end: str
) -> None:
    text = f"-- wrapped\n{begin}\nCREATE TABLE a (id int);\n{end}\n"
    write(tmp_path, "1_a.up.sql", text)
    migration = load_one(tmp_path)
    wrapper = migration.up.wrapper
    assert wrapper is not None
    assert (wrapper.begin.sql, wrapper.end.sql) == (begin[:-1], end[:-1])
    assert migration.checksum == checksum(text)
    assert migration.notes == (
        f"up: its own {begin[:-1]} ... {end[:-1]} (lines 2-4) is recognised: the statements "
        "between run as sqlmig's one transaction, with the tracking row",
    )


def test_a_no_transaction_script_has_no_wrapper(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "-- sqlmig:no-transaction\nBEGIN;\nSELECT 1;\nCOMMIT;\n")
    assert load_one(tmp_path).up.wrapper is None


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", b"SELECT 1;\nSELECT '\xe9t\xe9';\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.up.sql"),
        "is not valid UTF-8 (byte 0xe9 at byte offset 18); save the file as UTF-8",
        2,
    )


def test_bad_utf8_in_a_single_file_section_counts_the_bom(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", b"\xef\xbb\xbf-- migrate:up\nSELECT 1;\n-- migrate:down\n\xff\n")
    problem = only_problem(tmp_path)
    assert problem.problem.startswith("is not valid UTF-8 (byte 0xff at byte offset 43)")
    assert problem.line == 4


def test_a_dangling_symlink_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "1_a.up.sql").symlink_to(tmp_path / "gone.sql")
    problem = only_problem(tmp_path)
    assert problem.problem.startswith("cannot be read: No such file or directory")
    assert "symlink" in problem.problem


def test_a_symlink_loop_cannot_be_read(tmp_path: Path) -> None:
    (tmp_path / "1_a.up.sql").symlink_to(tmp_path / "2_b.up.sql")
    (tmp_path / "2_b.up.sql").symlink_to(tmp_path / "1_a.up.sql")
    problems = problems_of(tmp_path)
    assert [p.problem.split(" (")[0] for p in problems] == [
        "cannot be read: Too many levels of symbolic links"
    ] * 2


def test_a_file_without_read_permission(open_dir: Path) -> None:
    path = write(open_dir, "1_a.up.sql", "SELECT 1;\n")
    path.chmod(0)
    with as_nobody():
        problem = only_problem(open_dir)
    assert problem == FileProblem(str(path), "cannot be read: Permission denied")


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "1_a.up.sql")
    assert only_problem(tmp_path).problem == "is not a regular file (a FIFO, socket or device)"


def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path, "secret.sql", "SELECT 1;\n")
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "1_a.up.sql").symlink_to(outside)
    assert only_problem(migrations) == FileProblem(
        str(migrations / "1_a.up.sql"),
        f"is a symlink to {outside.resolve()}, outside the migrations directory; "
        "sqlmig does not follow links out of it (copy the file in instead)",
    )


def test_a_symlink_inside_the_directory_is_followed(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    write(tmp_path / "shared", "users.sql", "CREATE TABLE users (id int);\n")
    (tmp_path / "1_users.up.sql").symlink_to(Path("shared") / "users.sql")
    assert load_one(tmp_path).up.sql == "CREATE TABLE users (id int);\n"


def test_a_single_file_without_an_up_section(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "CREATE TABLE a (id int);\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "has no up section: a single-file migration needs a '-- migrate:up' (dbmate) "
        "or '-- +goose Up' (goose) line before its SQL (or rename it 1_a.up.sql)",
    )


def test_a_down_marker_before_the_up_marker(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a();\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "the down marker comes before the up marker (line 3); put the up section first",
        1,
    )


def test_two_up_markers(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Up\nSELECT 2;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "has a second up marker (the first is at line 1); a migration has one up section",
        3,
    )


def test_sql_before_the_up_marker(tmp_path: Path) -> None:
    write(tmp_path, "1_a.sql", "-- setup\nSET search_path = app;\n-- migrate:up\nSELECT 1;\n")
    assert only_problem(tmp_path) == FileProblem(
        str(tmp_path / "1_a.sql"),
        "SQL before the up marker (line 3) belongs to no section; move it below the marker",
        2,
    )


def test_a_psql_meta_command_is_reported_with_its_file_line(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;\n  \\i other.sql\n")
    write(tmp_path, "2_b.sql", "-- migrate:up\nSELECT 1;\n\n\\set ON_ERROR_STOP on\n")
    assert problems_of(tmp_path) == [
        FileProblem(
            str(tmp_path / "1_a.up.sql"),
            "psql meta-command \\i cannot run: sqlmig sends the script to the server, "
            "which does not know psql's backslash commands; write it as SQL",
            2,
        ),
        FileProblem(
            str(tmp_path / "2_b.sql"),
            "psql meta-command \\set cannot run: sqlmig sends the script to the server, "
            "which does not know psql's backslash commands; write it as SQL",
            4,
        ),
    ]


def test_backslash_lines_inside_comments_strings_and_bodies_are_not_meta_commands(
    tmp_path: Path,
) -> None:
    text = """\
/* a comment /* nested */
\\i not-a-command.sql
*/
CREATE FUNCTION f() RETURNS text AS $body$
\\this is plpgsql text
$body$ LANGUAGE sql;
SELECT 'it''s a string
\\with a backslash line', E'esc\\'aped
\\still inside', "quoted
\\ident", $$
\\dollar$$;
-- it's a comment with a quote
SELECT 1;
"""
    write(tmp_path, "1_a.up.sql", text)
    assert load_one(tmp_path).up.sql == text
    write(tmp_path, "2_b.up.sql", text + "\\copy t from 'x.csv'\n")
    assert [p.line for p in problems_of(tmp_path)] == [14]


def test_every_problem_in_the_directory_is_reported_at_once_sorted_by_file(
    tmp_path: Path,
) -> None:
    write(tmp_path, "3_c.up.sql", "")
    write(tmp_path, "1_a.down.sql", "SELECT 1;\n")
    write(tmp_path, "2_B.UP.sql", "SELECT 1;\n")
    write(tmp_path, "4_d.up.sql", b"\xff")
    write(tmp_path, "5_e.up.sql", "SELECT 1;\n")  # fine, but nothing is loaded
    with pytest.raises(MigrationFileError) as caught:
        load_migrations(tmp_path)
    files = [Path(p.path).name for p in caught.value.problems]
    assert files == ["1_a.down.sql", "2_B.UP.sql", "3_c.up.sql", "4_d.up.sql"]
    message = str(caught.value)
    assert message.startswith("4 problems in the migration files; nothing was run.")
    assert f"\n  {tmp_path / '4_d.up.sql'}:1: is not valid UTF-8" in message


FRAGMENTS = st.sampled_from(
    [
        b"-- migrate:up",
        b"-- migrate:down transaction:false",
        b"-- +goose Up",
        b"-- +goose Down",
        b"-- +goose NO TRANSACTION",
        b"-- sqlmig:no-transaction",
        b"  -- migrate:down",
        b"-- +goose Dwon",
        b"BEGIN;",
        b"COMMIT;",
        b"\n",
        b"\r\n",
        b"\r",
        b"SELECT 1;",
        b"/*",
        b"*/",
        b"$$",
        b"'",
        b"E'",
        b"\\i x",
        b"\xef\xbb\xbf",
        b"\xff",
    ]
)


@given(
    content=st.lists(FRAGMENTS | st.binary(max_size=4), max_size=25),
    filename=st.sampled_from(["1_a.sql", "1_a.up.sql"]),
)
def test_any_file_content_loads_or_is_reported_never_crashes(
    content: list[bytes], filename: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        write(Path(directory), filename, b"".join(content))
        try:
            (migration,) = load_migrations(directory)
        except MigrationFileError as error:
            assert error.problems
        else:
            assert migration.checksum == checksum(migration.up.sql)


# --- the directory itself -------------------------------------------------------


def test_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "migrations"
    with pytest.raises(UsageError) as caught:
        load_migrations(missing)
    assert str(caught.value) == (
        f"migrations directory {missing} does not exist; create it or pass directory=DIR"
    )


def test_a_directory_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "migrations", "")
    with pytest.raises(UsageError, match="is not a directory"):
        load_migrations(path)


def test_a_directory_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(UsageError) as caught:
        load_migrations(str(tmp_path / "a"))
    assert str(caught.value) == (
        f"cannot read migrations directory {tmp_path / 'a'}: Too many levels of symbolic links"
    )


def test_a_directory_without_read_permission(open_dir: Path) -> None:
    locked = open_dir / "migrations"
    locked.mkdir()
    locked.chmod(0)
    with as_nobody(), pytest.raises(UsageError) as caught:
        load_migrations(locked)
    assert str(caught.value) == f"cannot read migrations directory {locked}: Permission denied"


# --- old Mac line endings and NUL bytes --------------------------------------------------


def test_a_script_with_cr_line_endings_after_a_comment_is_not_empty(tmp_path: Path) -> None:
    # PostgreSQL ends a -- comment at a lone CR too; the SQL after it is the script.
    (tmp_path / "1_a.up.sql").write_bytes(b"-- note\rCREATE TABLE a (id int);\r")
    (tmp_path / "2_b.up.sql").write_bytes(
        b"-- first\r-- sqlmig:no-transaction\rCREATE INDEX CONCURRENTLY i ON a (id);\r"
    )

    first, second = load_migrations(tmp_path)

    assert first.up.sql.endswith("CREATE TABLE a (id int);\r")
    assert second.up.transactional is False


def test_a_misplaced_directive_in_a_cr_file_is_located_on_its_line(tmp_path: Path) -> None:
    (tmp_path / "1_a.up.sql").write_bytes(b"SELECT 1;\r\r-- sqlmig:no-transaction\r")

    with pytest.raises(MigrationFileError) as caught:
        load_migrations(tmp_path)

    assert [p.line for p in caught.value.problems] == [3]


def test_a_nul_byte_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "1_a.up.sql").write_bytes(b"\xef\xbb\xbfSELECT 1;\nSELECT 'a\x00b';\n")

    with pytest.raises(MigrationFileError) as caught:
        load_migrations(tmp_path)

    assert caught.value.problems == [
        FileProblem(
            str(tmp_path / "1_a.up.sql"),
            "contains a NUL byte (at byte offset 22), which PostgreSQL cannot receive in SQL "
            "text; remove it",
            2,
        )
    ]

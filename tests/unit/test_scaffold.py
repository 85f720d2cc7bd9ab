"""`sqlmig new`: a safe file name, the next version, never a write outside the folder."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sqlmig.cli import app
from sqlmig.errors import UsageError
from sqlmig.scaffold import (
    choose_version,
    create_migration,
    new_migration,
    next_version,
    slugify,
)
from sqlmig.source import load_migrations, parse_filename

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("add_users", "add_users"),
        ("Add Users Table", "add_users_table"),
        ("../../etc/evil", "etc_evil"),
        ("a/b", "a_b"),
        ("/abs/path", "abs_path"),
        ("C:\\Windows\\system32", "c_windows_system32"),
        ("..hidden", "hidden"),
        ("add-index--concurrently", "add_index_concurrently"),
        ("Café naïve Ünïcödé", "cafe_naive_unicode"),
        ("Straße", "strasse"),
        ("\ufb01x \uff12 things", "fix_2_things"),  # the fi ligature, a fullwidth 2
    ],
)
def test_slugify_keeps_only_lowercase_ascii_letters_digits_and_single_underscores(
    name: str, slug: str
) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize("name", ["", "..", "/", "../..", "  ", "日本語", "---"])
def test_a_name_without_ascii_letters_or_digits_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as raised:
        slugify(name)

    assert str(raised.value) == (
        f"migration name {name!r} has no ASCII letters or digits; use something like 'add_users'"
    )


def test_a_long_name_is_cut_to_100_characters_without_a_trailing_underscore() -> None:
    assert slugify("a" * 200) == "a" * 100
    assert slugify("a" * 99 + " b") == "a" * 99


def test_the_default_version_is_the_utc_timestamp(tmp_path: Path) -> None:
    assert next_version(tmp_path, sequential=False, now=NOW) == "20240102030405"


@pytest.mark.parametrize(
    ("newest", "expected"),
    [
        ("20240102030405", "20240102030406"),  # the same second
        ("20261231235959", "20270101000000"),  # a clock behind the newest file
        ("99999999999999", "100000000000000"),  # digits that are no date
    ],
)
def test_a_timestamp_not_after_the_newest_moves_past_it_and_says_so(
    tmp_path: Path, newest: str, expected: str
) -> None:
    (tmp_path / f"{newest}_first.up.sql").write_text("SELECT 1;\n")

    version, note = choose_version(tmp_path, sequential=False, now=NOW)

    assert version == expected
    assert note == f"the newest, {newest}, is not older than the clock, so this one is {expected}"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "0001"),
        (["0001_a.up.sql", "0001_a.down.sql"], "0002"),
        (["001_a.up.sql", "002_b.sql"], "003"),
        (["1_a.sql"], "2"),
        (["0009_a.sql"], "0010"),
        (["9999_a.sql"], "10000"),
        (["0002_b.sql", "0010_c.sql", "0003_a.sql"], "0011"),
    ],
)
def test_sequential_takes_the_next_number_padded_like_the_others(
    tmp_path: Path, existing: list[str], expected: str
) -> None:
    for filename in existing:
        (tmp_path / filename).write_text("SELECT 1;\n")
    (tmp_path / "README.md").write_text("not a migration\n")

    assert next_version(tmp_path, sequential=True) == expected


def test_new_migration_creates_an_up_down_pair_and_returns_their_paths(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"

    paths = new_migration(folder, "Add users", now=NOW)

    assert paths == [
        folder / "20240102030405_add_users.up.sql",
        folder / "20240102030405_add_users.down.sql",
    ]
    assert paths[0].read_text() == "-- add_users: up\n\n"
    assert paths[1].read_text() == "-- add_users: undo what the up script did\n\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)


def test_single_file_has_both_markers_and_loads_once_it_has_sql(tmp_path: Path) -> None:
    [path] = new_migration(tmp_path, "create t", single_file=True, sequential=True)

    assert path == tmp_path / "0001_create_t.sql"
    text = path.read_text()
    assert text == "-- migrate:up\n\n\n-- migrate:down\n\n"
    path.write_text("-- migrate:up\nCREATE TABLE t (id int);\n\n-- migrate:down\nDROP TABLE t;\n")
    [migration] = load_migrations(tmp_path)
    assert migration.version == "0001"
    assert migration.up.sql.strip() == "CREATE TABLE t (id int);"
    assert migration.down is not None
    assert migration.down.sql.strip() == "DROP TABLE t;"


def test_new_migration_never_overwrites_and_goes_after_an_existing_version(
    tmp_path: Path,
) -> None:
    existing = tmp_path / "20240102030405_add_users.up.sql"
    existing.write_text("CREATE TABLE users ();\n")

    paths = new_migration(tmp_path, "add users", now=NOW)

    assert existing.read_text() == "CREATE TABLE users ();\n"
    assert [p.name for p in paths] == [
        "20240102030406_add_users.up.sql",
        "20240102030406_add_users.down.sql",
    ]


def test_a_file_taken_after_the_version_was_chosen_is_not_overwritten_nor_half_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another `new` running at the same moment: the down file appeared meanwhile."""
    taken = tmp_path / "0001_add_users.down.sql"
    taken.write_text("-- theirs\n")
    monkeypatch.setattr("sqlmig.scaffold.choose_version", lambda *a, **k: ("0001", None))

    with pytest.raises(UsageError) as raised:
        new_migration(tmp_path, "add users", now=NOW)

    assert str(raised.value) == f"{taken} already exists; nothing was overwritten"
    assert taken.read_text() == "-- theirs\n"
    assert [p.name for p in tmp_path.iterdir()] == [taken.name]  # no up script left behind


def test_a_directory_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "migrations").write_text("oops\n")

    with pytest.raises(UsageError) as raised:
        new_migration(tmp_path / "migrations", "x", now=NOW)

    assert str(raised.value).startswith(
        f"cannot create the migrations directory {tmp_path / 'migrations'}:"
    )


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=40), single_file=st.booleans(), sequential=st.booleans())
def test_any_name_creates_files_only_directly_inside_the_directory(
    name: str, single_file: bool, sequential: bool
) -> None:
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "migrations"
        try:
            paths = new_migration(
                folder, name, single_file=single_file, sequential=sequential, now=NOW
            )
        except UsageError:
            assert not folder.exists()
            return
        everything = sorted(p for p in Path(temp).rglob("*"))
        assert everything == sorted([folder, *paths])
        for path in paths:
            assert path.resolve().parent == folder.resolve()
            parsed = parse_filename(path.name)
            assert parsed is not None
            assert parsed.version == ("0001" if sequential else "20240102030405")
            assert parsed.name == slugify(name)


def test_files_that_are_not_migrations_are_ignored_when_choosing_the_version(
    tmp_path: Path,
) -> None:
    for filename in (
        "README.sql",  # a look-alike that `up` would report, not `new`'s business
        "notes.txt",
        ".down.sql",
        "99999999999999999999999_too_big.sql",
        "0002_Bad Name.sql",
        "0001_a.up.sql",
        "0003_orphan.down.sql",  # its version is taken all the same
    ):
        (tmp_path / filename).write_text("SELECT 1;\n")
    (tmp_path / "0007_a_folder.sql").mkdir()

    assert next_version(tmp_path, sequential=True) == "0008"


def test_a_look_alike_alone_leaves_the_directory_empty_for_versions(tmp_path: Path) -> None:
    (tmp_path / "README.sql").write_text("-- how to write migrations\n")

    assert choose_version(tmp_path, sequential=False, now=NOW) == ("20240102030405", None)
    assert choose_version(tmp_path, sequential=True, now=NOW) == ("0001", None)


def test_without_sequential_a_numbered_directory_gets_its_next_number_and_a_note(
    tmp_path: Path,
) -> None:
    (tmp_path / "001_a.up.sql").write_text("SELECT 1;\n")
    (tmp_path / "002_b.sql").write_text("-- migrate:up\nSELECT 1;\n")

    made = create_migration(tmp_path, "add users", now=NOW)

    assert made.version == "003"
    assert [p.name for p in made.paths] == ["003_add_users.up.sql", "003_add_users.down.sql"]
    assert made.note == (
        f"{tmp_path} numbers its migrations (newest 002), so this one is 003 rather than a "
        "timestamp"
    )


def test_sequential_in_a_timestamp_directory_stays_a_timestamp_and_says_so(
    tmp_path: Path,
) -> None:
    (tmp_path / "20240101000000_a.up.sql").write_text("SELECT 1;\n")

    made = create_migration(tmp_path, "b", sequential=True, now=NOW)

    assert made.version == "20240102030405"
    assert (
        made.note == f"{tmp_path} names its migrations by timestamp, so this one is 20240102030405"
    )


def test_a_directory_matching_the_flag_gets_no_note(tmp_path: Path) -> None:
    (tmp_path / "20240101000000_a.up.sql").write_text("SELECT 1;\n")
    assert create_migration(tmp_path, "b", now=NOW).note is None
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "0001_a.up.sql").write_text("SELECT 1;\n")
    assert create_migration(tmp_path / "x", "b", sequential=True, now=NOW).note is None


def test_the_cli_prints_the_note_on_stderr_and_only_paths_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SQLMIG_DIR", "DATABASE_URL", "SQLMIG_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "0009_a.up.sql").write_text("SELECT 1;\n")
    (tmp_path / "migrations" / "README.sql").write_text("-- not a migration\n")

    result = CliRunner().invoke(app, ["new", "add users"], catch_exceptions=False)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "migrations/0010_add_users.up.sql\nmigrations/0010_add_users.down.sql\n"
    )
    assert result.stderr == (
        "note: migrations numbers its migrations (newest 0009), so this one is 0010 rather "
        "than a timestamp\n"
    )

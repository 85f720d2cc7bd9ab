"""Importing an Alembic history offline: no database, the sample project in tests/."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from alembic_compat.errors import (
    AlembicConfigError,
    NonLinearHistoryError,
    UnrenderableError,
)
from alembic_compat.files import recorded_revision, revisions_of
from alembic_compat.history import import_history
from alembic_compat.segments import segments_of
from sqlmig.errors import UsageError
from sqlmig.migrator import validate_files

PROJECT = Path(__file__).parents[1] / "alembic_project"
REVISIONS = ["1a2b3c4d5e01", "2b3c4d5e6f02", "3c4d5e6f7003", "4d5e6f708104", "5e6f70819205"]
HEAD = REVISIONS[-1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the sample project, to add revisions to."""
    target = tmp_path / "project"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def add_revision(
    project: Path,
    revision: str,
    down_revision: str | tuple[str, ...] | None,
    message: str,
    upgrade: str = "pass",
    downgrade: str = "pass",
) -> None:
    body = textwrap.dedent(
        '''\
        """{message}

        Revision ID: {revision}
        """

        import sqlalchemy as sa
        from alembic import op

        revision = {revision!r}
        down_revision = {down_revision!r}
        branch_labels = None
        depends_on = None


        def upgrade():
        {upgrade}


        def downgrade():
        {downgrade}
        '''
    ).format(
        message=message,
        revision=revision,
        down_revision=down_revision,
        upgrade=textwrap.indent(textwrap.dedent(upgrade), "    "),
        downgrade=textwrap.indent(textwrap.dedent(downgrade), "    "),
    )
    (project / "versions" / f"{revision}_added.py").write_text(body)


def read(directory: Path, name: str) -> str:
    return (directory / name).read_text()


# --- the sample history ------------------------------------------------------------


def test_import_writes_a_pair_per_revision_in_alembic_order(tmp_path: Path) -> None:
    out = tmp_path / "migrations"
    result = import_history(PROJECT / "alembic.ini", out)

    assert [m.revision for m in result.imported] == REVISIONS
    assert [m.version for m in result.imported] == ["0001", "0002", "0003", "0004", "0005"]
    assert result.imported[0].name == "create_users_and_projects"
    assert result.skipped == ()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f.name for m in result.imported for f in m.files
    )
    assert len(list(out.iterdir())) == 10
    migrations = validate_files(out)  # every file passes sqlmig's own checks
    assert [m.version for m in migrations] == ["0001", "0002", "0003", "0004", "0005"]
    assert all(m.down is not None and m.up.transactional for m in migrations)


def test_each_file_starts_with_its_alembic_revision(tmp_path: Path) -> None:
    result = import_history(PROJECT / "alembic.ini", tmp_path)

    second = result.imported[1]
    up, down = (f.read_text() for f in second.files)
    first_line = "-- alembic revision: 2b3c4d5e6f02 (down_revision: 1a2b3c4d5e01)"
    assert up.splitlines()[0] == first_line
    assert down.splitlines()[0] == first_line
    assert recorded_revision(up) == "2b3c4d5e6f02"
    assert read(tmp_path, "0001_create_users_and_projects.up.sql").startswith(
        "-- alembic revision: 1a2b3c4d5e01 (down_revision: none)\n-- Create users and projects\n"
    )
    assert list(revisions_of(validate_files(tmp_path))) == REVISIONS


def test_rendered_sql_has_no_alembic_bookkeeping_or_transaction_control(tmp_path: Path) -> None:
    import_history(PROJECT / "alembic.ini", tmp_path)

    for path in tmp_path.iterdir():
        text = path.read_text()
        assert "alembic_version" not in text
        assert "BEGIN;" not in text and "COMMIT;" not in text
        assert "Running upgrade" not in text
        assert not any(line != line.rstrip() for line in text.splitlines()), path.name


def test_rendered_sql_covers_enum_rename_index_and_data_update(tmp_path: Path) -> None:
    import_history(PROJECT / "alembic.ini", tmp_path)

    tasks_up = read(tmp_path, "0002_add_tasks_with_a_status_enum.up.sql")
    tasks_down = read(tmp_path, "0002_add_tasks_with_a_status_enum.down.sql")
    assert "CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');" in tasks_up
    assert tasks_up.index("CREATE TYPE") < tasks_up.index("CREATE TABLE tasks")
    assert tasks_down.index("DROP TABLE tasks;") < tasks_down.index("DROP TYPE task_status;")
    index = read(tmp_path, "0003_index_tasks_and_users_are_active_by_default.up.sql")
    assert "CREATE INDEX ix_tasks_project_id_status ON tasks (project_id, status);" in index
    assert "ADD COLUMN is_active BOOLEAN DEFAULT true NOT NULL" in index
    rename = read(tmp_path, "0004_rename_users_name_to_display_name.down.sql")
    assert "ALTER TABLE users RENAME display_name TO name;" in rename
    slugs = read(tmp_path, "0005_project_slugs_filled_from_the_names.up.sql")
    assert "UPDATE projects SET slug=lower(replace(projects.name, ' ', '-'));" in slugs
    assert "UPDATE tasks SET status = 'done' WHERE title LIKE '[done]%';" in slugs


def test_import_never_overwrites_and_writes_nothing_when_versions_are_taken(
    tmp_path: Path,
) -> None:
    (tmp_path / "0003_mine.up.sql").write_text("SELECT 3;\n")

    with pytest.raises(UsageError, match=r"version 0003: 0003_mine.up.sql is already there"):
        import_history(PROJECT / "alembic.ini", tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == ["0003_mine.up.sql"]


def test_an_output_directory_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("not a directory\n")

    with pytest.raises(UsageError, match=r"cannot list the migrations directory .*out"):
        import_history(PROJECT / "alembic.ini", tmp_path / "out")

    assert (tmp_path / "out").read_text() == "not a directory\n"


def test_a_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(AlembicConfigError, match=r"alembic\.ini not found") as caught:
        import_history(tmp_path / "alembic.ini", tmp_path / "out")
    assert caught.value.exit_code == 2


# --- histories that are not a line ------------------------------------------------


def test_two_heads_stop_the_import_listing_both(project: Path, tmp_path: Path) -> None:
    add_revision(project, "6f708192a306", "4d5e6f708104", "Audit log", "op.execute('SELECT 1')")
    out = tmp_path / "out"

    with pytest.raises(NonLinearHistoryError) as caught:
        import_history(project / "alembic.ini", out)

    message = str(caught.value)
    assert "2 heads" in message
    assert f"head {HEAD} (Project slugs, filled from the names)" in message
    assert "head 6f708192a306 (Audit log)" in message
    assert "forks from 4d5e6f708104" in message
    assert caught.value.exit_code == 1
    assert not out.exists()


def test_a_merge_revision_stops_the_import(project: Path, tmp_path: Path) -> None:
    add_revision(project, "6f708192a306", "4d5e6f708104", "Audit log")
    add_revision(project, "7081920a3b07", (HEAD, "6f708192a306"), "Merge heads")

    with pytest.raises(NonLinearHistoryError, match="merge revision 7081920a3b07") as caught:
        import_history(project / "alembic.ini", tmp_path / "out")

    assert f"joins {HEAD}, 6f708192a306" in str(caught.value)
    assert "linearize=True can import it" in str(caught.value)


# --- revisions that cannot be rendered offline ----------------------------------------

READS_DATA = """\
count = op.get_bind().execute(sa.text("SELECT count(*) FROM users")).scalar()
if count:
    op.execute("UPDATE users SET is_active = false")
"""


def test_a_revision_that_reads_data_is_reported_and_nothing_is_written(
    project: Path, tmp_path: Path
) -> None:
    add_revision(project, "6f708192a306", HEAD, "Deactivate users", READS_DATA)
    out = tmp_path / "out"

    with pytest.raises(UnrenderableError) as caught:
        import_history(project / "alembic.ini", out)

    [failure] = caught.value.failures
    assert failure.revision == "6f708192a306"
    assert failure.version == "0006"
    assert failure.direction == "upgrade"
    assert failure.reason.startswith("AttributeError: 'NoneType' object has no attribute")
    assert "(line 16: count = op.get_bind().execute(" in failure.reason
    assert "6f708192a306" in str(caught.value)
    assert "Or pass skip_unrenderable=True" in str(caught.value)
    assert caught.value.exit_code == 1
    assert not out.exists()


def test_skip_unrenderable_writes_the_others_and_lists_what_to_write(
    project: Path, tmp_path: Path
) -> None:
    add_revision(project, "6f708192a306", HEAD, "Deactivate users", READS_DATA)
    add_revision(project, "7081920a3b07", "6f708192a306", "Add notes", "op.execute('SELECT 7')")

    result = import_history(project / "alembic.ini", tmp_path, skip_unrenderable=True)

    assert [m.version for m in result.imported] == ["0001", "0002", "0003", "0004", "0005", "0007"]
    [skipped] = result.skipped
    assert skipped.version == "0006"
    assert skipped.files == ("0006_deactivate_users.up.sql", "0006_deactivate_users.down.sql")
    assert skipped.header == f"-- alembic revision: 6f708192a306 (down_revision: {HEAD})"
    assert not list(tmp_path.glob("0006_*"))
    assert read(tmp_path, "0007_add_notes.up.sql").endswith("SELECT 7;\n")


def test_a_downgrade_that_raises_not_implemented_gets_no_down_file(
    project: Path, tmp_path: Path
) -> None:
    add_revision(
        project,
        "6f708192a306",
        HEAD,
        "Irreversible",
        "op.execute('DELETE FROM tasks')",
        "raise NotImplementedError('data is gone')",
    )

    result = import_history(project / "alembic.ini", tmp_path)

    last = result.imported[-1]
    assert not last.reversible
    assert [f.name for f in last.files] == ["0006_irreversible.up.sql"]
    assert validate_files(tmp_path)[-1].down is None


def test_an_autocommit_block_becomes_a_no_transaction_file(project: Path, tmp_path: Path) -> None:
    add_revision(
        project,
        "6f708192a306",
        HEAD,
        "Index titles concurrently",
        """\
        with op.get_context().autocommit_block():
            op.create_index("ix_tasks_title", "tasks", ["title"], postgresql_concurrently=True)
        """,
        """\
        with op.get_context().autocommit_block():
            op.drop_index("ix_tasks_title", table_name="tasks", postgresql_concurrently=True)
        """,
    )

    result = import_history(project / "alembic.ini", tmp_path)

    assert not result.imported[-1].transactional
    up = read(tmp_path, "0006_index_titles_concurrently.up.sql")
    assert "-- sqlmig:no-transaction" in up
    assert "CREATE INDEX CONCURRENTLY ix_tasks_title ON tasks (title);" in up
    assert "\nCOMMIT;" not in up and "\nBEGIN;" not in up
    assert "-- As Alembic runs it: 1 statement of autocommit_block() outside any transaction." in up
    migration = validate_files(tmp_path)[-1]
    assert migration.down is not None
    assert not migration.up.transactional and not migration.down.transactional


def test_an_empty_upgrade_becomes_a_no_op_statement(project: Path, tmp_path: Path) -> None:
    add_revision(project, "6f708192a306", HEAD, "Placeholder")

    import_history(project / "alembic.ini", tmp_path)

    assert "SELECT 1;" in read(tmp_path, "0006_placeholder.up.sql")
    assert validate_files(tmp_path)[-1].up.sql.count("SELECT 1;") == 1


# --- transactions, as Alembic online runs them ---------------------------------------


def test_statements_around_an_autocommit_block_keep_their_transactions() -> None:
    items = [
        ["sql", "SET LOCAL lock_timeout = '5s';"],
        ["sql", "ALTER TABLE t ADD COLUMN c int;"],
        ["autocommit", "begin"],
        ["sql", "CREATE INDEX CONCURRENTLY ix ON t (c);"],
        ["sql", "ALTER TYPE e ADD VALUE 'x';"],
        ["autocommit", "end"],
        ["sql", "SET LOCAL lock_timeout = '5s';"],
        ["sql", "ALTER TABLE t DROP CONSTRAINT k;"],
    ]

    rendered = segments_of(items)

    assert not rendered.transactional
    assert rendered.transactions == 2
    assert rendered.body() == [
        "BEGIN;",
        "SET LOCAL lock_timeout = '5s';",
        "ALTER TABLE t ADD COLUMN c int;",
        "COMMIT;",
        "CREATE INDEX CONCURRENTLY ix ON t (c);",
        "ALTER TYPE e ADD VALUE 'x';",
        "BEGIN;",
        "SET LOCAL lock_timeout = '5s';",
        "ALTER TABLE t DROP CONSTRAINT k;",
        "COMMIT;",
    ]


def test_a_block_alone_is_statements_on_their_own_and_ordinary_ones_one_transaction() -> None:
    block = segments_of([["autocommit", "begin"], ["sql", "CREATE INDEX CONCURRENTLY i ON t (c);"]])
    plain = segments_of([["sql", "CREATE TABLE t (id int);"], ["sql", "DROP TABLE u;"]])

    assert block.body() == ["CREATE INDEX CONCURRENTLY i ON t (c);"]
    assert not block.transactional
    assert plain.transactional
    assert plain.body() == ["CREATE TABLE t (id int);", "DROP TABLE u;"]


def test_an_explicit_commit_ends_a_transaction_and_the_next_statement_begins_one() -> None:
    items = [
        ["sql", "UPDATE t SET a = 1;"],
        ["sql", "COMMIT;"],
        ["sql", "BEGIN;"],  # psycopg has begun already: only a warning online
        ["sql", "ALTER TYPE e ADD VALUE 'x';"],
        ["sql", "ROLLBACK;"],
        ["sql", "UPDATE t SET a = 2;"],
    ]

    assert segments_of(items).body() == [
        "BEGIN;",
        "UPDATE t SET a = 1;",
        "COMMIT;",
        "BEGIN;",
        "ALTER TYPE e ADD VALUE 'x';",
        "ROLLBACK;",
        "BEGIN;",
        "UPDATE t SET a = 2;",
        "COMMIT;",
    ]


def test_create_table_lines_lose_their_trailing_spaces() -> None:
    rendered = segments_of(
        [["sql", "CREATE TABLE users (id SERIAL NOT NULL, \n    PRIMARY KEY (id)\n);"]]
    )

    assert rendered.body() == ["CREATE TABLE users (id SERIAL NOT NULL,\n    PRIMARY KEY (id)\n);"]

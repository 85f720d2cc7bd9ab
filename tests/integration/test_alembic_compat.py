"""Alembic and sqlmig on a real PostgreSQL: equivalence, adopt, draft and check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgsource
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql
from typer.testing import CliRunner

from alembic_compat import adopt as adopt_module
from alembic_compat.adopt import adopt
from alembic_compat.compare import check, draft
from alembic_compat.errors import AdoptError, PendingMigrationsError
from alembic_compat.history import import_history
from sqlmig.cli import app
from sqlmig.migrator import Migrator
from sqlmig.tracker import Tracker

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).parents[1] / "alembic_project"
INI = PROJECT / "alembic.ini"
MODELS = "alembic_project.models:Base.metadata"
MIDDLE = "3c4d5e6f7003"  # the third of five revisions


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample history imported once; tests copy it when they add files."""
    directory = tmp_path_factory.mktemp("imported")
    import_history(INI, directory)
    return directory


@pytest.fixture
def migrations(imported: Path, tmp_path: Path) -> Path:
    """A private copy of the imported files."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in imported.iterdir():
        (directory / path.name).write_bytes(path.read_bytes())
    return directory


@pytest.fixture
def second_database_url(pg_admin_url: str) -> Iterator[str]:
    with pgsource.fresh_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def models() -> sa.MetaData:
    from alembic_project.models import metadata

    return metadata


def alembic(url: str, action: str, revision: str) -> None:
    """``alembic upgrade|downgrade REVISION`` on the sample project, online."""
    config = Config(str(INI))
    config.attributes["url"] = url
    getattr(command, action)(config, revision)


def sql_engine(url: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))


def execute(url: str, *statements: str) -> list[Any]:
    """Run statements in one transaction; the rows of each that returns any."""
    engine = sql_engine(url)
    try:
        with engine.begin() as conn:
            results = [conn.exec_driver_sql(s) for s in statements]
            return [r.all() for r in results if r.returns_rows]
    finally:
        engine.dispose()


def schema(url: str) -> dict[str, Any]:
    """Everything the inspector sees, minus the two tools' own tables."""
    engine = sql_engine(url)
    try:
        inspector = sa.inspect(engine)
        tables: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            if table in ("alembic_version", "schema_migrations"):
                continue
            tables[table] = {
                "columns": [
                    (
                        c["name"],
                        str(c["type"]),
                        c["nullable"],
                        c["default"],
                        sorted((c.get("identity") or {}).items()),
                    )
                    for c in inspector.get_columns(table)
                ],
                "primary_key": inspector.get_pk_constraint(table),
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"])
                    for i in inspector.get_indexes(table)
                ),
                "foreign_keys": sorted(
                    (
                        fk["name"],
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        tuple(sorted(fk["options"].items())),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
                "unique": sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in inspector.get_unique_constraints(table)
                ),
            }
        with engine.connect() as conn:
            enums = conn.exec_driver_sql(
                "SELECT t.typname, e.enumlabel FROM pg_type t "
                "JOIN pg_enum e ON e.enumtypid = t.oid ORDER BY t.typname, e.enumsortorder"
            ).all()
        return {
            "tables": tables,
            "enums": [tuple(row) for row in enums],
            "sequences": sorted(inspector.get_sequence_names()),
        }
    finally:
        engine.dispose()


def tracked(url: str) -> list[tuple[str, str, str]]:
    engine = sql_engine(url)
    try:
        return [(r.version, r.status, r.checksum) for r in Tracker(engine).get_all()]
    finally:
        engine.dispose()


def has_table(url: str, name: str) -> bool:
    engine = sql_engine(url)
    try:
        return sa.inspect(engine).has_table(name)
    finally:
        engine.dispose()


def sqlmig(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


# --- equivalence ---------------------------------------------------------------------


def test_imported_files_build_the_same_schema_as_alembic_up_and_down(
    database_url: str, second_database_url: str, migrations: Path
) -> None:
    alembic(database_url, "upgrade", "head")
    with Migrator(second_database_url, migrations) as migrator:
        applied = migrator.up()

    assert [r.version for r in applied.migrations] == ["0001", "0002", "0003", "0004", "0005"]
    at_head = schema(database_url)
    assert set(at_head["tables"]) == {"users", "projects", "tasks"}
    assert ("task_status", "doing") in at_head["enums"]
    assert schema(second_database_url) == at_head

    alembic(database_url, "downgrade", "base")
    with Migrator(second_database_url, migrations) as migrator:
        migrator.down(steps=None)

    at_base = schema(database_url)
    assert at_base == {"tables": {}, "enums": [], "sequences": []}
    assert schema(second_database_url) == at_base


def test_the_data_update_runs_the_same_through_both_tools(
    database_url: str, second_database_url: str, migrations: Path
) -> None:
    rows = (
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com')",
        "INSERT INTO projects (id, owner_id, name) VALUES (1, 1, 'Big Plan')",
        "INSERT INTO tasks (project_id, title) VALUES (1, '[done] draft'), (1, 'review')",
    )
    alembic(database_url, "upgrade", "4d5e6f708104")
    execute(database_url, *rows)
    alembic(database_url, "upgrade", "head")
    with Migrator(second_database_url, migrations) as migrator:
        migrator.up(target="0004")
        execute(second_database_url, *rows)
        migrator.up()

    query = (
        "SELECT p.slug, t.title, t.status::text FROM projects p "
        "JOIN tasks t ON t.project_id = p.id ORDER BY t.title"
    )
    expected = [("big-plan", "[done] draft", "done"), ("big-plan", "review", "todo")]
    assert execute(database_url, query) == [expected]
    assert execute(second_database_url, query) == [expected]


# --- adopt -----------------------------------------------------------------------------


def test_adopt_records_up_to_the_alembic_revision_and_up_applies_only_the_rest(
    database_url: str, migrations: Path, models: sa.MetaData
) -> None:
    alembic(database_url, "upgrade", MIDDLE)

    result = adopt(database_url, migrations)

    assert result.revision == MIDDLE
    assert result.versions == ("0001", "0002", "0003")
    rows = tracked(database_url)
    assert [(v, s) for v, s, _ in rows] == [
        ("0001", "applied"),
        ("0002", "applied"),
        ("0003", "applied"),
    ]
    with Migrator(database_url, migrations) as migrator:
        expected = {m.version: m.checksum for m in migrator.migrations()}
        assert all(checksum == expected[v] for v, _, checksum in rows)
        rest = migrator.up()
    assert [r.version for r in rest.migrations] == ["0004", "0005"]
    assert [v for v, s, _ in tracked(database_url) if s == "applied"] == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
    ]
    assert has_table(database_url, "alembic_version")  # kept unless asked
    assert check(models, database_url) == []


def test_adopt_can_drop_alembic_version_in_the_same_transaction(
    database_url: str, migrations: Path
) -> None:
    alembic(database_url, "upgrade", "head")

    result = adopt(database_url, migrations, drop_alembic_version=True)

    assert result.dropped_alembic_version
    assert result.versions[-1] == "0005"
    assert not has_table(database_url, "alembic_version")


def test_adopt_refuses_a_revision_that_no_file_records(database_url: str, migrations: Path) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    execute(database_url, "UPDATE alembic_version SET version_num = 'ffffffffffff'")

    with pytest.raises(
        AdoptError, match="Alembic revision ffffffffffff, which no migration"
    ) as caught:
        adopt(database_url, migrations, drop_alembic_version=True)

    assert "0005 0005_project_slugs_filled_from_the_names.up.sql: 5e6f70819205" in str(caught.value)
    assert caught.value.exit_code == 1
    assert tracked(database_url) == []
    assert has_table(database_url, "alembic_version")


def test_adopt_refuses_a_database_sqlmig_already_tracks(
    database_url: str, migrations: Path
) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    adopt(database_url, migrations)

    with pytest.raises(AdoptError, match="already records 3 migrations"):
        adopt(database_url, migrations, drop_alembic_version=True)

    assert len(tracked(database_url)) == 3
    assert has_table(database_url, "alembic_version")


def test_adopt_refuses_without_alembic_version_empty_or_with_several_rows(
    database_url: str, migrations: Path
) -> None:
    with pytest.raises(AdoptError, match="no alembic_version table"):
        adopt(database_url, migrations)

    alembic(database_url, "upgrade", "1a2b3c4d5e01")
    alembic(database_url, "downgrade", "base")
    with pytest.raises(AdoptError, match="alembic_version is empty"):
        adopt(database_url, migrations)

    execute(database_url, "INSERT INTO alembic_version VALUES ('1a2b3c4d5e01'), ('abc')")
    with pytest.raises(AdoptError, match="alembic_version has 2 rows") as caught:
        adopt(database_url, migrations)
    assert caught.value.problems == ["1a2b3c4d5e01", "abc"]
    assert tracked(database_url) == []


def test_adopt_records_nothing_when_the_revision_moves_before_the_records_commit(
    database_url: str, migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    read = adopt_module._revisions

    def read_then_move(engine: sa.Engine, table: sa.Table) -> list[str] | None:
        found = read(engine, table)
        monkeypatch.setattr(adopt_module, "_revisions", read)  # only this read races
        execute(database_url, "UPDATE alembic_version SET version_num = '5e6f70819205'")
        return found

    monkeypatch.setattr(adopt_module, "_revisions", read_then_move)

    with pytest.raises(AdoptError) as caught:
        adopt(database_url, migrations, drop_alembic_version=True)

    assert f"it held {MIDDLE} when read, it is now 5e6f70819205" in str(caught.value)
    assert not has_table(database_url, "schema_migrations")
    assert execute(database_url, "SELECT version_num FROM alembic_version") == [[("5e6f70819205",)]]


def test_adopt_through_the_command_line(database_url: str, migrations: Path) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    base = ["--database-url", database_url, "--dir", str(migrations)]

    result = sqlmig(*base, "--format", "json", "alembic", "adopt", "--drop-alembic-version")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ok": True,
        "command": "alembic adopt",
        "revision": MIDDLE,
        "versions": ["0001", "0002", "0003"],
        "dropped_alembic_version": True,
    }
    again = sqlmig(*base, "alembic", "adopt")
    assert again.exit_code == 1
    assert "cannot adopt: sqlmig's table schema_migrations already records" in again.stderr


# --- draft -------------------------------------------------------------------------------


def copy_of(models: sa.MetaData) -> sa.MetaData:
    copy = sa.MetaData()
    for table in models.sorted_tables:
        table.to_metadata(copy)
    return copy


def test_a_drafted_migration_brings_the_database_to_the_models(
    database_url: str, migrations: Path, models: sa.MetaData
) -> None:
    with Migrator(database_url, migrations) as migrator:
        migrator.up()
    changed = copy_of(models)
    changed.tables["users"].append_column(sa.Column("nickname", sa.String(50)))
    priority = postgresql.ENUM("low", "high", name="priority")
    changed.tables["tasks"].append_column(sa.Column("priority", priority, nullable=True))

    paths = draft("Add nickname and priority", changed, database_url, migrations)

    assert [p.name for p in paths] == [
        "0006_add_nickname_and_priority.up.sql",
        "0006_add_nickname_and_priority.down.sql",
    ]
    up = paths[0].read_text()
    assert "ALTER TABLE users ADD COLUMN nickname VARCHAR(50);" in up
    assert up.index("CREATE TYPE priority AS ENUM ('low', 'high');") < up.index(
        "ADD COLUMN priority"
    )
    assert "DROP TYPE priority;" in paths[1].read_text()
    with Migrator(database_url, migrations) as migrator:
        applied = migrator.up()
        assert [r.version for r in applied.migrations] == ["0006"]
        assert check(changed, database_url) == []
        migrator.down()
    assert check(models, database_url) == []
    assert [d.kind for d in check(changed, database_url)] == ["add_column", "add_column"]


def test_draft_with_no_difference_writes_nothing(
    database_url: str, migrations: Path, models: sa.MetaData
) -> None:
    with Migrator(database_url, migrations) as migrator:
        migrator.up()
    before = sorted(p.name for p in migrations.iterdir())

    assert draft("nothing", models, database_url, migrations) == []
    assert sorted(p.name for p in migrations.iterdir()) == before

    result = sqlmig(
        "--database-url",
        database_url,
        "--dir",
        str(migrations),
        "alembic",
        "draft",
        "nothing",
        "--metadata",
        MODELS,
    )
    assert result.exit_code == 0, result.stderr
    assert "no differences: the models match the database; nothing was written" in result.stdout
    assert sorted(p.name for p in migrations.iterdir()) == before


def test_draft_refuses_while_migrations_are_pending(
    database_url: str, migrations: Path, models: sa.MetaData
) -> None:
    with Migrator(database_url, migrations) as migrator:
        migrator.up(target="0003")

    with pytest.raises(PendingMigrationsError, match="2 migrations are not applied"):
        draft("too_early", models, database_url, migrations)


def test_a_first_draft_into_an_empty_directory_creates_the_whole_schema(
    database_url: str, second_database_url: str, tmp_path: Path, models: sa.MetaData
) -> None:
    fresh = tmp_path / "fresh"

    paths = draft("initial schema", models, database_url, fresh)

    version = paths[0].name.split("_")[0]
    assert len(version) == 14  # a UTC timestamp: the directory had no sequence numbers
    with Migrator(database_url, fresh) as migrator:
        migrator.up()
    assert check(models, database_url) == []
    alembic(second_database_url, "upgrade", "head")
    assert schema(database_url) == schema(second_database_url)
    with Migrator(database_url, fresh) as migrator:
        migrator.down()
    assert schema(database_url) == {"tables": {}, "enums": [], "sequences": []}


# --- check -------------------------------------------------------------------------------


def test_check_finds_a_missing_column_an_extra_table_and_a_changed_type(
    database_url: str, migrations: Path, models: sa.MetaData
) -> None:
    with Migrator(database_url, migrations) as migrator:
        migrator.up()
    execute(
        database_url,
        "ALTER TABLE users DROP COLUMN display_name",
        "CREATE TABLE audit_log (id integer PRIMARY KEY)",
        "ALTER TABLE projects ALTER COLUMN name TYPE varchar(50)",
        "ALTER TYPE task_status ADD VALUE 'blocked'",
    )

    found = {(d.kind, d.table, d.column) for d in check(models, database_url)}

    assert found == {
        ("add_column", "users", "display_name"),
        ("remove_table", "audit_log", None),
        ("modify_type", "projects", "name"),
        ("modify_enum", None, None),
    }
    base = ["--database-url", database_url, "--dir", str(migrations)]
    text = sqlmig(*base, "alembic", "check", "--metadata", MODELS)
    assert text.exit_code == 1
    assert "4 differences between the models and the database:" in text.stdout
    assert "  column users.display_name: in the models, missing from the database" in text.stdout
    assert "  table audit_log: in the database, not in the models" in text.stdout
    assert (
        "  column projects.name: type is VARCHAR(50) in the database, TEXT in the models"
        in text.stdout
    )
    as_json = sqlmig(*base, "--format", "json", "alembic", "check", "--metadata", MODELS)
    assert as_json.exit_code == 1
    document = json.loads(as_json.stdout)
    assert document["ok"] is False and document["in_sync"] is False
    by_kind = {d["kind"]: d for d in document["differences"]}
    assert by_kind["remove_table"] == {
        "kind": "remove_table",
        "table": "audit_log",
        "column": None,
        "name": None,
        "detail": "in the database, not in the models",
        "description": "table audit_log: in the database, not in the models",
    }
    assert by_kind["modify_enum"]["name"] == "task_status"
    assert "'blocked'" in by_kind["modify_enum"]["detail"]


def test_check_passes_when_in_sync_and_ignores_the_tools_tables(
    database_url: str, migrations: Path
) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    adopt(database_url, migrations)  # both alembic_version and schema_migrations exist
    with Migrator(database_url, migrations) as migrator:
        migrator.up()
    base = ["--database-url", database_url, "--dir", str(migrations)]

    text = sqlmig(*base, "alembic", "check", "--metadata", MODELS)
    as_json = sqlmig(*base, "--format", "json", "alembic", "check", "--metadata", MODELS)

    assert text.exit_code == 0, text.stderr
    assert "ok: the models match the database" in text.stdout
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == {
        "ok": True,
        "command": "alembic check",
        "in_sync": True,
        "differences": [],
    }


def test_import_adopt_up_and_check_from_the_command_line(database_url: str, tmp_path: Path) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    out = tmp_path / "migrations"
    base = ["--database-url", database_url, "--dir", str(out)]

    steps = [
        sqlmig(*base, "alembic", "import", "--config", str(INI)),
        sqlmig(*base, "alembic", "adopt"),
        sqlmig(*base, "up"),
        sqlmig(*base, "alembic", "check", "--metadata", MODELS),
    ]

    assert [s.exit_code for s in steps] == [0, 0, 0, 0], [s.stderr for s in steps]
    assert "recorded 3 migrations as applied, up to 0003" in steps[1].stdout
    assert "applied 2 migrations" in steps[2].stdout


def test_check_and_draft_find_the_models_through_the_projects_env_py(
    database_url: str, tmp_path: Path
) -> None:
    alembic(database_url, "upgrade", MIDDLE)
    base = ["--database-url", database_url, "--dir", str(tmp_path)]

    check = sqlmig(*base, "alembic", "check", "--config", str(INI))
    draft = sqlmig(*base, "alembic", "draft", "rest", "-c", str(INI))

    assert check.exit_code == 1, check.stderr
    assert "differences between the models and the database" in check.stdout
    assert draft.exit_code == 0, draft.stderr
    up = next(tmp_path.glob("*_rest.up.sql")).read_text()
    assert "drafted by `sqlmig alembic draft` from alembic_project.models:Base.metadata" in up

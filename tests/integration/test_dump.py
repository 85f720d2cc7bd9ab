"""`sqlmig dump`: the same bytes for the same migrations, a file CI can check, and a
clear error when no pg_dump can dump the server."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pgsource
import psycopg
import pytest
from helpers import SENTINEL, invoke, libpq
from sqlalchemy.engine import make_url

from sqlmig.dump import dump_schema, find_pg_dump
from sqlmig.errors import PgDumpUnusableError, SchemaDumpError
from sqlmig.migrator import Migrator
from sqlmig.plan import State

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_environment")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "migrations"


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXAMPLES, tmp_path / "migrations"))


@pytest.fixture
def url(database_url: str) -> str:
    """The test database's URL with a password the server ignores (trust auth)."""
    return make_url(database_url).set(password=SENTINEL).render_as_string(hide_password=False)


def migrated_dump(url: str, directory: Path) -> str:
    with Migrator(url, directory) as migrator:
        migrator.up()
        return dump_schema(migrator)


def fake_pg_dump(folder: Path, version: str, body: str = "exit 0") -> str:
    """A pg_dump that says it is ``version`` and then runs ``body``."""
    path = folder / "pg_dump"
    path.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "pg_dump (PostgreSQL) {version}"; '
        f"exit 0; fi\n{body}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_two_fresh_databases_migrated_the_same_way_dump_the_same_bytes(
    pg_admin_url: str, examples: Path
) -> None:
    with (
        pgsource.fresh_database(pg_admin_url) as first,
        pgsource.fresh_database(pg_admin_url) as second,
    ):
        dumps = [migrated_dump(first, examples), migrated_dump(second, examples)]
    assert dumps[0] == dumps[1]
    assert "CREATE TABLE public.projects" in dumps[0]
    assert "Dumped" not in dumps[0] and "\\restrict" not in dumps[0]
    assert dumps[0].endswith(
        "-- sqlmig: the applied migrations (public.schema_migrations)\n--\n\n"
        + "".join(
            "INSERT INTO public.schema_migrations (version, filename, checksum, duration_ms) "
            f"VALUES ('{m.version}', '{m.filename}', '{m.checksum}', 0);\n"
            for m in Migrator(first, examples).migrations()
        )
    )


def test_the_dump_loaded_into_an_empty_database_is_migrated_for_sqlmig(
    database_url: str, pg_admin_url: str, examples: Path
) -> None:
    schema = migrated_dump(database_url, examples)
    with pgsource.fresh_database(pg_admin_url) as empty:
        with psycopg.connect(libpq(empty), autocommit=True) as conn:
            conn.execute(schema.encode())
        with Migrator(empty, examples) as migrator:
            assert {s.state for s in migrator.status()} == {State.APPLIED}
            assert migrator.up().migrations == ()


def test_check_passes_then_fails_once_a_migration_is_added(url: str, examples: Path) -> None:
    assert invoke("--database-url", url, "up", "--dump-schema").exit_code == 0
    assert Path("schema.sql").is_file()
    ok = invoke("--database-url", url, "dump", "--check", "--out", "schema.sql")
    assert (ok.exit_code, ok.stdout) == (0, "ok: schema.sql is the schema the migrations produce\n")

    (examples / "20261106140000_add_labels.up.sql").write_text("CREATE TABLE labels (id int);\n")
    pending = invoke("--database-url", url, "dump", "--check", "--out", "schema.sql")
    assert pending.exit_code == 1
    assert (
        "error: cannot check schema.sql: the database is not migrated to the files:\n"
        "  20261106140000 20261106140000_add_labels.up.sql: pending\n"
    ) in pending.stderr

    assert invoke("--database-url", url, "up").exit_code == 0
    stale = invoke("--database-url", url, "dump", "--check", "--out", "schema.sql")
    assert stale.exit_code == 1
    assert "error: schema.sql is not the schema the migrations produce:" in stale.stderr
    assert "  +CREATE TABLE public.labels (" in stale.stderr
    assert "20261106140000_add_labels.up.sql" in stale.stderr
    assert "Run `sqlmig dump --out schema.sql` on a database migrated from empty" in stale.stderr

    assert invoke("--database-url", url, "dump", "--out", "schema.sql").exit_code == 0
    assert invoke("--database-url", url, "dump", "--check", "--out", "schema.sql").exit_code == 0


def test_the_config_file_names_the_schema_file_that_up_and_down_refresh(
    url: str, examples: Path
) -> None:
    Path("sqlmig.toml").write_text('dump_schema = "db/schema.sql"\n')
    assert invoke("--database-url", url, "up").exit_code == 0
    with_projects = Path("db/schema.sql").read_text()
    assert "CREATE INDEX projects_updated_at" in with_projects

    down = invoke("--database-url", url, "down")
    assert down.exit_code == 0
    assert f"wrote the schema to {Path.cwd() / 'db' / 'schema.sql'}" in down.stdout
    assert "projects_updated_at" not in Path("db/schema.sql").read_text()
    assert invoke("--database-url", url, "dump", "--check").exit_code == 1

    invoke("--database-url", url, "up", "--no-dump-schema")
    assert "projects_updated_at" not in Path("db/schema.sql").read_text()


def test_dump_without_a_file_prints_the_schema(url: str, examples: Path) -> None:
    invoke("--database-url", url, "up")
    printed = invoke("--database-url", url, "dump")
    assert printed.exit_code == 0
    assert printed.stdout.startswith("--\n-- PostgreSQL database dump\n--\n")
    no_file = invoke("--database-url", url, "dump", "--check")
    assert no_file.exit_code == 2
    assert "dump --check compares a file: pass --out FILE or set dump_schema" in no_file.stderr


def test_a_pg_dump_older_than_the_server_is_refused_naming_both_versions(
    database_url: str, examples: Path, tmp_path: Path
) -> None:
    old = fake_pg_dump(tmp_path, "9.6.24")
    with Migrator(database_url, examples) as migrator, pytest.raises(PgDumpUnusableError) as raised:
        dump_schema(migrator, pg_dump=[old])
    message = str(raised.value)
    assert message.startswith("no pg_dump can dump this server, PostgreSQL 1")
    assert f"\n  pg_dump 9.6 ({old}): older than the server\n" in message
    assert "Put a pg_dump 1" in message and "or newer first on PATH" in message
    assert raised.value.exit_code == 2


def test_no_pg_dump_at_all_says_so() -> None:
    with pytest.raises(PgDumpUnusableError) as raised:
        find_pg_dump((16, 2), [])
    assert str(raised.value).startswith(
        "no pg_dump can dump this server, PostgreSQL 16.2: pg_dump refuses a server newer "
        "than itself. Tried: no pg_dump on PATH\nPut a pg_dump 16 or newer first on PATH"
    )


def test_the_password_goes_to_pg_dump_in_its_environment_never_in_a_message(
    url: str, examples: Path, tmp_path: Path
) -> None:
    failing = fake_pg_dump(
        tmp_path,
        "99.0",
        'echo "pg_dump: error: given $*" >&2; [ -n "$PGPASSWORD" ] || exit 3; exit 1',
    )
    with Migrator(url, examples) as migrator, pytest.raises(SchemaDumpError) as raised:
        dump_schema(migrator, pg_dump=[failing])
    message = str(raised.value)
    assert message.startswith(f"pg_dump 99.0 ({failing}) failed (exit 1): pg_dump: error: given ")
    assert "--schema-only --no-owner --encoding=UTF8 --dbname postgresql://" in message
    assert SENTINEL not in message


def test_a_fleet_run_takes_no_dump_schema(url: str, examples: Path) -> None:
    fleet = invoke("--database-url", url, "--schemas-matching", "tenant_*", "up", "--dump-schema")
    assert fleet.exit_code == 2
    assert "--dump-schema: for one database only; over a fleet up takes none" in fleet.stderr

"""Each case project of tests/alembic_cases, imported and run by sqlmig next to Alembic
online on a second database; the schemas compared with ``pg_dump --schema-only``."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgsource
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from alembic_compat.adopt import adopt
from alembic_compat.errors import AdoptError
from alembic_compat.history import import_history
from sqlmig.cli import app
from sqlmig.dump import without_noise
from sqlmig.errors import MigrationError
from sqlmig.migrator import Migrator
from sqlmig.outcome import Outcome

pytestmark = pytest.mark.integration

CASES = Path(__file__).parents[1] / "alembic_cases"
SQLA14 = ("SQLAlchemy>=1.4,<2", "alembic>=1.13,<1.14", "psycopg2-binary>=2.9,<3")


@pytest.fixture
def second_database_url(pg_admin_url: str) -> Iterator[str]:
    with pgsource.fresh_database(pg_admin_url) as url:
        yield url


# --- the two tools ---------------------------------------------------------------------


def alembic(
    url: str,
    action: str,
    revision: str,
    ini: Path | None,
    *,
    section: str = "alembic",
    script_location: Path | None = None,
) -> None:
    """``alembic [-n SECTION] upgrade|downgrade REVISION`` online, in this process."""
    config = Config(None if ini is None else str(ini), ini_section=section)
    if script_location is not None:
        config.set_main_option("script_location", str(script_location))
    config.attributes["url"] = url
    getattr(command, action)(config, revision)


def sqlmig_up(url: str, directory: Path, **options: Any) -> list[str]:
    with Migrator(url, directory, **options) as migrator:
        return [r.version for r in migrator.up().migrations]


def sqlmig_down_to_base(url: str, directory: Path, **options: Any) -> None:
    with Migrator(url, directory, **options) as migrator:
        migrator.down(steps=None)


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


# --- comparing schemas ---------------------------------------------------------------------


def pg_dump() -> str:
    """pg_dump of pgserver's PostgreSQL 16 (it dumps 16 and older), else the one on PATH."""
    import pgserver

    shipped = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    found = str(shipped) if shipped.exists() else shutil.which("pg_dump")
    if found is None:
        pytest.fail("no pg_dump: pgserver ships one, install the test extra", pytrace=False)
    return found


def schema_dump(url: str) -> list[str]:
    """The database's schema as pg_dump prints it, without the two tools' tables,
    comments, blank lines and session settings. The password goes through the
    environment, never the command line."""
    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host or "localhost"
    env = {**os.environ, "PGPASSWORD": parsed.password or ""}
    done = subprocess.run(
        [
            pg_dump(),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            *("--exclude-table", "alembic_version*"),
            *("--exclude-table", "*.alembic_version*"),
            *("--exclude-table", "schema_migrations*"),
            *("--host", str(host)),
            *("--port", str(parsed.port or 5432)),
            *("--username", parsed.username or "postgres"),
            parsed.database or "postgres",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [
        line
        for line in without_noise(done.stdout).splitlines()
        if line.strip()
        and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict"))
        and not line.startswith("\\unrestrict")
    ]


def same_schema(alembic_url: str, sqlmig_url: str) -> list[str]:
    """The dump both databases share; fails with the lines that differ."""
    by_alembic, by_sqlmig = schema_dump(alembic_url), schema_dump(sqlmig_url)
    diff = list(difflib.unified_diff(by_alembic, by_sqlmig, "alembic", "sqlmig", lineterm=""))
    assert not diff, "\n".join(diff)
    return by_alembic


# --- autocommit_block() --------------------------------------------------------------------

SEGMENTS = CASES / "segments" / "alembic.ini"


@pytest.fixture
def segments(tmp_path: Path) -> Path:
    out = tmp_path / "segments"
    import_history(SEGMENTS, out)
    return out


def test_an_autocommit_block_revision_runs_as_alembic_runs_it_set_local_included(
    database_url: str, second_database_url: str, segments: Path
) -> None:
    alembic(database_url, "upgrade", "head", SEGMENTS)
    assert sqlmig_up(second_database_url, segments) == ["0001", "0002"]

    dump = same_schema(database_url, second_database_url)
    assert "CREATE INDEX ix_accounts_plan ON public.accounts USING btree (plan);" in dump
    seen = "SELECT phase, lock_timeout FROM settings_seen ORDER BY phase DESC"
    assert rows(database_url, seen) == [("before", "5s"), ("after", "5s")]
    assert rows(second_database_url, seen) == [("before", "5s"), ("after", "5s")]

    alembic(database_url, "downgrade", "base", SEGMENTS)
    sqlmig_down_to_base(second_database_url, segments)
    assert "CREATE TABLE public.accounts (" not in same_schema(database_url, second_database_url)


@pytest.mark.parametrize(
    ("rows_before", "kept", "rolled_back"),
    [
        # NULL emails: the SET NOT NULL before the block fails; nothing of it remains.
        (
            "INSERT INTO accounts (email) VALUES (NULL)",
            [],
            "no statement before it was applied; the transaction it was in (lines 7-22)",
        ),
        # A duplicate email: the UNIQUE after the block fails; the first transaction and
        # the index stay, the last transaction is rolled back.
        (
            "INSERT INTO accounts (email) VALUES ('a@example.com'), ('a@example.com')",
            [("before", "5s")],
            "statements 1-8 of 14 were applied and committed (ending at line 24); the "
            "transaction it was in (lines 26-36)",
        ),
    ],
    ids=["before-the-block", "after-the-block"],
)
def test_a_failure_around_the_block_leaves_what_alembic_leaves(
    database_url: str,
    second_database_url: str,
    segments: Path,
    rows_before: str,
    kept: list[tuple[str, str]],
    rolled_back: str,
) -> None:
    alembic(database_url, "upgrade", "a1b2c3d4e5f6", SEGMENTS)
    execute(database_url, rows_before)
    with Migrator(second_database_url, segments) as migrator:
        migrator.up(target="0001")
        execute(second_database_url, rows_before)

        with pytest.raises(sa.exc.IntegrityError):
            alembic(database_url, "upgrade", "head", SEGMENTS)
        with pytest.raises(MigrationError) as caught:
            migrator.up()
        status = {s.version: s.state.value for s in migrator.status()}

    same_schema(database_url, second_database_url)
    assert rows(database_url, "SELECT version_num FROM alembic_version") == [("a1b2c3d4e5f6",)]
    assert status["0002"] == "failed"
    assert caught.value.outcome is Outcome.NEEDS_REPAIR
    assert f"{rolled_back} was rolled back" in str(caught.value)
    if kept:
        seen = "SELECT phase, lock_timeout FROM settings_seen"
        assert rows(database_url, seen) == rows(second_database_url, seen) == kept


# --- code that runs only online ----------------------------------------------------------------

ONLINE_ONLY = CASES / "online_only" / "alembic.ini"
TOTALS = "CREATE TABLE order_totals AS SELECT id, total_cents / 100.0 AS euros FROM orders;\n"


def test_online_only_code_is_what_differs_until_written_by_hand(
    database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    result = import_history(ONLINE_ONLY, tmp_path)
    alembic(database_url, "upgrade", "head", ONLINE_ONLY)
    sqlmig_up(second_database_url, tmp_path)

    missing = set(schema_dump(database_url)) - set(schema_dump(second_database_url))
    assert "CREATE TABLE public.order_totals (" in missing

    sqlmig_down_to_base(second_database_url, tmp_path)
    listed = {o.version for o in result.online_only}
    totals = next(m.files[0] for m in result.imported if m.version == "0003")
    assert listed == {"0002", "0003"}
    totals.write_text(
        totals.read_text().replace(totals.read_text().splitlines()[-1] + "\n", TOTALS)
    )
    sqlmig_up(second_database_url, tmp_path)
    same_schema(database_url, second_database_url)


# --- merges ------------------------------------------------------------------------------------

MERGES = CASES / "merges" / "alembic.ini"


def test_a_linearized_merge_history_builds_alembics_schema_and_adopts(
    database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    result = import_history(MERGES, tmp_path, linearize=True)
    alembic(database_url, "upgrade", "head", MERGES)
    assert sqlmig_up(second_database_url, tmp_path) == [m.version for m in result.imported]

    dump = same_schema(database_url, second_database_url)
    assert "CREATE TABLE public.invoices (" in dump
    adopted = adopt(database_url, tmp_path)
    assert adopted.versions == tuple(m.version for m in result.imported)

    alembic(database_url, "downgrade", "base", MERGES)
    sqlmig_down_to_base(second_database_url, tmp_path)
    same_schema(database_url, second_database_url)


# --- where the project is -------------------------------------------------------------------


def test_a_flask_migrate_layout_imports_with_script_location(
    database_url: str, second_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "flask_layout")
    import_history(None, tmp_path, script_location="migrations")
    # As Flask-Migrate runs Alembic: its ini, and script_location set in code.
    alembic(
        database_url,
        "upgrade",
        "head",
        Path("migrations/alembic.ini"),
        script_location=Path("migrations"),
    )
    sqlmig_up(second_database_url, tmp_path)

    assert 'CREATE TABLE public."user" (' in same_schema(database_url, second_database_url)


def test_each_history_of_a_multi_section_ini_imports_with_name(
    database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    ini = CASES / "multi_section" / "alembic.ini"
    for section in ("core", "audit"):
        import_history(ini, tmp_path / section, name=section)
        alembic(database_url, "upgrade", "head", ini, section=section)
        sqlmig_up(second_database_url, tmp_path / section, table=f"schema_migrations_{section}")

    dump = same_schema(database_url, second_database_url)
    assert "CREATE TABLE audit.events (" in dump and "CREATE TABLE public.items (" in dump


def test_a_revision_that_imports_the_project_renders_with_its_path(
    database_url: str,
    second_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = CASES / "import_error"
    monkeypatch.setenv("PYTHONPATH", str(project))  # for both interpreters below
    import_history(project / "alembic.ini", tmp_path, python=sys.executable)
    # Alembic in an interpreter of its own too, so that `shop` stays out of this one.
    upgrade = (
        "import sys\n"
        "from alembic import command, config\n"
        "command.upgrade(config.Config(sys.argv[1]), 'head')"
    )
    done = subprocess.run(
        [sys.executable, "-c", upgrade, str(project / "alembic.ini")],
        capture_output=True,
        text=True,
        env={**os.environ, "CASE_DATABASE_URL": database_url},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    sqlmig_up(second_database_url, tmp_path)

    assert "    price numeric(12,2) DEFAULT '0'::numeric NOT NULL," in same_schema(
        database_url, second_database_url
    )


# --- SQLAlchemy 1.4, through --python ------------------------------------------------------

SQLA14_INI = CASES / "sqla14" / "alembic.ini"


@pytest.fixture(scope="session")
def sqla14_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with SQLAlchemy 1.4 and a matching Alembic, from the package
    registry, kept in pytest's cache between runs (when the cache is on)."""
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("sqla14-venv") if cache else tmp_path_factory.mktemp("sqla14-venv")
    python = folder / "bin" / "python"
    stamp = folder / "requirements.txt"
    wanted = "\n".join(SQLA14) + "\n"
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(folder, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(folder)],
            [str(python), "-m", "pip", "install", "--quiet", *SQLA14],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                message = f"cannot create the SQLAlchemy 1.4 environment: {done.stderr[-2000:]}"
                if pgsource.in_ci():
                    pytest.fail(message, pytrace=False)
                pytest.skip(message)
        stamp.write_text(wanted)
    return python


def test_a_sqlalchemy_14_project_imports_with_its_own_python(
    database_url: str, second_database_url: str, tmp_path: Path, sqla14_python: Path
) -> None:
    result = import_history(SQLA14_INI, tmp_path, python=sqla14_python)
    # Alembic 1.13 on SQLAlchemy 1.4 online, in that environment.
    members = "INSERT INTO members (name, active) VALUES ('ann', true), ('bob', false)"
    upgrade = (
        "import sys\n"
        "from alembic import command\n"
        "from alembic.config import Config\n"
        "command.upgrade(Config(sys.argv[1]), '4e5f60718293')\n"
        "import sqlalchemy as sa, os\n"
        "url = sa.engine.make_url(os.environ['CASE_DATABASE_URL'])\n"
        "engine = sa.create_engine(url.set(drivername='postgresql+psycopg2'))\n"
        "with engine.begin() as conn:\n"
        f"    conn.exec_driver_sql({members!r})\n"
        "command.upgrade(Config(sys.argv[1]), 'head')\n"
        "print(sa.__version__)\n"
    )
    done = subprocess.run(
        [str(sqla14_python), "-c", upgrade, str(SQLA14_INI)],
        capture_output=True,
        text=True,
        env={**os.environ, "CASE_DATABASE_URL": database_url},
        timeout=120,
        check=False,
    )
    with Migrator(second_database_url, tmp_path) as migrator:
        migrator.up(target="0001")
        execute(second_database_url, members)
        migrator.up()

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1.4.")
    assert result.python == str(sqla14_python)
    same_schema(database_url, second_database_url)
    badges = "SELECT m.name, b.kind FROM badges b JOIN members m ON m.id = b.member_id"
    assert rows(database_url, badges) == rows(second_database_url, badges) == [("ann", "founder")]


@pytest.mark.parametrize(
    ("heads", "versions"),
    [(("0d0000000004",), 3), (("0e0000000005", "0d0000000004"), 5)],
    ids=["one-branch", "both-branches-unmerged"],
)
def test_adopt_takes_a_database_part_way_through_a_linearized_history(
    database_url: str, tmp_path: Path, heads: tuple[str, ...], versions: int
) -> None:
    import_history(MERGES, tmp_path, linearize=True)
    for head in heads:
        alembic(database_url, "upgrade", head, MERGES)

    adopted = adopt(database_url, tmp_path)

    assert adopted.versions == tuple(f"{v:04}" for v in range(1, versions + 1))
    assert adopted.revision == ",".join(sorted(heads))
    assert sqlmig_up(database_url, tmp_path) == [f"{v:04}" for v in range(versions + 1, 8)]


def test_adopt_refuses_a_branch_whose_history_the_imported_order_does_not_start_with(
    database_url: str, tmp_path: Path
) -> None:
    import_history(MERGES, tmp_path, linearize=True)
    alembic(database_url, "upgrade", "0c0000000003", MERGES)  # 0004 in the order, not 0003

    with pytest.raises(AdoptError) as caught:
        adopt(database_url, tmp_path)

    assert caught.value.problems == [
        "0003 0003_customer_emails_on_another_branch.up.sql: 0d0000000004"
    ]
    assert "`alembic upgrade 0d0000000004`" in str(caught.value)
    alembic(database_url, "upgrade", "0d0000000004", MERGES)  # as the error advises
    assert adopt(database_url, tmp_path).versions == ("0001", "0002", "0003", "0004")


def test_adopt_reads_the_version_table_of_a_section(database_url: str, tmp_path: Path) -> None:
    ini = CASES / "multi_section" / "alembic.ini"
    import_history(ini, tmp_path, name="audit")
    alembic(database_url, "upgrade", "8c9d0e1f2a3b", ini, section="audit")
    base = ["--database-url", database_url, "--dir", str(tmp_path), "alembic", "adopt"]

    default = CliRunner().invoke(app, base)
    core = CliRunner().invoke(app, [*base, "--config", str(ini), "--name", "core"])
    audit = CliRunner().invoke(app, [*base, "--config", str(ini), "-n", "audit"])

    assert default.exit_code == 1
    assert "the database has no alembic_version table" in default.stderr
    # The section's env.py names its table through the ini's version_table option.
    assert core.exit_code == 1
    assert "the database has no alembic_version_core table" in core.stderr
    assert audit.exit_code == 0, audit.stderr
    assert "adopted Alembic revision 8c9d0e1f2a3b: recorded 1 migrations" in audit.stdout
    assert "alembic_version_audit was kept" in audit.stdout


def test_adopt_takes_the_version_table_as_given(database_url: str, tmp_path: Path) -> None:
    ini = CASES / "multi_section" / "alembic.ini"
    import_history(ini, tmp_path, name="audit")
    alembic(database_url, "upgrade", "8c9d0e1f2a3b", ini, section="audit")
    base = ["--database-url", database_url, "--dir", str(tmp_path), "alembic", "adopt"]

    given = CliRunner().invoke(app, [*base, "--version-table", "public.alembic_version_audit"])

    assert given.exit_code == 0, given.stderr
    assert "public.alembic_version_audit was kept" in given.stdout

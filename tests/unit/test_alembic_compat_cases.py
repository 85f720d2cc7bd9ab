"""Importing the case projects of tests/alembic_cases without a database."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alembic_compat.errors import (
    AlembicConfigError,
    NonLinearHistoryError,
    OnlineOnlyError,
    UnrenderableError,
)
from alembic_compat.files import migration_name
from alembic_compat.history import import_history
from sqlmig.cli import app
from sqlmig.migrator import validate_files

CASES = Path(__file__).parents[1] / "alembic_cases"


def sqlmig(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


# --- names -------------------------------------------------------------------------


def test_a_long_message_is_cut_after_a_whole_word() -> None:
    message = "Plans, indexed concurrently; the email check becomes a unique email"

    name = migration_name(message, "b2c3d4e5f6a7")

    assert name == "plans_indexed_concurrently_the_email_check_becomes_a_unique"
    assert len(name) <= 60
    assert migration_name("x" * 70, "b2c3d4e5f6a7") == "x" * 60  # one word: cut where it must


# --- autocommit_block() ------------------------------------------------------------


def test_a_revision_mixing_an_autocommit_block_keeps_its_transactions(tmp_path: Path) -> None:
    result = import_history(CASES / "segments" / "alembic.ini", tmp_path)

    mixed = result.imported[1]
    assert not mixed.transactional
    up = mixed.files[0].read_text()
    body = up[up.index("\n\n") + 2 :].split("\n\n")
    assert body[0] == "BEGIN;" and body[1] == "SET LOCAL lock_timeout = '5s';"
    block = body.index("CREATE INDEX CONCURRENTLY ix_accounts_plan ON accounts (plan);")
    assert body[block - 1] == "COMMIT;" and body[block + 1] == "BEGIN;"
    assert body[block + 2] == "SET LOCAL lock_timeout = '5s';"
    assert body[-1] == "COMMIT;\n"
    assert "-- As Alembic runs it: 2 transactions (each BEGIN … COMMIT below) and 1 " in up
    migration = validate_files(tmp_path)[1]  # sqlmig accepts the segments
    assert not migration.up.transactional
    assert migration.down is not None and not migration.down.transactional


# --- code that runs only online ------------------------------------------------------


def test_online_only_code_is_listed_and_each_file_says_so(tmp_path: Path) -> None:
    result = import_history(CASES / "online_only" / "alembic.ini", tmp_path)

    found = [(o.version, o.direction, o.line, o.reason) for o in result.online_only]
    assert found == [
        (
            "0002",
            "upgrade",
            18,
            "upgrade() branches on is_offline_mode(): what it runs online is not here",
        ),
        ("0003", "upgrade", 17, "upgrade() branches on as_sql: what it runs online is not here"),
    ]
    backfill = result.imported[1].files[0].read_text()
    assert (
        "-- ONLINE ONLY: offline rendering cannot see what this revision does online:" in backfill
    )
    assert "--   line 18: upgrade() branches on is_offline_mode()" in backfill
    assert "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';" in backfill
    totals = result.imported[2].files[0].read_text()
    assert "nothing to do" not in totals
    assert totals.endswith("SELECT 1;  -- offline rendering gave no SQL: see ONLINE ONLY above\n")
    assert "ONLINE ONLY" not in result.imported[2].files[1].read_text()  # the downgrade is whole


def test_a_function_with_code_that_renders_nothing_is_listed(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    (project / "versions" / "aa_seed.py").write_text(
        '"""Seed"""\n'
        "from alembic import context, op\n\n"
        "revision = 'aa'\ndown_revision = None\n\n\n"
        "def upgrade():\n"
        '    """Seeds the plans when run with -x seed=1."""\n'
        "    if context.get_x_argument(as_dictionary=True).get('seed'):\n"
        "        op.execute(\"INSERT INTO plans VALUES ('free')\")\n\n\n"
        "def downgrade():\n"
        "    pass\n"
    )

    result = import_history(project / "alembic.ini", tmp_path / "out")

    [found] = result.online_only
    assert (found.direction, found.line) == ("upgrade", 10)
    assert found.reason.startswith("upgrade() has code but renders no SQL offline")


def test_strict_refuses_online_only_code_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"

    with pytest.raises(OnlineOnlyError) as caught:
        import_history(CASES / "online_only" / "alembic.ini", out, strict=True)

    assert caught.value.exit_code == 1
    assert len(caught.value.problems) == 2
    assert "d2e3f4a5b6c7_order_status_backfilled.py:18" in caught.value.problems[0]
    assert not out.exists()


def test_the_command_line_lists_online_only_code_in_text_and_json(tmp_path: Path) -> None:
    ini = str(CASES / "online_only" / "alembic.ini")

    text = sqlmig("--dir", str(tmp_path / "a"), "alembic", "import", "-c", ini)
    as_json = sqlmig(
        "--format", "json", "--dir", str(tmp_path / "b"), "alembic", "import", "-c", ini
    )
    strict = sqlmig("--dir", str(tmp_path / "c"), "alembic", "import", "-c", ini, "--strict")

    assert text.exit_code == 0, text.stderr
    assert "2 places run only online" in text.stderr
    assert "  0003 <- e3f4a5b6c7d8 (versions/e3f4a5b6c7d8_totals_in_euros.py:17): " in text.stderr
    listed = json.loads(as_json.stdout)["online_only"]
    assert [(o["version"], o["line"], o["direction"]) for o in listed] == [
        ("0002", 18, "upgrade"),
        ("0003", 17, "upgrade"),
    ]
    assert strict.exit_code == 1
    assert "with --strict nothing was written" in strict.stderr
    assert not (tmp_path / "c").exists()


# --- revisions that cannot be imported ------------------------------------------------


def test_a_revision_that_cannot_be_imported_is_named_with_the_hint(tmp_path: Path) -> None:
    with pytest.raises(UnrenderableError) as caught:
        import_history(CASES / "import_error" / "alembic.ini", tmp_path / "out")

    [failure] = caught.value.failures
    assert (failure.revision, failure.version, failure.direction) == ("2c3d4e5f6071", "0002", None)
    assert failure.source == "versions/2c3d4e5f6071_product_prices.py"
    assert failure.reason == (
        "ModuleNotFoundError: No module named 'shop' (line 9: from shop.types import money)"
    )
    message = str(caught.value)
    assert "could not be imported or rendered to SQL offline" in message
    assert "PYTHONPATH, or prepend_sys_path in the ini" in message
    assert "python=.venv/bin/python" in message
    assert caught.value.options == ("skip_unrenderable", "python")


def test_skip_unrenderable_covers_a_revision_that_cannot_be_imported(tmp_path: Path) -> None:
    result = import_history(
        CASES / "import_error" / "alembic.ini", tmp_path, skip_unrenderable=True
    )

    assert [m.version for m in result.imported] == ["0001", "0003"]
    [skipped] = result.skipped
    assert skipped.files == ("0002_product_prices.up.sql", "0002_product_prices.down.sql")
    assert skipped.header == "-- alembic revision: 2c3d4e5f6071 (down_revision: 1b2c3d4e5f60)"


def test_python_renders_in_another_interpreter_with_its_own_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(CASES / "import_error"))

    result = import_history(CASES / "import_error" / "alembic.ini", tmp_path, python=sys.executable)

    assert [m.version for m in result.imported] == ["0001", "0002", "0003"]
    assert result.python == sys.executable
    price = result.imported[1].files[0].read_text()
    assert "ALTER TABLE products ADD COLUMN price NUMERIC(12, 2) DEFAULT '0' NOT NULL;" in price


def test_an_interpreter_that_cannot_run_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(AlembicConfigError, match=r"python=.*nope: cannot run it") as caught:
        import_history(CASES / "segments" / "alembic.ini", tmp_path, python=tmp_path / "nope")

    assert caught.value.exit_code == 2


def test_an_interpreter_without_alembic_says_so(tmp_path: Path) -> None:
    with pytest.raises(AlembicConfigError, match="it needs Alembic") as caught:
        import_history(
            CASES / "segments" / "alembic.ini", tmp_path, python=_python_without_alembic(tmp_path)
        )

    assert "ModuleNotFoundError" in str(caught.value)


def _python_without_alembic(tmp_path: Path) -> Path:
    """An interpreter that cannot import alembic: this one, told to block it. sqlmig
    calls it with ``-c CODE ARGS...``; it runs CODE with ``sys.argv`` as -c would."""
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        f"exec {sys.executable} -c \"import sys; sys.modules['alembic'] = None; "
        'code = sys.argv[2]; sys.argv = sys.argv[:1] + sys.argv[3:]; exec(code)" "$@"\n'
    )
    script.chmod(0o755)
    return script


# --- where the project is ---------------------------------------------------------------


def test_script_location_alone_reads_a_flask_migrate_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "flask_layout")

    result = import_history(None, tmp_path, script_location="migrations")

    assert [m.name for m in result.imported] == ["initial_migration", "posts_table"]
    assert result.imported[0].files[0].read_text().splitlines()[2] == (
        "-- upgrade() of migrations/versions/5f1c2a3b4d5e_initial_migration.py, rendered by "
        "`sqlmig alembic import`."
    )


def test_an_ini_without_script_location_names_both_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "flask_layout")

    with pytest.raises(AlembicConfigError) as caught:
        import_history("migrations/alembic.ini", tmp_path)

    message = str(caught.value)
    assert message.startswith("migrations/alembic.ini [alembic] sets no script_location")
    assert "script_location=DIR" in message and "name=SECTION" in message
    ini_and_dir = import_history("migrations/alembic.ini", tmp_path, script_location="migrations")
    assert len(ini_and_dir.imported) == 2


def test_name_picks_one_history_of_an_ini_with_several(tmp_path: Path) -> None:
    ini = CASES / "multi_section" / "alembic.ini"

    with pytest.raises(AlembicConfigError) as caught:
        import_history(ini, tmp_path / "default")
    audit = import_history(ini, tmp_path / "audit", name="audit")

    assert "has no [alembic] section" in str(caught.value)
    assert "the sections with a script_location are [core], [audit]" in str(caught.value)
    assert [m.revision for m in audit.imported] == ["8c9d0e1f2a3b", "9d0e1f2a3b4c"]


def test_the_command_line_takes_script_location_and_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "flask_layout")
    multi = str(CASES / "multi_section" / "alembic.ini")

    flask = sqlmig(
        "--dir", str(tmp_path / "f"), "alembic", "import", "--script-location", "migrations"
    )
    missing = sqlmig("--dir", str(tmp_path / "m"), "alembic", "import")
    core = sqlmig("--dir", str(tmp_path / "c"), "alembic", "import", "-c", multi, "-n", "core")

    assert flask.exit_code == 0, flask.stderr
    assert "imported 2 Alembic revisions" in flask.stdout
    assert missing.exit_code == 2
    assert "or its migrations directory as --script-location DIR" in missing.stderr
    assert core.exit_code == 0, core.stderr
    assert "  0001 items <- 7b8c9d0e1f2a" in core.stdout


# --- merges ---------------------------------------------------------------------------


def test_merges_refuse_without_linearize_and_import_in_alembics_order_with_it(
    tmp_path: Path,
) -> None:
    ini = CASES / "merges" / "alembic.ini"

    with pytest.raises(NonLinearHistoryError, match="linearize=True can import it"):
        import_history(ini, tmp_path)
    result = import_history(ini, tmp_path, linearize=True)

    assert [m.revision for m in result.imported] == [
        "0a0000000001",
        "0b0000000002",
        "0d0000000004",
        "0c0000000003",
        "0e0000000005",
        "0f0000000006",
        "1a0000000007",
    ]
    merge = result.imported[5]
    assert merge.merges == ("0e0000000005", "0d0000000004")
    assert merge.down_revision == "0e0000000005,0d0000000004"
    up = merge.files[0].read_text()
    assert (
        up.splitlines()[0]
        == "-- alembic revision: 0f0000000006 (down_revision: 0e0000000005,0d0000000004)"
    )
    assert "-- A merge of 0e0000000005 (0005), 0d0000000004 (0003), imported in a line" in up
    assert len(validate_files(tmp_path)) == 7


def test_linearize_still_refuses_two_heads(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    for revision, down in (("aa", None), ("bb", "aa"), ("cc", "aa")):
        (project / "versions" / f"{revision}.py").write_text(
            f'"""{revision}"""\nrevision = {revision!r}\ndown_revision = {down!r}\n\n\n'
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
        )

    with pytest.raises(NonLinearHistoryError) as caught:
        import_history(project / "alembic.ini", tmp_path / "out", linearize=True)

    assert "2 heads" in str(caught.value)
    assert "head bb (bb), on the branch bb <- forks from aa" in str(caught.value)
    assert "alembic merge heads" in str(caught.value)


def test_linearize_on_the_command_line_shows_the_merge(tmp_path: Path) -> None:
    ini = str(CASES / "merges" / "alembic.ini")

    result = sqlmig("--dir", str(tmp_path), "alembic", "import", "-c", ini, "--linearize")

    assert result.exit_code == 0, result.stderr
    assert (
        "  0006 merge_invoices_and_emails <- 0f0000000006 (merges 0e0000000005, 0d0000000004)"
        in result.stdout
    )

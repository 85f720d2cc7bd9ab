"""Many databases and tenant schemas on a real PostgreSQL: every target reaches the head
exactly once, failures stay with their target, shards split the fleet, an interrupt
leaves every target true, and the server never sees more than the connection budget."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import clean_environ, libpq, write
from procs import GATE_SQL, closed_gate, wait_for
from sqlalchemy.engine import make_url

from sqlmig.fleet import (
    FleetResult,
    Target,
    TargetState,
    databases_matching,
    load_targets,
    migrate_fleet,
    schemas_matching,
    shard,
)

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).parent / "sqlmig"
SENTINEL = "fleet-S3cr3t-pw"


def three(folder: Path) -> Path:
    """Three migrations, each leaving a row in a ledger, so a second run would show."""
    return write(
        folder,
        {
            "0001_ledger.up.sql": "CREATE TABLE ledger (version text);\n"
            "INSERT INTO ledger VALUES ('0001');\n",
            "0002_b.up.sql": "CREATE TABLE b (id int);\nINSERT INTO ledger VALUES ('0002');\n",
            "0003_c.up.sql": "CREATE TABLE c (id int);\nINSERT INTO ledger VALUES ('0003');\n",
        },
    )


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq(database_url), autocommit=True) as c:
        yield c


def make_schemas(conn: psycopg.Connection, count: int, prefix: str = "tenant_") -> None:
    conn.execute(";".join(f"CREATE SCHEMA {prefix}{n:03d}" for n in range(count)))


def ledger(conn: psycopg.Connection, schema: str) -> list[str]:
    return [v for (v,) in conn.execute(f"SELECT version FROM {schema}.ledger ORDER BY 1")]


def states(result: FleetResult) -> dict[str, str]:
    return {r.target.name: r.state.value for r in result.results}


# --- every target, exactly once ----------------------------------------------------------------


def test_two_hundred_schemas_reach_the_head_and_a_second_run_touches_nothing(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 200)
    folder = three(tmp_path / "m")
    fleet = schemas_matching(database_url, "tenant_*")
    assert len(fleet) == 200

    first = migrate_fleet(fleet, folder, jobs=4)
    second = migrate_fleet(fleet, folder, jobs=4)

    assert first.exit_code == 0 and set(states(first).values()) == {"applied"}
    assert {r.after for r in first.results} == {"0003"}
    assert second.exit_code == 0 and set(states(second).values()) == {"up_to_date"}
    for n in (0, 99, 199):
        assert ledger(conn, f"tenant_{n:03d}") == ["0001", "0002", "0003"]
        # each tenant's tracking table lives in its schema
        assert conn.execute(
            f"SELECT count(*) FROM tenant_{n:03d}.schema_migrations"
        ).fetchone() == (3,)
    assert conn.execute("SELECT to_regclass('public.ledger')").fetchone() == (None,)


def test_fifty_databases_reach_the_head_and_a_second_run_touches_nothing(
    pg_admin_url: str, tmp_path: Path
) -> None:
    prefix = f"fleet_{uuid.uuid4().hex[:8]}_"
    admin = psycopg.connect(libpq(pg_admin_url), autocommit=True)
    names = [f"{prefix}{n:02d}" for n in range(50)]
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        folder = three(tmp_path / "m")
        fleet = databases_matching(pg_admin_url, f"{prefix}*")
        assert sorted(t.name for t in fleet) == names

        first = migrate_fleet(fleet, folder, jobs=4)
        second = migrate_fleet(fleet, folder, jobs=4)

        assert set(states(first).values()) == {"applied"}
        assert set(states(second).values()) == {"up_to_date"}
        url = make_url(pg_admin_url).set(database=names[-1])
        with psycopg.connect(libpq(url.render_as_string(hide_password=False))) as c:
            assert ledger(c, "public") == ["0001", "0002", "0003"]
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_two_fleet_runs_at_once_apply_each_migration_once_per_target(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 30)
    folder = three(tmp_path / "m")
    fleet = schemas_matching(database_url, "tenant_*")
    results: list[FleetResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(migrate_fleet(fleet, folder, jobs=3)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert [r.exit_code for r in results] == [0, 0]
    for n in range(30):
        assert ledger(conn, f"tenant_{n:03d}") == ["0001", "0002", "0003"]
    applied = sum(len(r.applied) for result in results for r in result.results)
    assert applied == 30 * 3


def test_shards_run_at_once_cover_every_target_exactly_once(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 40)
    folder = three(tmp_path / "m")
    fleet = schemas_matching(database_url, "tenant_*")
    parts = [shard(fleet, k, 3) for k in (1, 2, 3)]
    assert sorted(t.name for part in parts for t in part) == sorted(t.name for t in fleet)
    assert all(parts)

    results: list[FleetResult] = []
    threads = [
        threading.Thread(target=lambda p=part: results.append(migrate_fleet(p, folder)))
        for part in parts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    reported = sorted(r.target.name for result in results for r in result.results)
    assert reported == sorted(t.name for t in fleet)
    assert all(r.state is TargetState.APPLIED for result in results for r in result.results)


# --- failures stay with their target -------------------------------------------------------


def broken_tenant(conn: psycopg.Connection) -> None:
    """tenant_005 already has the table 0002 creates: its 0002 fails."""
    conn.execute("CREATE TABLE tenant_005.b (id int)")


def test_with_continue_every_other_tenant_reaches_the_head(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 12)
    broken_tenant(conn)
    folder = three(tmp_path / "m")

    result = migrate_fleet(
        schemas_matching(database_url, "tenant_*"), folder, jobs=3, on_error="continue"
    )

    assert result.exit_code == 1
    failed = [r for r in result.results if r.state is TargetState.FAILED]
    assert [r.target.name for r in failed] == ["tenant_005"]
    error = failed[0].error
    assert error is not None
    assert (getattr(error, "version", None), getattr(error, "line", None)) == ("0002", 1)
    assert str(folder / "0002_b.up.sql") in str(error)
    assert failed[0].applied == ("0001",)
    assert ledger(conn, "tenant_005") == ["0001"]  # 0002 rolled back whole
    others = [r for r in result.results if r.target.name != "tenant_005"]
    assert {r.state for r in others} == {TargetState.APPLIED}


def test_with_stop_no_target_starts_after_a_failure_and_none_is_half_done(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 12)
    broken_tenant(conn)
    folder = three(tmp_path / "m")

    result = migrate_fleet(schemas_matching(database_url, "tenant_*"), folder, jobs=1)

    assert result.exit_code == 1
    assert states(result) == {
        **{f"tenant_{n:03d}": "applied" for n in range(5)},
        "tenant_005": "failed",
        **{f"tenant_{n:03d}": "not_reached" for n in range(6, 12)},
    }
    for n in range(6, 12):
        assert conn.execute(f"SELECT to_regclass('tenant_{n:03d}.ledger')").fetchone() == (None,)
    # a second run completes what is left once the tenant is fixed
    conn.execute("DROP TABLE tenant_005.b")
    again = migrate_fleet(schemas_matching(database_url, "tenant_*"), folder, jobs=4)
    assert again.exit_code == 0
    assert states(again)["tenant_000"] == "up_to_date"
    assert all(ledger(conn, f"tenant_{n:03d}") == ["0001", "0002", "0003"] for n in range(12))


def test_lock_busy_targets_exit_3(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 3)
    folder = three(tmp_path / "m")
    fleet = schemas_matching(database_url, "tenant_*")
    held = fleet[1].lock_id
    conn.execute("SELECT pg_advisory_lock(%s)", (held,))

    result = migrate_fleet(fleet, folder, lock_timeout=0)

    assert result.exit_code == 3
    assert states(result) == {
        "tenant_000": "applied",
        "tenant_001": "lock_busy",
        "tenant_002": "applied",
    }


# --- the command line ----------------------------------------------------------------------


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def clean_env(**extra: str) -> dict[str, str]:
    return {**clean_environ(), **extra}


def with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_a_targets_file_with_urls_from_the_environment_never_shows_a_password(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 3)
    folder = three(tmp_path / "m")
    (tmp_path / "targets.toml").write_text(
        "".join(
            f'[[targets]]\nname = "t{n}"\nurl_env = "TENANT_DB"\nschema = "tenant_{n:03d}"\n'
            for n in range(3)
        )
    )
    # trust auth: the password is sent and ignored, and must show nowhere
    env = clean_env(TENANT_DB=with_password(database_url, SENTINEL), SQLMIG_DIR=str(folder))

    text_run = cli("--targets", "targets.toml", "up", env=env, cwd=tmp_path)
    json_run = cli("--targets", "targets.toml", "--format", "json", "status", env=env, cwd=tmp_path)

    assert text_run.returncode == 0, text_run.stderr
    lines = text_run.stdout.splitlines()
    assert lines[0].split() == ["target", "before", "after", "applied", "took", "result"]
    assert [line.split()[:4] for line in lines[2:5]] == [
        [f"t{n}", "-", "0003", "3"] for n in range(3)
    ]
    assert lines[-1].startswith("3 targets in ") and lines[-1].endswith(": 3 applied")
    doc = json.loads(json_run.stdout)
    assert (doc["ok"], doc["command"], doc["counts"]) == (True, "status", {"up_to_date": 3})
    assert [t["target"] for t in doc["targets"]] == ["t0", "t1", "t2"]
    for output in (text_run.stdout, text_run.stderr, json_run.stdout, json_run.stderr):
        assert SENTINEL not in output


def test_down_over_a_fleet_needs_yes_and_other_commands_refuse_a_fleet(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 2)
    folder = three(tmp_path / "m")
    env = clean_env(DATABASE_URL=database_url, SQLMIG_DIR=str(folder))
    fleet = ("--schemas-matching", "tenant_*")

    down = cli(*fleet, "down", env=env, cwd=tmp_path)
    history = cli(*fleet, "history", env=env, cwd=tmp_path)
    to = cli(*fleet, "up", "--to", "0002", env=env, cwd=tmp_path)

    assert (down.returncode, down.stderr) == (
        2,
        "error: down over a fleet rolls back every target: pass --yes to confirm\n",
    )
    assert history.returncode == 2 and "history runs on one database" in history.stderr
    assert to.returncode == 2 and "--to: for one database only" in to.stderr


def test_sigterm_mid_fleet_rolls_back_what_runs_and_a_rerun_completes(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 8)
    folder = three(tmp_path / "m")
    gated = f"CREATE TABLE b (id int);\nINSERT INTO ledger VALUES ('0002');\n{GATE_SQL}\n"
    write(folder, {"0002_b.up.sql": gated})
    env = clean_env(DATABASE_URL=database_url, SQLMIG_DIR=str(folder))
    with closed_gate(database_url):
        proc = subprocess.Popen(
            [
                str(SCRIPT),
                "--schemas-matching",
                "tenant_*",
                "--jobs",
                "2",
                "--format",
                "json",
                "up",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "OR (wait_event = 'advisory')"
                ).fetchone()[0]
                >= 2
            ),
            "two tenants waiting at the gate",
        )
        proc.send_signal(15)
        stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] == "SIGTERM"
    seen = {t["target"]: t["state"] for t in doc["targets"]}
    assert set(seen.values()) <= {"interrupted", "not_reached"}
    assert list(seen.values()).count("interrupted") == 2
    for n in range(8):  # 0002 of the tenants in flight rolled back: no table b
        assert conn.execute(f"SELECT to_regclass('tenant_{n:03d}.b')").fetchone() == (None,)

    again = cli("--schemas-matching", "tenant_*", "up", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for n in range(8):
        assert ledger(conn, f"tenant_{n:03d}") == ["0001", "0002", "0003"], again.stdout


def test_the_server_never_sees_more_connections_than_the_budget(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 40)
    folder = write(
        tmp_path / "m",
        {
            f"{n:04d}_t{n}.up.sql": f"CREATE TABLE t{n} (id int);\nSELECT pg_sleep(0.01);\n"
            for n in range(1, 6)
        },
    )
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(libpq(database_url), autocommit=True) as watcher:
            while not done.is_set():
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sqlmig' "
                    "AND datname = current_database()"
                ).fetchone()
                seen.append(int(row[0]) if row else 0)
                time.sleep(0.005)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        result = migrate_fleet(schemas_matching(database_url, "tenant_*"), folder, jobs=8, budget=6)
    finally:
        done.set()
        thread.join()

    assert result.exit_code == 0
    assert max(seen) <= 6
    assert max(seen) >= 4  # it did run targets side by side


def test_a_targets_file_is_checked_before_anything_runs(tmp_path: Path) -> None:
    from sqlmig.errors import UsageError

    (tmp_path / "t.toml").write_text('[[targets]]\nname = "a"\nurl_env = "NOPE"\n')
    with pytest.raises(UsageError, match=r"target 'a' takes its URL from \$NOPE, which is not set"):
        load_targets(tmp_path / "t.toml", {})
    (tmp_path / "t.toml").write_text(
        '[[targets]]\nname = "a"\nurl = "postgresql://h/a"\n'
        '[[targets]]\nname = "a"\nurl = "postgresql://h/b"\n'
    )
    with pytest.raises(UsageError, match="target names must differ; repeated: a"):
        load_targets(tmp_path / "t.toml", {})
    assert Target("x", "postgresql://u:pw@h/db").where == "postgresql://u:***@h/db"


def test_a_fleet_runs_under_the_lease_strategy_with_a_lease_per_tenant(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    make_schemas(conn, 5)
    folder = three(tmp_path / "m")

    result = migrate_fleet(
        schemas_matching(database_url, "tenant_*"), folder, lock_strategy="table"
    )

    assert result.exit_code == 0 and set(states(result).values()) == {"applied"}
    for n in range(5):
        assert ledger(conn, f"tenant_{n:03d}") == ["0001", "0002", "0003"]
        lease = conn.execute(f"SELECT to_regclass('tenant_{n:03d}.schema_migrations_lock')")
        assert lease.fetchone() != (None,)

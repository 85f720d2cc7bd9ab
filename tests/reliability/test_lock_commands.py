"""`sqlmig lock status` and `sqlmig lock release` while a real run holds the lock.

The lease (`--lock-strategy table`) is held through PgBouncer in transaction mode, the
advisory lock on a direct URL. Status names the holder in text and JSON and exits 1
while it is held; release removes an expired lease, refuses a live one without
--force, and with --force --yes removes a lease or terminates the session holding
the advisory lock, after which the run stops before its next migration (exit 4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from helpers import write
from procs import GATE_SQL, MIGRATION_LOCK, Observer, closed_gate, observer, runner, wait_for

pytestmark = pytest.mark.integration

THREE = {
    "0001_a.up.sql": "CREATE TABLE a (id int);\n",
    "0002_b.up.sql": f"CREATE TABLE b (id int);\n{GATE_SQL}\n",
    "0003_c.up.sql": "CREATE TABLE c (id int);\n",
}
TABLE = ["--lock-strategy", "table"]


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        yield o


def lease(db: Observer) -> dict[str, Any] | None:
    if db.value("SELECT to_regclass('public.schema_migrations_lock')") is None:
        return None
    rows = db.conn.execute("SELECT run_id, host, pid, expires_at FROM schema_migrations_lock")
    names = [c.name for c in rows.description or []]
    found = [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
    return found[0] if found else None


def setup(folder: Path) -> None:
    write(folder / "migrations", THREE)
    # A heartbeat that never comes during a test: the lease changes only as the test says.
    (folder / "sqlmig.toml").write_text("lock_ttl = 120\nlock_heartbeat = 60\n")


def test_lock_status_during_a_run_shows_the_lease_holder_in_text_and_json(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    setup(tmp_path)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start(*TABLE, "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        held = lease(db)
        assert held is not None
        text = r.run(*TABLE, "lock", "status")
        as_json = r.run(*TABLE, "--format", "json", "lock", "status")
        gate.open()
        assert up.wait().returncode == 0
        free = r.run(*TABLE, "--format", "json", "lock", "status")
        free_text = r.run(*TABLE, "lock", "status")

    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == (
        "held: the migration lock (lease in schema_migrations_lock, strategy table) is held"
    )
    details = dict(line.split(None, 1) for line in lines[1:])
    assert details["run"] == held["run_id"]
    assert details["host"] == held["host"]
    assert details["pid"] == str(up.pid)
    assert details["application"] == "sqlmig"
    assert details["heartbeat"].endswith("s ago")
    assert details["expires"].startswith("in ")

    assert as_json.returncode == 1, as_json.stderr
    doc = as_json.json()
    holder = doc.pop("holder")
    assert doc == {
        "ok": True,
        "command": "lock status",
        "strategy": "table",
        "lock": "lease in schema_migrations_lock",
        "held": True,
    }
    assert (holder["run_id"], holder["host"], holder["pid"]) == (
        held["run_id"],
        held["host"],
        up.pid,
    )
    assert holder["application"] == "sqlmig"
    assert holder["expires_at"] == held["expires_at"].isoformat()
    assert 0 <= holder["heartbeat_age_s"] < 60
    assert 60 < holder["expires_in_s"] <= 120
    assert holder["expired"] is False
    assert holder["since"] is not None and holder["heartbeat_at"] is not None

    assert free.returncode == 0, free.stderr
    assert free.json()["held"] is False and free.json()["holder"] is None
    assert free_text.stdout == (
        "free: nobody holds the migration lock (lease in schema_migrations_lock, strategy table)\n"
    )


def test_lock_status_during_a_run_shows_the_advisory_holder_in_text_and_json(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    setup(tmp_path)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start("up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        (pid,) = db.lock_holders()
        text = r.run("lock", "status")
        as_json = r.run("--format", "json", "lock", "status")
        gate.open()
        assert up.wait().returncode == 0
        free = r.run("lock", "status")

    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == (
        "held: the migration lock (advisory lock 123456789, strategy advisory) is held"
    )
    details = dict(line.split(None, 1) for line in lines[1:])
    assert details["pid"] == str(pid)
    assert details["application"] == "sqlmig"
    assert as_json.returncode == 1
    doc = as_json.json()
    assert (doc["strategy"], doc["lock"], doc["held"]) == (
        "advisory",
        "advisory lock 123456789",
        True,
    )
    assert doc["holder"]["pid"] == pid
    assert doc["holder"]["application"] == "sqlmig"
    assert doc["holder"]["run_id"] is None and doc["holder"]["expires_at"] is None
    assert free.returncode == 0
    assert free.stdout.startswith("free: nobody holds the migration lock (advisory lock")


def test_lock_release_refuses_a_live_lease_and_removes_an_expired_one(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    setup(tmp_path)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start(*TABLE, "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        held = lease(db)
        assert held is not None
        refused = r.run(*TABLE, "lock", "release")
        still = lease(db)
        db.conn.execute("UPDATE schema_migrations_lock SET expires_at = now() - interval '1s'")
        released = r.run(*TABLE, "--format", "json", "lock", "release")
        after = lease(db)
        gate.open()
        stopped = up.wait()

    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(
        "error: the lease in schema_migrations_lock is held by run " + held["run_id"]
    )
    assert refused.stderr.rstrip().endswith(
        "pass --force to remove the lease (--yes to skip the question)."
    )
    assert still == held
    assert released.returncode == 0, released.stderr
    doc = released.json()
    assert (doc["action"], doc["holder"]["run_id"], doc["holder"]["expired"]) == (
        "deleted",
        held["run_id"],
        True,
    )
    assert after is None
    # The run notices before its next migration.
    assert stopped.returncode == 4, stopped.stderr
    assert f"the migration lease of this run ({held['run_id']}" in stopped.stderr
    assert "was removed, so no further migration was started" in stopped.stderr
    assert db.tracking() == {"0001": "applied", "0002": "applied"}


def test_lock_release_force_yes_removes_a_live_lease(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    setup(tmp_path)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start(*TABLE, "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        held = lease(db)
        assert held is not None
        unconfirmed = r.run(*TABLE, "lock", "release", "--force")
        released = r.run(*TABLE, "lock", "release", "--force", "--yes")
        after = lease(db)
        gate.open()
        stopped = up.wait()

    assert unconfirmed.returncode == 2, unconfirmed.stderr
    assert unconfirmed.stderr.startswith(
        f"error: Remove the live lease in schema_migrations_lock of run {held['run_id']} "
    )
    assert unconfirmed.stderr.rstrip().endswith("Pass --yes to confirm.")
    assert released.returncode == 0, released.stderr
    assert released.stdout.startswith(
        f"removed the lease in schema_migrations_lock of run {held['run_id']} (host "
    )
    assert f"pid {up.pid}, application sqlmig" in released.stdout
    assert after is None
    assert stopped.returncode == 4, stopped.stderr
    assert db.tracking() == {"0001": "applied", "0002": "applied"}


def test_lock_release_force_yes_terminates_the_session_holding_the_advisory_lock(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    setup(tmp_path)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start("up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        (pid,) = db.lock_holders()
        refused = r.run("lock", "release")
        released = r.run("--format", "json", "lock", "release", "--force", "--yes")
        wait_for(lambda: not db.lock_holders(), "the holding session to end")
        gate.open()
        stopped = up.wait()

    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(
        f"error: the advisory lock 123456789 is held by pid {pid} (application sqlmig, "
    )
    assert "pass --force to terminate that session" in refused.stderr
    assert released.returncode == 0, released.stderr
    doc = released.json()
    assert (doc["action"], doc["holder"]["pid"]) == ("terminated", pid)
    # Its lock's connection is gone: no further migration starts.
    assert stopped.returncode == 4, stopped.stderr
    assert "the connection holding the migration lock was lost" in stopped.stderr
    assert db.tracking() == {"0001": "applied", "0002": "applied"}


def test_lock_release_refuses_to_terminate_its_own_session_through_a_pooler(
    pooled_url: str, tmp_path: Path, db: Observer
) -> None:
    # A session-level advisory lock taken through the pooler stays on the server
    # connection that ran it, which the pooler hands to the next client.
    with psycopg.connect(pooled_url, autocommit=True) as leaker:
        leaker.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    (pid,) = db.lock_holders()
    with runner(pooled_url, tmp_path) as r:
        status = r.run("--format", "json", "lock", "status")
        refused = r.run("lock", "release", "--force", "--yes")

    assert status.returncode == 1
    assert status.json()["holder"]["pid"] == pid
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(
        f"error: the advisory lock 123456789 is held by the server session this command "
        f"runs on (pid {pid} "
    )
    assert db.lock_holders() == [pid]
    db.conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

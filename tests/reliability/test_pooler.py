"""The real `sqlmig` command through a real PgBouncer in transaction pooling mode.

The lease (`--lock-strategy table`) passes the concurrency and crash tests the advisory
lock passes directly: simultaneous runs apply each migration exactly once, a killed
holder's lease is taken over once it expires, a run whose lease was taken over stops
before its next migration. The advisory lock is refused through the pooler before
anything runs, and keeps working on a direct URL. PostgreSQL is watched directly.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import write
from procs import (
    GATE_SQL,
    SIGNALS,
    Observer,
    Proc,
    closed_gate,
    observer,
    runner,
    wait_for,
)
from sqlalchemy import create_engine
from test_concurrency import COUNT, VERSIONS, assert_each_applied_exactly_once, fifty_migrations

from sqlmig.lease import MAX_POLL, LeaseLock

pytestmark = pytest.mark.integration

TABLE = ["--lock-strategy", "table"]
WAITING = re.compile(
    r"^waiting up to 60s for the migration lock, held by run ([0-9a-f]{16}) \(host [^,]+, "
    r"pid (\d+), application sqlmig, since [^,]+, heartbeat [\d.]+s ago, "
    r"expires in [\d.]+s\)$",
    re.MULTILINE,
)
THREE = {
    "0001_a.up.sql": "CREATE TABLE a (id int);\n",
    "0002_b.up.sql": f"CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n{GATE_SQL}\n",
    "0003_c.up.sql": "CREATE TABLE c (id int);\n",
}
ALL = {"0001": "applied", "0002": "applied", "0003": "applied"}


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        o.conn.execute("CREATE TABLE ledger (version text, pid int)")
        yield o


def lease(db: Observer) -> dict[str, Any] | None:
    """The lease row, as PostgreSQL has it; None when there is none (or no table)."""
    if db.value("SELECT to_regclass('public.schema_migrations_lock')") is None:
        return None
    rows = db.conn.execute(
        "SELECT run_id, host, pid, application, acquired_at, heartbeat_at, expires_at,"
        " expires_at > now() AS live FROM schema_migrations_lock"
    )
    names = [c.name for c in rows.description or []]
    found = [dict(zip(names, row, strict=True)) for row in rows.fetchall()]
    return found[0] if found else None


def short_lease(folder: Path, ttl: float, heartbeat: float) -> None:
    """The lease's timing for the runs started in ``folder``, through its config file."""
    (folder / "sqlmig.toml").write_text(
        f'lock_strategy = "table"\nlock_ttl = {ttl}\nlock_heartbeat = {heartbeat}\n'
    )


def no_password(pooled_url: str, *texts: str) -> None:
    from sqlalchemy.engine import make_url

    password = make_url(pooled_url).password
    assert password
    for text in texts:
        assert password not in text


# --- concurrency ------------------------------------------------------------------------


def test_eight_simultaneous_table_ups_through_pgbouncer_apply_every_migration_exactly_once(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    fifty_migrations(tmp_path / "migrations", gated_first=True)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        procs = r.start_together([[*TABLE, "--format", "json", "up"]] * 8)
        holder = wait_for(lambda: lease(db), "one run to take the lease")
        wait_for(db.waiting_at_gate, "the holder to be in its first migration")
        waiting = wait_for(
            lambda: reporting_wait(procs, 7), "seven runs to report that they wait for the lease"
        )
        assert lease(db)["run_id"] == holder["run_id"]
        gate.open()
        done = [p.wait(120) for p in procs]

    assert [d.returncode for d in done] == [0] * 8, [d.stderr[-2000:] for d in done]
    documents = [d.json() for d in done]
    applied = [len(doc["migrations"]) for doc in documents]
    assert sorted(applied) == [0] * 7 + [COUNT]
    winner = applied.index(COUNT)
    assert procs[winner].pid == holder["pid"]
    assert [m["version"] for m in documents[winner]["migrations"]] == VERSIONS
    for proc, result, doc in zip(procs, done, documents, strict=True):
        if proc in waiting:
            named = WAITING.findall(result.stderr)
            assert named == [(holder["run_id"], str(holder["pid"]))], result.stderr
            assert doc["lock_wait_s"] > 0
        no_password(pooled_url, result.stdout, result.stderr)
    assert_each_applied_exactly_once(db)
    assert lease(db) is None


def test_through_pgbouncer_with_no_lock_wait_the_losers_exit_3_naming_the_holder(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    fifty_migrations(tmp_path / "migrations", gated_first=True)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        procs = r.start_together([[*TABLE, "--lock-timeout", "0", "up"]] * 8)
        losers = wait_for(lambda: exited(procs, 7), "seven runs to give up on the lease")
        holder = lease(db)
        assert holder is not None
        (winner,) = [p for p in procs if p not in losers]
        assert winner.running() and winner.pid == holder["pid"]
        gate.open()
        won = winner.wait(120)
        lost = [p.wait() for p in losers]

    for result in lost:
        assert result.returncode == 3, result.stderr
        assert result.stderr.startswith(
            "error: could not take the migration lock (lease in schema_migrations_lock) at "
            f"once: it is held by run {holder['run_id']} (host {holder['host']}, pid "
            f"{holder['pid']}, application sqlmig, since "
        ), result.stderr
        assert result.stderr.endswith(
            "Wait for that run to finish, raise --lock-timeout SECONDS, or if that run is "
            "gone, let its lease expire (at "
            + result.stderr.split("let its lease expire (at ", 1)[1].split(")", 1)[0]
            + ") or remove it with `sqlmig lock release --force`.\n"
        ), result.stderr
        assert "waiting" not in result.stderr
        assert result.stdout == ""
    assert won.returncode == 0, won.stderr
    assert won.stdout.startswith(f"applied {COUNT} migrations in ")
    assert_each_applied_exactly_once(db)


def test_the_advisory_lock_through_pgbouncer_is_refused_before_anything_runs(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", THREE)
    with runner(pooled_url, tmp_path) as r:
        refused = r.run("up")
        as_json = r.run("--format", "json", "up")
    with runner(database_url, tmp_path) as r:
        with closed_gate(database_url) as gate:
            gate.open()
        direct = r.run("up")

    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(
        "error: this URL goes through a transaction pooler; use --lock-strategy table or a "
        "direct URL"
    )
    assert refused.stderr.rstrip().endswith("Nothing was run.")
    error = as_json.json()["error"]
    assert (error["type"], error["exit_code"]) == ("TransactionPoolerError", 2)
    no_password(pooled_url, refused.stderr, as_json.stdout, as_json.stderr)
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.startswith("applied 3 migrations in ")
    assert db.tracking() == ALL


SIX = {
    f"000{n}_s{n}.up.sql": f"CREATE TABLE s{n} (id int);\nSELECT pg_sleep(0.05);\n"
    for n in range(1, 7)
} | {f"000{n}_s{n}.down.sql": f"DROP TABLE s{n};\nSELECT pg_sleep(0.05);\n" for n in range(1, 7)}


@pytest.mark.parametrize("attempt", [1, 2])
def test_through_pgbouncer_up_and_down_racing_end_in_one_of_the_serial_orders(
    pooled_url: str, tmp_path: Path, db: Observer, attempt: int
) -> None:
    write(tmp_path / "migrations", SIX)
    with runner(pooled_url, tmp_path) as r:
        assert r.run(*TABLE, "up", "--to", "0004").returncode == 0
        up, down = r.start_together(
            [[*TABLE, "--format", "json", "up"], [*TABLE, "--format", "json", "down"]]
        )
        ran_up, ran_down = up.wait(), down.wait()

    assert (ran_up.returncode, ran_down.returncode) == (0, 0), ran_up.stderr + ran_down.stderr
    did_up = [m["version"] for m in ran_up.json()["migrations"]]
    did_down = [m["version"] for m in ran_down.json()["migrations"]]
    up_first = (did_up, did_down) == (["0005", "0006"], ["0006"])
    down_first = (did_up, did_down) == (["0004", "0005", "0006"], ["0004"])
    assert up_first or down_first, (did_up, did_down)
    state = db.tracking()
    applied = {f"s{int(v)}" for v, status in state.items() if status == "applied"}
    assert db.tables() == applied | {"schema_migrations", "schema_migrations_lock", "ledger"}
    assert lease(db) is None


# --- crashes ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_through_pgbouncer_a_signal_rolls_the_migration_back_and_releases_the_lease(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer, name: str
) -> None:
    write(tmp_path / "migrations", THREE)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start(*TABLE, "-q", "--format", "json", "up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        assert lease(db) is not None
        up.signal(SIGNALS[name])
        stopped = up.wait(30)
        after = (db.tracking(), db.tables(), lease(db))
        gate.open()
        fresh = r.run(*TABLE, "up")

    assert stopped.returncode == 130, stopped.stderr
    error = stopped.json()["error"]
    assert (error["type"], error["version"], error["outcome"], error["signal"]) == (
        "MigrationInterrupted",
        "0002",
        "rolled_back",
        name,
    )
    assert after == (
        {"0001": "applied"},
        {"schema_migrations", "schema_migrations_lock", "ledger", "a"},
        None,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert db.tracking() == ALL


def test_a_sigkilled_holders_lease_is_taken_over_within_its_ttl_and_the_takeover_logged(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    ttl = 3.0
    write(tmp_path / "migrations", THREE)
    short_lease(tmp_path, ttl=ttl, heartbeat=0.5)
    with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
        first = r.start("up")
        wait_for(db.waiting_at_gate, "the first run to be in the middle of 0002")
        held = lease(db)
        assert held is not None and held["pid"] == first.pid
        # The second run is already waiting for the lease when the holder dies, so what
        # is timed is the takeover, not the start of a process on a busy machine.
        second = r.start("up")
        wait_for(lambda: "waiting up to" in second.stderr_so_far(), "the second run to wait")
        first.signal(signal.SIGKILL)
        first.wait(10)
        killed_at = time.monotonic()
        # The killed run's migration is left to the server: it commits or rolls back.
        gate.open()

        def taken_over() -> dict[str, Any] | None:
            row = lease(db)
            if row is not None and row["run_id"] != held["run_id"]:
                return row
            # With little left to do, the second run may take the lease, finish and
            # let it go between two looks from here: its own log line says it took it.
            if not second.running() and "took over the expired" in second.stderr_so_far():
                return {"pid": second.pid}
            return None

        try:
            taken = wait_for(taken_over, "the second run to take the lease over", ttl + 10)
        except AssertionError as exc:
            said = second.stderr_so_far()
            raise AssertionError(f"{exc}; it said {said!r}; the lease: {lease(db)}") from None
        took = time.monotonic() - killed_at
        done = second.wait(60)

    # Expired at most ttl after the kill, then found by the next poll; the rest is the
    # time to see it from here.
    assert took <= ttl + MAX_POLL + 1.0, took
    assert taken["pid"] == second.pid
    assert done.returncode == 0, done.stderr
    assert f"took over the expired migration lease of run {held['run_id']} (host " in done.stderr
    assert f"pid {first.pid}, application sqlmig, since " in done.stderr
    assert re.search(r"expired [\d.]+s ago\)", done.stderr), done.stderr
    assert db.tracking() == ALL
    assert lease(db) is None


def test_a_run_whose_lease_is_taken_over_stops_before_its_next_migration_with_exit_4(
    pooled_url: str, database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(tmp_path / "migrations", THREE)
    short_lease(tmp_path, ttl=30, heartbeat=10)
    engine = create_engine(pooled_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with runner(pooled_url, tmp_path) as r, closed_gate(database_url) as gate:
            victim = r.start("up")
            wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
            held = lease(db)
            assert held is not None
            db.conn.execute("UPDATE schema_migrations_lock SET expires_at = now()")
            with LeaseLock(ttl=30, heartbeat=10).hold(engine, timeout=0):
                thief = lease(db)
                assert thief is not None and thief["run_id"] != held["run_id"]
                gate.open()
                stopped = victim.wait(30)
                after = (db.tracking(), db.tables())
            fresh = r.run("up")
    finally:
        engine.dispose()

    assert stopped.returncode == 4, stopped.stderr
    assert (
        f"error: the migration lease of this run ({held['run_id']}, lease in "
        f"schema_migrations_lock) was taken over by run {thief['run_id']} (host "
    ) in stopped.stderr
    assert "so no further migration was started" in stopped.stderr
    # 0002 passed its check before the lease was taken: it committed, and is recorded.
    assert after == (
        {"0001": "applied", "0002": "applied"},
        {"schema_migrations", "schema_migrations_lock", "ledger", "a", "b"},
    )
    assert fresh.returncode == 0, fresh.stderr
    assert db.tracking() == ALL


def test_create_index_concurrently_under_the_lease_does_not_wait_on_the_lease(
    pooled_url: str, tmp_path: Path, db: Observer
) -> None:
    write(
        tmp_path / "migrations",
        {
            "0001_big.up.sql": "CREATE TABLE big (id int);\n"
            "INSERT INTO big SELECT generate_series(1, 200000);\n",
            "0002_index.up.sql": "-- sqlmig:no-transaction\n"
            "CREATE INDEX CONCURRENTLY big_id ON big (id);\n"
            "SELECT pg_sleep(1);\n"
            "CREATE INDEX CONCURRENTLY big_id_2 ON big ((id + 1));\n",
        },
    )
    # Renewals every 0.1 s and a second run polling meanwhile: none of their
    # transactions may be one that CREATE INDEX CONCURRENTLY waits for.
    short_lease(tmp_path, ttl=2, heartbeat=0.1)
    with runner(pooled_url, tmp_path) as r:
        started = time.monotonic()
        first = r.start("up")
        wait_for(lambda: lease(db), "the run to take the lease")
        second = r.start("up")
        done = [first.wait(60), second.wait(60)]
        took = time.monotonic() - started

    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    assert took < 20
    valid = db.rows(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname LIKE 'big_id%%' ORDER BY 1"
    )
    assert valid == [("big_id", True), ("big_id_2", True)]
    assert db.tracking() == {"0001": "applied", "0002": "applied"}


# --- helpers ------------------------------------------------------------------------------


def reporting_wait(procs: list[Proc], count: int) -> list[Proc] | None:
    said = [p for p in procs if WAITING.search(p.stderr_so_far())]
    return said if len(said) == count else None


def exited(procs: list[Proc], count: int) -> list[Proc] | None:
    gone = [p for p in procs if not p.running()]
    return gone if len(gone) == count else None

"""Concurrent runs of the real `sqlmig` command against one real PostgreSQL.

Whatever the interleaving, every migration is applied exactly once: one 'applied' row,
its table created once, its rows inserted once. Runs that lose the race wait for the
lock and say so, or with --lock-timeout 0 exit 3 naming the holder. `status` never
takes the lock and only ever shows committed state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import write
from procs import GATE_SQL, Observer, Proc, closed_gate, observer, runner, wait_for

pytestmark = pytest.mark.integration

COUNT = 50
VERSIONS = [f"{n:04d}" for n in range(1, COUNT + 1)]
WAITING = re.compile(
    r"^waiting up to 60s for the migration lock, held by pid (\d+) \(application sqlmig, "
    r"client [^,]+, connected since [^,]+, state [a-z ]+\)$",
    re.MULTILINE,
)


def fifty_migrations(folder: Path, *, gated_first: bool) -> Path:
    """50 migrations, each creating a table and inserting rows; some take a little time.

    ``CREATE TABLE IF NOT EXISTS`` and the ledger make a second application visible as
    doubled rows instead of an error that would stop the run.
    """
    files: dict[str, str] = {}
    for n, version in enumerate(VERSIONS, start=1):
        sql = (
            f"CREATE TABLE IF NOT EXISTS t_{version} (id int);\n"
            f"INSERT INTO t_{version} SELECT generate_series(1, 3);\n"
            f"INSERT INTO ledger VALUES ('{version}', pg_backend_pid());\n"
        )
        if n % 5 == 0:
            sql += "SELECT pg_sleep(0.02);\n"
        if n == 1 and gated_first:
            sql += GATE_SQL + "\n"
        files[f"{version}_table_{version}.up.sql"] = sql
    return write(folder, files)


def assert_each_applied_exactly_once(db: Observer) -> None:
    assert db.tracking() == {v: "applied" for v in VERSIONS}
    assert db.rows("SELECT count(*), count(DISTINCT version) FROM ledger") == [(COUNT, COUNT)]
    for version in VERSIONS:
        assert db.value(f"SELECT count(*) FROM t_{version}") == 3, version
    created = db.rows(
        "SELECT relname, count(*) FROM pg_class WHERE relname LIKE 't\\_%%' AND relkind = 'r'"
        " GROUP BY relname"
    )
    assert sorted(created) == [(f"t_{v}", 1) for v in VERSIONS]


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        o.conn.execute("CREATE TABLE ledger (version text, pid int)")
        yield o


def reporting_wait(procs: list[Proc], count: int) -> list[Proc] | None:
    """The processes that said they wait for the lock, once there are ``count`` of them."""
    said = [p for p in procs if WAITING.search(p.stderr_so_far())]
    return said if len(said) == count else None


def exited(procs: list[Proc], count: int) -> list[Proc] | None:
    gone = [p for p in procs if not p.running()]
    return gone if len(gone) == count else None


def test_eight_simultaneous_ups_apply_every_migration_exactly_once(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    fifty_migrations(tmp_path / "migrations", gated_first=True)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        procs = r.start_together([["--format", "json", "up"]] * 8)
        # The winner holds the lock, stopped at the gate in its first migration, until
        # the seven others have all said that they wait.
        holder = wait_for(db.lock_holders, "one run to take the migration lock")
        waiting = wait_for(
            lambda: reporting_wait(procs, 7), "seven runs to report that they wait for the lock"
        )
        assert db.lock_holders() == holder
        gate.open()
        done = [p.wait(120) for p in procs]

    assert [d.returncode for d in done] == [0] * 8, [d.stderr[-2000:] for d in done]
    documents = [d.json() for d in done]
    applied = [len(doc["migrations"]) for doc in documents]
    assert sorted(applied) == [0] * 7 + [COUNT]
    winner = applied.index(COUNT)
    assert [m["version"] for m in documents[winner]["migrations"]] == VERSIONS
    assert documents[winner]["lock_wait_s"] == 0
    assert WAITING.search(done[winner].stderr) is None
    for proc, result, doc in zip(procs, done, documents, strict=True):
        if proc in waiting:
            named = WAITING.findall(result.stderr)
            assert named == [str(holder[0])], result.stderr
            assert doc["lock_wait_s"] > 0
    assert_each_applied_exactly_once(db)
    assert db.lock_holders() == []


def test_with_no_lock_wait_the_losers_exit_3_naming_the_holder(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    fifty_migrations(tmp_path / "migrations", gated_first=True)
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        procs = r.start_together([["--lock-timeout", "0", "up"]] * 8)
        losers = wait_for(lambda: exited(procs, 7), "seven runs to give up on the lock")
        (holder,) = db.lock_holders()
        (winner,) = [p for p in procs if p not in losers]
        assert winner.running()
        gate.open()
        won = winner.wait(120)
        lost = [p.wait() for p in losers]

    for result in lost:
        assert result.returncode == 3, result.stderr
        assert result.stderr == (
            "error: could not take the migration lock (advisory lock 123456789) at once: "
            f"it is held by pid {holder} (application sqlmig, "
            + result.stderr.split("(application sqlmig, ", 1)[1]
        )
        assert "waiting" not in result.stderr
        assert result.stderr.endswith(
            "Wait for that run to finish, raise --lock-timeout SECONDS, or end the holder with "
            "pg_terminate_backend(pid) if it is stuck.\n"
        )
        assert result.stdout == ""
    assert won.returncode == 0, won.stderr
    assert won.stdout.startswith(f"applied {COUNT} migrations in ")
    assert_each_applied_exactly_once(db)


SIX = {
    f"000{n}_s{n}.up.sql": f"CREATE TABLE s{n} (id int);\nSELECT pg_sleep(0.05);\n"
    for n in range(1, 7)
} | {f"000{n}_s{n}.down.sql": f"DROP TABLE s{n};\nSELECT pg_sleep(0.05);\n" for n in range(1, 7)}


@pytest.mark.parametrize("attempt", [1, 2])
def test_up_and_down_racing_end_in_one_of_the_serial_orders(
    database_url: str, tmp_path: Path, db: Observer, attempt: int
) -> None:
    write(tmp_path / "migrations", SIX)
    with runner(database_url, tmp_path) as r:
        assert r.run("up", "--to", "0004").returncode == 0
        up, down = r.start_together([["--format", "json", "up"], ["--format", "json", "down"]])
        ran_up, ran_down = up.wait(), down.wait()

    assert (ran_up.returncode, ran_down.returncode) == (0, 0), ran_up.stderr + ran_down.stderr
    did_up = [m["version"] for m in ran_up.json()["migrations"]]
    did_down = [m["version"] for m in ran_down.json()["migrations"]]
    state = db.tracking()
    up_first = (did_up, did_down) == (["0005", "0006"], ["0006"])
    down_first = (did_up, did_down) == (["0004", "0005", "0006"], ["0004"])
    assert up_first or down_first, (did_up, did_down)
    if up_first:
        assert state == {f"000{n}": "applied" for n in range(1, 6)} | {"0006": "rolled_back"}
    else:
        assert state == {f"000{n}": "applied" for n in range(1, 7)}
    # The tracking table tells the truth about the schema.
    applied_tables = {f"s{int(v)}" for v, status in state.items() if status == "applied"}
    assert db.tables() == applied_tables | {"schema_migrations", "ledger"}


def test_status_during_a_long_up_reads_without_the_lock_and_sees_only_committed_state(
    database_url: str, tmp_path: Path, db: Observer
) -> None:
    write(
        tmp_path / "migrations",
        {
            "0001_a.up.sql": "CREATE TABLE a (id int);\n",
            "0002_b.up.sql": "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n" + GATE_SQL,
            "0003_c.up.sql": "CREATE TABLE c (id int);\n",
        },
    )
    with runner(database_url, tmp_path) as r, closed_gate(database_url) as gate:
        up = r.start("up")
        wait_for(db.waiting_at_gate, "the run to be in the middle of 0002")
        holders = db.lock_holders()
        started = time.monotonic()
        status = r.run("--format", "json", "status", timeout=30)
        took = time.monotonic() - started
        still_running, still_held = up.running(), db.lock_holders()
        gate.open()
        finished = up.wait()
        after = r.run("--format", "json", "status")

    assert status.returncode == 0, status.stderr
    assert took < 15  # it read past the held lock and the open transaction
    assert still_running and still_held == holders != []
    doc = status.json()
    assert [(m["version"], m["state"]) for m in doc["migrations"]] == [
        ("0001", "applied"),
        ("0002", "pending"),
        ("0003", "pending"),
    ]
    assert doc["counts"] == {"applied": 1, "pending": 2}
    assert [m["applied_at"] is not None for m in doc["migrations"]] == [True, False, False]
    assert finished.returncode == 0, finished.stderr
    assert after.json()["counts"] == {"applied": 3}

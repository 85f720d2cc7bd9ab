"""`sqlmig adopt` killed half-way, with the real command and a real PostgreSQL.

Adopting is one transaction: golang-migrate's table is locked, checked, renamed, and
sqlmig's table created and filled, all committed together. To stop it half-way for
certain, the test holds a lock on golang-migrate's table (as a golang-migrate run
writing its version would), so that adopt's transaction waits inside, then kills it.
Afterwards the database is either exactly as golang-migrate left it or fully adopted,
never in between, and adopting again completes.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import connect, write
from procs import Observer, observer, runner, wait_for

pytestmark = pytest.mark.integration

FILES = {
    f"000{n}_t{n}.up.sql": f"BEGIN;\nCREATE TABLE t{n} (id int);\nCOMMIT;\n" for n in (1, 2, 3)
}
GOLANG_MIGRATE_DDL = (
    'CREATE TABLE IF NOT EXISTS "public"."schema_migrations" '
    "(version bigint not null primary key, dirty boolean not null)"
)


@pytest.fixture
def db(database_url: str) -> Iterator[Observer]:
    with observer(database_url) as o:
        o.conn.execute(GOLANG_MIGRATE_DDL)
        o.conn.execute("INSERT INTO schema_migrations VALUES (2, false)")
        o.conn.execute("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int)")
        yield o


def state(db: Observer) -> str:
    """'untouched' or 'adopted'; anything in between fails the test."""
    tables = db.tables()
    if "schema_migrations_golang_migrate" not in tables:
        assert db.rows("SELECT version, dirty FROM schema_migrations") == [(2, False)]
        return "untouched"
    assert db.rows("SELECT version, dirty FROM schema_migrations_golang_migrate") == [(2, False)]
    assert db.tracking() == {"0001": "applied", "0002": "applied"}
    return "adopted"


@pytest.mark.parametrize("release", ["after the server ends the session", "at once"])
def test_sigkill_half_way_leaves_golang_migrate_untouched_or_the_adoption_complete(
    database_url: str, tmp_path: Path, db: Observer, release: str
) -> None:
    write(tmp_path / "migrations", FILES)
    with runner(database_url, tmp_path) as r, connect(database_url) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE schema_migrations IN ROW EXCLUSIVE MODE")
        adopt = r.start("adopt", "--from", "golang-migrate")
        wait_for(
            lambda: db.rows(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'sqlmig' "
                "AND wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%%'"
            ),
            "adopt to wait for golang-migrate's table inside its transaction",
        )
        adopt.signal(signal.SIGKILL)
        adopt.wait(10)
        if release != "at once":
            # The server checks its client while the LOCK waits, and ends the session.
            wait_for(lambda: not db.sqlmig_backends(), "the killed session to end", timeout=15)
        blocker.execute("ROLLBACK")
        wait_for(lambda: not db.sqlmig_backends(), "the killed session to end", timeout=15)

        after_kill = state(db)
        again = r.run("adopt", "--from", "golang-migrate")
        after_again = state(db)
        up = r.run("up")

    if release != "at once":
        assert after_kill == "untouched"
    assert again.returncode == 0, again.stderr
    assert after_again == "adopted"
    assert up.returncode == 0, up.stderr
    assert db.tracking() == {"0001": "applied", "0002": "applied", "0003": "applied"}

"""Guarded table locks without a server: the retry delays, and the lock timeout each
transactional migration gets, as a dry run shows it (what is shown is what is sent)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sqlmig.apply import Applier, Bookkeeping
from sqlmig.lockwait import Blocker, LockRetry, describe
from sqlmig.migrator import validate_files
from sqlmig.plan import Plan
from sqlmig.sink import Collector
from sqlmig.tracker import Tracker


@given(st.lists(st.floats(min_value=0, max_value=0.999999), min_size=8, max_size=8))
def test_delays_grow_and_are_jittered_within_their_bounds(randoms: list[float]) -> None:
    draws = iter(randoms)
    policy = LockRetry(1.0, retries=8, first_delay=1.0, max_delay=30.0, random=lambda: next(draws))

    delays = [policy.delay(attempt) for attempt in range(1, 9)]

    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    below_cap = delays[:5]  # ceilings 1, 2, 4, 8, 16: each try waits at least the last
    assert all(a <= b for a, b in pairwise(below_cap))


def test_the_blockers_are_named_with_what_an_operator_needs() -> None:
    blocker = Blocker(4242, "reports", "idle in transaction", 83.25, "SELECT *\n  FROM t")

    assert describe((blocker,)) == (
        "pid 4242 (application reports, idle in transaction, transaction open 83.2s): "
        "SELECT * FROM t"
    )
    assert describe(()).startswith("a session sqlmig could not see")


def dry_run(tmp_path: Path, files: dict[str, str], retry: LockRetry | None) -> list[str]:
    for name, body in files.items():
        (tmp_path / name).write_text(body)
    from sqlalchemy.dialects import postgresql

    tracker = Tracker(None, table="schema_migrations")  # type: ignore[arg-type]
    collector = Collector()
    book = Bookkeeping(tracker, postgresql.dialect(), shown=True)
    Applier(collector, book, retry=retry).run(Plan("up", tuple(validate_files(tmp_path))))
    return [s for s in collector.statements if not s.startswith(("WITH", "INSERT"))]


FILES = {
    "0001_a.up.sql": "ALTER TABLE t ADD COLUMN a int;\n",
    "0002_own.up.sql": "SET LOCAL lock_timeout = '10s';\nALTER TABLE t ADD COLUMN b int;\n",
    "0003_outside.up.sql": "-- sqlmig:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
}


def test_each_transactional_migration_gets_the_lock_timeout_unless_it_sets_its_own(
    tmp_path: Path,
) -> None:
    statements = dry_run(tmp_path, FILES, LockRetry(1.5, retries=3))

    assert statements == [
        "BEGIN",
        "SET LOCAL lock_timeout = '1500ms'",
        "ALTER TABLE t ADD COLUMN a int",
        "COMMIT",
        "BEGIN",
        "SET LOCAL lock_timeout = '10s'",
        "ALTER TABLE t ADD COLUMN b int",
        "COMMIT",
        "CREATE INDEX CONCURRENTLY i ON t (a)",  # the session's lock_timeout (sqlmig.run)
    ]


def test_without_a_ddl_lock_timeout_nothing_is_added(tmp_path: Path) -> None:
    statements = dry_run(tmp_path, FILES, None)

    assert "SET LOCAL lock_timeout = '1500ms'" not in statements
    assert statements[:3] == ["BEGIN", "ALTER TABLE t ADD COLUMN a int", "COMMIT"]

"""Deciding what to run: states from files and tracking rows, blockers, up and down plans."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import write

from sqlmig.errors import StateError, UsageError
from sqlmig.plan import (
    MigrationStatus,
    State,
    check_blockers,
    plan_down,
    plan_up,
    statuses,
)
from sqlmig.source import Migration, load_migrations
from sqlmig.tracker import AppliedMigration

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
NO_TRANSACTION = "-- sqlmig:no-transaction\n"


def load(directory: Path, files: dict[str, str]) -> list[Migration]:
    """Write the files and load them as sqlmig would."""
    return load_migrations(write(directory, files))


def pair(version: str, name: str, *, down: bool = True, up_prefix: str = "") -> dict[str, str]:
    files = {f"{version}_{name}.up.sql": f"{up_prefix}CREATE TABLE {name} (id int);\n"}
    if down:
        files[f"{version}_{name}.down.sql"] = f"DROP TABLE {name};\n"
    return files


def row(
    version: str,
    status: str = "applied",
    *,
    checksum: str | None = None,
    migrations: list[Migration] | None = None,
    filename: str | None = None,
    duration_ms: int = 7,
) -> AppliedMigration:
    """A tracking row; its checksum and file name are the file's when ``migrations`` has it."""
    m = next((m for m in migrations or [] if m.number == int(version)), None)
    return AppliedMigration(
        version=version,
        filename=filename or (m.filename if m else f"{version}_gone.up.sql"),
        checksum=checksum or (m.checksum if m else "sha256:00"),
        applied_at=WHEN,
        duration_ms=duration_ms,
        status=status,
    )


@pytest.fixture
def four(tmp_path: Path) -> list[Migration]:
    return load(
        tmp_path / "m",
        {**pair("0001", "a"), **pair("0002", "b"), **pair("0003", "c"), **pair("0004", "d")},
    )


def versions(plan_or_states: object) -> list[str]:
    items = getattr(plan_or_states, "migrations", plan_or_states)
    return [item.version for item in items]  # type: ignore[attr-defined]


def state_map(found: list[MigrationStatus]) -> dict[str, State]:
    return {s.version: s.state for s in found}


# --- statuses ------------------------------------------------------------------------


def test_every_state_from_files_and_rows(tmp_path: Path) -> None:
    migrations = load(
        tmp_path / "m",
        {
            **pair("0001", "applied"),
            **pair("0002", "changed"),
            **pair("0004", "failed"),
            **pair("0005", "rolled"),
            **pair("0007", "pending"),
        },
    )
    rows = [
        row("0001", migrations=migrations),
        row("0002", checksum="sha256:edited", migrations=migrations),
        row("0003", filename="0003_gone.up.sql"),
        row("0004", "failed", migrations=migrations),
        row("0005", "rolled_back", migrations=migrations),
        row("0006", "failed", filename="0006_gone_failed.up.sql"),
        row("0008", "rolled_back", filename="0008_gone_rolled.sql"),
    ]

    found = statuses(migrations, rows)

    assert [(s.version, s.name, s.filename, s.state) for s in found] == [
        ("0001", "applied", "0001_applied.up.sql", State.APPLIED),
        ("0002", "changed", "0002_changed.up.sql", State.CHANGED),
        ("0003", "gone", "0003_gone.up.sql", State.MISSING),
        ("0004", "failed", "0004_failed.up.sql", State.FAILED),
        ("0005", "rolled", "0005_rolled.up.sql", State.ROLLED_BACK),
        ("0006", "gone_failed", "0006_gone_failed.up.sql", State.MISSING),
        ("0007", "pending", "0007_pending.up.sql", State.PENDING),
        ("0008", "gone_rolled", "0008_gone_rolled.sql", State.ROLLED_BACK),
    ]
    by_version = {s.version: s for s in found}
    assert by_version["0002"].checksum == migrations[1].checksum
    assert by_version["0002"].recorded_checksum == "sha256:edited"
    assert by_version["0003"].checksum is None
    assert by_version["0003"].migration is None
    assert by_version["0001"].migration is migrations[0]
    assert (by_version["0001"].applied_at, by_version["0001"].duration_ms) == (WHEN, 7)
    assert (by_version["0007"].applied_at, by_version["0007"].duration_ms) == (None, None)
    assert by_version["0007"].recorded_checksum is None


def test_rows_match_files_by_version_value_and_sort_numerically(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", {**pair("9", "nine"), **pair("0010", "ten")})
    rows = [row("10", checksum=migrations[1].checksum), row("0009", "failed")]

    found = statuses(migrations, rows)

    assert [(s.version, s.state) for s in found] == [
        ("9", State.FAILED),
        ("0010", State.APPLIED),
    ]


def test_only_an_applied_row_can_be_changed(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", {**pair("0001", "a"), **pair("0002", "b")})
    rows = [
        row("0001", "failed", checksum="sha256:old"),
        row("0002", "rolled_back", checksum="sha256:old"),
    ]

    assert state_map(statuses(migrations, rows)) == {
        "0001": State.FAILED,
        "0002": State.ROLLED_BACK,
    }


# --- blockers ---------------------------------------------------------------------------


def test_a_failed_transactional_migration_does_not_block(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", pair("0001", "a"))
    check_blockers(statuses(migrations, [row("0001", "failed", migrations=migrations)]))


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(pair("0001", "a", up_prefix=NO_TRANSACTION), id="up-outside"),
        pytest.param(
            {
                "0001_a.up.sql": "CREATE TABLE a (id int);\n",
                "0001_a.down.sql": NO_TRANSACTION + "DROP TABLE a;\n",
            },
            id="down-outside",
        ),
        pytest.param(
            {"0001_a.sql": "-- migrate:up transaction:false\nCREATE TABLE a (id int);\n"},
            id="dbmate",
        ),
    ],
)
def test_a_failed_migration_that_runs_outside_a_transaction_blocks_even_with_drift_allowed(
    tmp_path: Path, files: dict[str, str]
) -> None:
    migrations = load(tmp_path / "m", files)
    found = statuses(migrations, [row("0001", "failed", migrations=migrations)])

    with pytest.raises(StateError) as caught:
        check_blockers(found, allow_drift=True)

    assert caught.value.problems == [f"0001 {migrations[0].filename}: failed"]
    assert "`sqlmig repair 0001 --applied` (the changes are complete)" in str(caught.value)


def test_changed_and_missing_files_block_unless_drift_is_allowed(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", {**pair("0001", "a"), **pair("0003", "c")})
    found = statuses(
        migrations,
        [
            row("0001", checksum="sha256:before"),
            row("0002", filename="0002_b.up.sql"),
            row("0003", migrations=migrations),
        ],
    )

    with pytest.raises(StateError) as caught:
        check_blockers(found)

    assert str(caught.value) == (
        "applied migrations no longer match their files; nothing was run:\n"
        f"  0001 0001_a.up.sql: checksum {migrations[0].checksum} differs from recorded "
        "sha256:before\n"
        "  0002 0002_b.up.sql: file is gone\n"
        "Restore the files as they were applied; if an edit was intentional, "
        "`sqlmig repair VERSION --checksum`; if a migration was removed on purpose, drop "
        "its record with `sqlmig repair VERSION --forget`; to run anyway pass allow_drift=True."
    )
    check_blockers(found, allow_drift=True)


def test_a_missing_file_alone_is_advised_to_be_restored_or_forgotten(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", pair("0001", "a"))
    found = statuses(
        migrations,
        [row("0001", migrations=migrations), row("0002", filename="0002_b.up.sql")],
    )

    with pytest.raises(StateError) as caught:
        check_blockers(found)

    assert caught.value.problems == ["0002 0002_b.up.sql: file is gone"]
    assert "drop its record with `sqlmig repair 0002 --forget`" in str(caught.value)
    assert "--checksum" not in str(caught.value)  # nothing was edited


def test_a_failed_migration_whose_file_is_gone_blocks_and_says_forget(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", pair("0001", "a"))
    found = statuses(
        migrations,
        [row("0001", migrations=migrations), row("0002", "failed", filename="0002_b.up.sql")],
    )

    with pytest.raises(StateError) as caught:
        check_blockers(found, allow_drift=True)  # a failure is not drift

    assert caught.value.problems == ["0002 0002_b.up.sql: failed, and its file is gone"]
    assert (
        "cannot be retried: once its changes are undone, drop its record with "
        "`sqlmig repair 0002 --forget`." in str(caught.value)
    )


def test_nothing_blocks_a_clean_state(four: list[Migration]) -> None:
    check_blockers(statuses(four, [row("0001", migrations=four)]))
    check_blockers(statuses(four, []))


# --- plan_up --------------------------------------------------------------------------


def test_up_plans_every_runnable_migration_in_order(four: list[Migration]) -> None:
    found = statuses(
        four,
        [
            row("0001", migrations=four),
            row("0002", "rolled_back", migrations=four),
            row("0003", "failed", migrations=four),
        ],
    )

    plan = plan_up(found)

    assert plan.direction == "up"
    assert versions(plan) == ["0002", "0003", "0004"]
    assert plan.migrations[0] is four[1]


def test_up_to_a_target_is_inclusive_and_steps_limit_the_count(four: list[Migration]) -> None:
    found = statuses(four, [])

    assert versions(plan_up(found, target="0002")) == ["0001", "0002"]
    assert versions(plan_up(found, target="3")) == ["0001", "0002", "0003"]
    assert versions(plan_up(found, steps=1)) == ["0001"]
    assert versions(plan_up(found, steps=0)) == []
    assert versions(plan_up(found, steps=10)) == ["0001", "0002", "0003", "0004"]
    assert versions(plan_up(found, target="3", steps=2)) == ["0001", "0002"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "5"}, "target version 5 is not a known migration; see `sqlmig status`"),
        ({"target": "v2"}, "target version 'v2' is not a version (digits only)"),
        ({"steps": -1}, "steps=-1: the number of steps must be 0 or more"),
    ],
)
def test_up_refuses_an_unknown_target_or_negative_steps(
    four: list[Migration], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        plan_up(statuses(four, []), **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_up_refuses_pending_migrations_older_than_the_newest_applied(
    four: list[Migration],
) -> None:
    found = statuses(four, [row("0001", migrations=four), row("0003", migrations=four)])

    with pytest.raises(StateError) as caught:
        plan_up(found)

    assert caught.value.problems == ["0002 0002_b.up.sql: pending"]
    assert "older than the newest applied one (3)" in str(caught.value)
    assert "then run with allow_out_of_order=True." in str(caught.value)
    assert versions(plan_up(found, allow_out_of_order=True)) == ["0002", "0004"]
    # Only what would run counts: stopping below the gap is not out of order ...
    assert versions(plan_up(found, target="1")) == []
    # ... and a changed (applied) migration still counts as the newest applied.
    edited = statuses(four, [row("0001", migrations=four), row("0003", checksum="sha256:x")])
    with pytest.raises(StateError, match=re.escape("0002 0002_b.up.sql: pending")):
        plan_up(edited)


def test_up_never_plans_a_missing_migration(tmp_path: Path) -> None:
    migrations = load(tmp_path / "m", pair("0002", "b"))
    found = statuses(migrations, [row("0001", "rolled_back", filename="0001_a.up.sql")])

    assert versions(plan_up(found)) == ["0002"]


# --- plan_down ---------------------------------------------------------------------------


@pytest.fixture
def all_applied(four: list[Migration]) -> list[MigrationStatus]:
    return statuses(four, [row(m.version, migrations=four) for m in four])


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, ["0004"], id="one-by-default"),
        pytest.param({"steps": 2}, ["0004", "0003"], id="steps"),
        pytest.param({"steps": 0}, [], id="zero-steps"),
        pytest.param({"steps": 9}, ["0004", "0003", "0002", "0001"], id="more-steps-than-applied"),
        pytest.param({"steps": None}, ["0004", "0003", "0002", "0001"], id="all"),
        pytest.param({"target": "2"}, ["0004", "0003"], id="target-stays"),
        pytest.param({"target": "0004"}, [], id="target-is-newest"),
        pytest.param({"target": "0"}, ["0004", "0003", "0002", "0001"], id="target-zero"),
    ],
)
def test_down_plans_applied_migrations_newest_first(
    all_applied: list[MigrationStatus], kwargs: dict[str, object], expected: list[str]
) -> None:
    plan = plan_down(all_applied, **kwargs)  # type: ignore[arg-type]
    assert plan.direction == "down"
    assert versions(plan) == expected


def test_down_skips_what_is_not_applied_and_includes_changed(four: list[Migration]) -> None:
    found = statuses(
        four,
        [
            row("0001", migrations=four),
            row("0002", checksum="sha256:edited"),
            row("0003", "rolled_back", migrations=four),
            row("0004", "failed", migrations=four),
        ],
    )

    assert versions(plan_down(found, steps=None)) == ["0002", "0001"]


def test_down_refuses_when_a_chosen_migration_has_no_down_script(tmp_path: Path) -> None:
    migrations = load(
        tmp_path / "m",
        {
            **pair("0001", "a", down=False),
            **pair("0002", "b", down=False),
            **pair("0003", "c"),
            "0004_d.sql": "-- migrate:up\nCREATE TABLE d (id int);\n",
        },
    )
    found = statuses(migrations, [row(m.version, migrations=migrations) for m in migrations])

    with pytest.raises(StateError) as caught:
        plan_down(found, steps=3)

    assert caught.value.problems == [
        "0004 0004_d.sql: no down script",
        "0002 0002_b.up.sql: no down script",
    ]
    with pytest.raises(StateError, match=re.escape("0004 0004_d.sql: no down script")):
        plan_down(found)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "7"}, "target version 7 is not a known migration; see `sqlmig status`"),
        ({"target": "x"}, "target version 'x' is not a version (digits only)"),
        ({"steps": -2}, "steps=-2: the number of steps must be 0 or more"),
    ],
)
def test_down_refuses_an_unknown_target_or_negative_steps(
    all_applied: list[MigrationStatus], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        plan_down(all_applied, **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message

"""The status and history tables: plain aligned text, coloured only when asked."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from sqlmig.plan import MigrationStatus, State
from sqlmig.render import history_table, status_table
from sqlmig.tracker import AppliedMigration

WHEN = datetime(2026, 11, 24, 15, 30, 0, tzinfo=timezone.utc)


def state(version: str, name: str, kind: State, ms: int | None) -> MigrationStatus:
    applied = kind in (State.APPLIED, State.FAILED, State.CHANGED)
    return MigrationStatus(
        version=version,
        name=name,
        filename=f"{version}_{name}.up.sql",
        state=kind,
        applied_at=WHEN if applied else None,
        duration_ms=ms,
        checksum="sha256:00",
        recorded_checksum="sha256:00" if applied else None,
        migration=None,
    )


STATES = [
    state("0001", "create_accounts", State.APPLIED, 12),
    state("0002", "add_a_much_longer_name", State.FAILED, 1234),
    state("0010", "index", State.PENDING, None),
]


def render(color: bool) -> str:
    out = io.StringIO()
    status_table(STATES, out, color)
    return out.getvalue()


def test_status_is_a_header_a_rule_and_one_aligned_line_per_migration() -> None:
    assert render(color=False) == (
        "version  name                    state    applied at                 ms\n"
        "-------  ----------------------  -------  -----------------------  ----\n"
        "0001     create_accounts         applied  2026-11-24 15:30:00 UTC    12\n"
        "0002     add_a_much_longer_name  failed   2026-11-24 15:30:00 UTC  1234\n"
        "0010     index                   pending\n"
    )


def test_status_colours_the_state_and_bolds_the_header_only_when_asked() -> None:
    plain, coloured = render(color=False), render(color=True)

    assert "\x1b[" not in plain
    lines = coloured.splitlines()
    assert lines[0].startswith("\x1b[1mversion") and lines[0].endswith("\x1b[0m")
    assert "\x1b[32mapplied\x1b[0m" in lines[2]
    assert "\x1b[1;31mfailed \x1b[0m" in lines[3]
    assert "\x1b[33mpending\x1b[0m" in lines[4]
    # Without the escapes, the same text.
    for code in ("\x1b[1m", "\x1b[1;31m", "\x1b[32m", "\x1b[33m", "\x1b[0m"):
        coloured = coloured.replace(code, "")
    assert coloured == plain


def test_history_keeps_its_columns_and_shortens_the_checksum() -> None:
    row = AppliedMigration("0001", "0001_a.up.sql", "sha256:" + "ab" * 32, WHEN, 5, "applied")
    out = io.StringIO()

    history_table([row], out, color=False)

    header, rule, line = out.getvalue().splitlines()
    assert header.split() == ["applied", "at", "version", "filename", "status", "ms", "checksum"]
    assert set(rule) == {"-", " "}
    assert line.split() == [
        "2026-11-24",
        "15:30:00",
        "UTC",
        "0001",
        "0001_a.up.sql",
        "applied",
        "5",
        "sha256:abababababab…",
    ]

"""Timeouts as PostgreSQL receives them, and the watchdog's deadlines: pure arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlmig.lockwait import ms as _ms
from sqlmig.watchdog import GRACE, Watchdog

MAX_MS = 2**31 - 1  # PostgreSQL's timeouts are int4 milliseconds


@pytest.mark.parametrize(
    ("seconds", "setting"),
    [
        (0, "0ms"),  # PostgreSQL's "no limit", as --statement-timeout 0 means
        (0.0004, "1ms"),  # not 0, which would mean no limit at all
        (0.001, "1ms"),
        (0.0011, "2ms"),
        (1.5, "1500ms"),
        (60, "60000ms"),
        (MAX_MS / 1000, f"{MAX_MS}ms"),
    ],
)
def test_timeouts_become_whole_milliseconds_rounded_up(seconds: float, setting: str) -> None:
    assert _ms(seconds) == setting


@given(st.floats(min_value=0, max_value=MAX_MS / 1000, exclude_min=True))
def test_a_positive_timeout_is_never_sent_as_no_limit_or_shorter(seconds: float) -> None:
    ms = int(_ms(seconds).removesuffix("ms"))
    assert 1 <= ms <= MAX_MS
    assert ms >= min(seconds * 1000, MAX_MS) - 1e-6


def test_the_watchdog_allows_the_statement_timeout_for_each_round_trip_plus_grace() -> None:
    watchdog = Watchdog(2.5)
    assert watchdog.limit() == 2.5 + GRACE
    assert watchdog.limit(4) == 10 + GRACE
    assert not watchdog.fired

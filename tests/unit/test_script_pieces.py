"""The lexing shortcuts behind the speed of validation and of long scripts.

``iter_statements`` hands a long script out a statement at a time;
``split_checked`` lexes once for what ``split_statements`` and ``unterminated`` say,
``control_candidates`` for the statements validation looks at; and
``transaction_control`` answers most statements from their first letters. Each must
say exactly what the slow way says.
"""

from __future__ import annotations

import pglast
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlmig.sqlscript import (
    Statement,
    control_candidates,
    iter_statements,
    split_checked,
    split_statements,
    transaction_control,
    unterminated,
)

# Statements PostgreSQL's parser accepts, with ';' hidden in literals, comments, bodies.
POOL = [
    "SELECT 1",
    "SELECT 'a;b', E'\\';'",
    "SELECT $$a;b$$, $fn$ $$ ; $fn$",
    "SELECT 1 /* c; /* nested; */ still; */ + 2",
    "SELECT 1 -- not the end;\n + 1",
    "SELECT 'é;ü' AS \"ñ;\", $ü$;$ü$",
    "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC "
    "SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; END",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)",
    "INSERT INTO t (a, b) VALUES (1, 'x;y'), (2, $$;$$)",
    "BEGIN",
    "COMMIT",
]
BETWEEN = st.sampled_from(["\n", " ", "-- c;\n", "/* x; */", ";", "\r\n"])


@st.composite
def scripts(draw: st.DrawFn) -> str:
    statements = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=12))
    parts = ["".join(draw(st.lists(BETWEEN, max_size=2)))]
    for statement in statements:
        parts.append(statement + ";" + "".join(draw(st.lists(BETWEEN, max_size=2))))
    return "".join(parts)


@settings(max_examples=300)
@given(scripts())
def test_iter_statements_gives_what_split_statements_gives(script: str) -> None:
    assert list(iter_statements(script)) == split_statements(script)
    starts = [s.start for s in pglast.split(script, only_slices=True)]
    assert [s.start for s in iter_statements(script)] == starts


SQLISH = st.text(st.sampled_from("ab$1Ee'\"-/*;\\()\n\r \tBCEbegin"), max_size=60)


@settings(max_examples=500)
@given(st.one_of(SQLISH, scripts()))
def test_split_checked_says_what_split_statements_and_unterminated_say(text: str) -> None:
    statements, opened = split_checked(text)

    assert statements == split_statements(text)
    assert opened == unterminated(text)


@settings(max_examples=500)
@given(st.one_of(SQLISH, scripts()))
def test_control_candidates_hold_every_transaction_control_statement(text: str) -> None:
    candidates, opened = control_candidates(text)
    every = split_statements(text)

    assert [s for s in candidates if transaction_control(s)] == [
        s for s in every if transaction_control(s)
    ]
    assert all(s in every for s in candidates)
    assert opened == unterminated(text)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("  COMMIT", "COMMIT"),
        ("\n\tBEGIN", "BEGIN"),
        ("-- why\nROLLBACK", "ROLLBACK"),
        ("/* x */ END", "END"),
        ("commit", "COMMIT"),
        ("prepare transaction 'x'", "PREPARE TRANSACTION"),
        ("SELECT 1", None),
        ("(SELECT 1)", None),
        ("", None),
    ],
)
def test_transaction_control_of_any_statement_text(sql: str, expected: str | None) -> None:
    assert transaction_control(Statement(sql, 0)) == expected

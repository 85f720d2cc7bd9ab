"""Splitting scripts into statements, and mapping positions back to lines.

The property tests check the lexer against PostgreSQL's own parser (pglast wraps
libpg_query), so "the way PostgreSQL does it" is tested, not assumed.
"""

from __future__ import annotations

import re

import pglast
import pglast.parser
import pytest
import sql_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlmig.sqlscript import (
    Statement,
    control_candidates,
    excerpt,
    find_meta_commands,
    iter_statements,
    line_col,
    server_position_to_offset,
    split_checked,
    split_statements,
    transaction_control,
    unterminated,
)


def sqls(script: str, *, standard_conforming_strings: bool = True) -> list[str]:
    statements = split_statements(script, standard_conforming_strings=standard_conforming_strings)
    return [s.sql for s in statements]


# --- where statements end -------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT 'a;b'",
        "SELECT 'it''s; fine'",
        "SELECT 'a\\'",  # standard_conforming_strings: the backslash is a character
        "SELECT E'\\';'",
        "SELECT e'a\\\\'",
        "SELECT E'it''s;'",
        "SELECT E'a'\n  '\\';'",  # a continued E'' string keeps its escapes
        "SELECT U&'d\\0061t\\+000061;'",
        "SELECT B'1010', X'1F', N'na;me'",
        'SELECT 1 AS "semi;""colon"',
        'SELECT 1 AS U&"a;b"',
        "SELECT $$a;b$$",
        "SELECT $fn$ $$ ; $fn$",
        "SELECT $a$ $b$; $a$",
        "SELECT 1 /* c; /* nested; */ still; */ + 2",
        "SELECT 1 -- not the end;\n + 1",
        "SELECT 'é;ü' AS \"ñ;\"",
    ],
)
def test_semicolon_inside_a_literal_or_comment_ends_nothing(statement: str) -> None:
    assert sqls(f"{statement}; SELECT 2;") == [statement, "SELECT 2"]


def test_a_backslash_outside_e_strings_escapes_nothing() -> None:
    # xe'...' is an identifier followed by a plain string, not an escape string.
    assert sqls("SELECT xe'\\'; SELECT 2") == ["SELECT xe'\\'", "SELECT 2"]
    assert sqls("SELECT fee'x\\'; SELECT 2") == ["SELECT fee'x\\'", "SELECT 2"]


def test_positional_parameter_is_not_a_dollar_quote() -> None:
    assert sqls("PREPARE q AS SELECT $1::int; EXECUTE q(1)") == [
        "PREPARE q AS SELECT $1::int",
        "EXECUTE q(1)",
    ]
    assert sqls("SELECT $1$$;$$") == ["SELECT $1$$;$$"]


def test_dollar_inside_an_identifier_is_not_a_dollar_quote() -> None:
    assert sqls("SELECT a$b$ FROM t; SELECT 2") == ["SELECT a$b$ FROM t", "SELECT 2"]
    assert sqls("SELECT x1$$ FROM t; SELECT 2") == ["SELECT x1$$ FROM t", "SELECT 2"]


@pytest.mark.parametrize(
    "script",
    [
        "SELECT $a$x$a$$$;$$; SELECT 2",  # a dollar quote right after another
        "SELECT $$x$$E'\\';'; SELECT 2",  # E'...' right after one
        "SELECT 1$$;$$; SELECT 2",  # a dollar quote right after a number
        "SELECT $x'1\\'; SELECT 2",  # '$', then a hex string, which takes no escapes
    ],
)
def test_what_follows_a_dollar_is_lexed_as_postgresql_does(script: str) -> None:
    # Not valid SQL, so PostgreSQL's scanner (not its parser) says where the ';' are.
    semicolons = [t.start for t in pglast.parser.scan(script) if t.name == "ASCII_59"]
    statements = split_statements(script)
    assert [script.index(";", s.end) for s in statements[:-1]] == semicolons


def test_dollar_quoted_plpgsql_body_keeps_its_semicolons() -> None:
    function = (
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        "BEGIN\n"
        "    NEW.updated_at := now();  -- stamp it;\n"
        "    IF NEW.name = ';' THEN RAISE EXCEPTION 'no; %', $$;$$; END IF;\n"
        "    RETURN NEW;\n"
        "END;\n"
        "$body$"
    )
    assert sqls(f"{function};\nSELECT 1;") == [function, "SELECT 1"]


def test_begin_atomic_body_with_case_is_one_statement() -> None:
    function = (
        "CREATE FUNCTION sign_of(a int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN a > 0 THEN 1 WHEN a < 0 THEN -1 ELSE 0 END;\n"
        "  SELECT (CASE a WHEN 0 THEN 0 END);\n"
        "END"
    )
    assert sqls(f"{function}; SELECT 2;") == [function, "SELECT 2"]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
        "create or replace function f() returns int language sql begin atomic select 1; end",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN -- why not\n/* c */ ATOMIC\n"
        "SELECT 1; END",
        # END right after a dollar quote is a keyword; after a$ it is an identifier.
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC "
        "SELECT CASE WHEN true THEN $$a$$end; END",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a$end; END",
    ],
)
def test_begin_atomic_forms(statement: str) -> None:
    assert sqls(f"{statement};SELECT 2") == [statement, "SELECT 2"]


ATOMIC = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC "


@pytest.mark.parametrize(
    "statement",
    [
        # END closes the body only where a statement of the body would start.
        ATOMIC + "SELECT (t.end) FROM t; END",
        ATOMIC + "SELECT t.end FROM t; END",
        ATOMIC + "SELECT 1 AS case; END",
        ATOMIC + "SELECT x.case FROM t AS x; END",
        ATOMIC + "SELECT 1 end; END",  # a bare column label
        ATOMIC + "SELECT CASE WHEN true THEN 1 END end; END",
        ATOMIC + "SELECT 1; /* a /* end; */ b */ END",
        ATOMIC + "; ; END",
        ATOMIC + "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; END",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN /* a /* b */ c */ ATOMIC SELECT 1; END",
        "CREATE /* a /* b */ c */ FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        # BEGIN ATOMIC opens a body only in CREATE FUNCTION or PROCEDURE.
        "CREATE RULE r AS ON INSERT TO t DO INSTEAD SELECT begin atomic FROM t",
    ],
)
def test_begin_atomic_body_ends_where_postgresql_ends_it(statement: str) -> None:
    script = f"{statement}; SELECT 2"
    assert [script[s] for s in pglast.split(script, only_slices=True)] == [statement, "SELECT 2"]
    assert sqls(script) == [statement, "SELECT 2"]


def test_end_that_starts_a_body_statement_closes_the_body() -> None:
    # The grammar takes END here as the body's end, and then as COMMIT.
    assert sqls(ATOMIC + "END; END") == [ATOMIC + "END", "END"]


def test_begin_is_only_a_body_in_create_function() -> None:
    assert sqls('CREATE TABLE begin (atomic int); SELECT "end"; BEGIN; END;') == [
        "CREATE TABLE begin (atomic int)",
        'SELECT "end"',
        "BEGIN",
        "END",
    ]


def test_create_rule_actions_between_parentheses_are_one_statement() -> None:
    rule = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)"
    assert sqls(f"{rule}; SELECT 1") == [rule, "SELECT 1"]


def test_create_index_concurrently_statements_are_sent_one_by_one() -> None:
    script = (
        "CREATE INDEX CONCURRENTLY i_a ON t (a);\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i_b ON t USING btree (lower(b));\n"
        "SELECT 1;\n"
    )
    assert sqls(script) == [
        "CREATE INDEX CONCURRENTLY i_a ON t (a)",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i_b ON t USING btree (lower(b))",
        "SELECT 1",
    ]


def test_goose_annotations_are_just_comments() -> None:
    script = (
        "-- +goose Up\n"
        "-- +goose StatementBegin\n"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
        "-- +goose StatementEnd\n"
    )
    [statement] = split_statements(script)
    assert statement.sql == "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$"
    assert statement.start == script.index("CREATE")


def test_comments_and_whitespace_around_a_statement_are_not_part_of_it() -> None:
    script = "/* lead; */ -- more\n  SELECT 1 /* tail */ -- tail;\n ;\nSELECT 2 -- last"
    assert sqls(script) == ["SELECT 1", "SELECT 2"]


def test_last_statement_needs_no_semicolon() -> None:
    assert sqls("SELECT 1;\nSELECT 2\n") == ["SELECT 1", "SELECT 2"]


def test_empty_statements_are_dropped() -> None:
    assert sqls(";; -- only a comment\n ; /* and this */ ;SELECT 1;;") == ["SELECT 1"]
    assert sqls("") == []
    assert sqls("  \n-- nothing\n") == []


def test_statement_start_and_end_locate_it_in_the_script() -> None:
    script = "-- x\nSELECT 'é';\r\n  /* y */ UPDATE t SET a = 1 ;\tSELECT 3"
    statements = split_statements(script)
    assert [script[s.start : s.end] for s in statements] == [s.sql for s in statements]
    assert [s.start for s in statements] == [5, 28, 49]
    assert statements[1] == Statement("UPDATE t SET a = 1", 28)
    assert statements[1].end == 46


# --- standard_conforming_strings ----------------------------------------------------
# pglast cannot be told to lex with it off, so these follow PostgreSQL's rules (and
# psql's lexer): with it off, '...' and N'...' take backslash escapes like E'...',
# while B'...', X'...' and U&'...' never do; a string continued on the next line is
# lexed like its first part.


@pytest.mark.parametrize(
    ("statement", "off"),
    [
        ("SELECT 'it\\'s; here'", ["SELECT 'it\\'s; here'"]),
        ("SELECT N'a\\';'", ["SELECT N'a\\';'"]),
        ("SELECT xe'a\\';'", ["SELECT xe'a\\';'"]),  # xe is an identifier: a plain '...'
        ("SELECT 'a'\n'\\';'", ["SELECT 'a'\n'\\';'"]),
        ("SELECT 'a\\\\'", ["SELECT 'a\\\\'"]),
        ("SELECT E'a\\';'", ["SELECT E'a\\';'"]),
        ("SELECT B'1\\'", ["SELECT B'1\\'"]),
        ("SELECT x'1\\'", ["SELECT x'1\\'"]),
        ("SELECT U&'a\\'", ["SELECT U&'a\\'"]),
        ("SELECT B'1'\n'\\'", ["SELECT B'1'\n'\\'"]),
        # '' does not double a quote in B'...': it ends it, and opens '...', with escapes.
        ("SELECT B'1''\\';'", ["SELECT B'1''\\';'"]),
    ],
)
def test_with_standard_conforming_strings_off_plain_strings_take_escapes(
    statement: str, off: list[str]
) -> None:
    script = f"{statement}; SELECT 2"
    assert sqls(script, standard_conforming_strings=False) == [*off, "SELECT 2"]


def test_standard_conforming_strings_is_on_unless_told() -> None:
    script = "SELECT 'it\\'s; here'; SELECT 2"
    assert sqls(script) == ["SELECT 'it\\'s", "here'; SELECT 2"]
    assert sqls(script, standard_conforming_strings=True) == sqls(script)
    assert unterminated(script) == ("quoted string", script.index("'; S"))
    assert unterminated(script, standard_conforming_strings=False) is None
    second = script.index("SELECT 2")
    lazily = iter_statements(script, standard_conforming_strings=False)
    assert [s.start for s in lazily] == [0, second]
    statements, opened = control_candidates(
        "SELECT 'a\\'; COMMIT", standard_conforming_strings=False
    )
    assert [s.sql for s in statements] == [] and opened == ("quoted string", 7)


def test_meta_commands_inside_an_escaped_string_are_not_found() -> None:
    script = "SELECT 'a\\'\n\\i x\n';\n"
    assert find_meta_commands(script) == [2]
    assert find_meta_commands(script, standard_conforming_strings=False) == []


OFF = [
    "SET standard_conforming_strings = off",
    "SET standard_conforming_strings TO off",
    "set standard_conforming_strings = false",
    "SET standard_conforming_strings = 'off'",
    "SET standard_conforming_strings = 0",
    "SET SESSION standard_conforming_strings TO OFF",
    "SET LOCAL standard_conforming_strings = no",
    'SET "standard_conforming_strings" = "of"',
    "SET /* c */ standard_conforming_strings\n-- c\n= E'f'",
    "SET standard_conforming_strings = $x$off$x$",
]
ON = [
    "SET standard_conforming_strings = on",
    "SET standard_conforming_strings TO 'yes'",
    "SET LOCAL standard_conforming_strings = 1",
    "RESET standard_conforming_strings",
    "reset all",
    "SET standard_conforming_strings TO DEFAULT",
    "DISCARD ALL",
]
UNCHANGED = [
    "SET standard_conforming_strings = o",  # refused: on or off?
    "SET standard_conforming_strings = 'default'",
    "SET standard_conforming_strings = off, on",
    "SET search_path = off",
    "SELECT 'SET standard_conforming_strings = off'",
    "SHOW standard_conforming_strings",
]
QUOTE = "SELECT 'it\\'s; here'"  # one statement with it off, cut in two with it on


@pytest.mark.parametrize("setting", OFF)
def test_a_script_that_turns_standard_conforming_strings_off_is_lexed_so(setting: str) -> None:
    assert sqls(f"{setting};\n{QUOTE};\nSELECT 2") == [setting, QUOTE, "SELECT 2"]
    # A setting that failed would be none: the script stops there.
    assert sqls(f"{setting}; SELECT 1;\n{QUOTE};") == [setting, "SELECT 1", QUOTE]


@pytest.mark.parametrize("setting", ON)
def test_a_script_that_turns_standard_conforming_strings_back_on_is_lexed_so(
    setting: str,
) -> None:
    script = f"SET standard_conforming_strings = off; {setting}; {QUOTE}"
    assert sqls(script)[-2:] == ["SELECT 'it\\'s", "here'"]


@pytest.mark.parametrize("setting", UNCHANGED)
def test_other_statements_leave_standard_conforming_strings_alone(setting: str) -> None:
    assert sqls(f"{setting}; {QUOTE}") == [setting, "SELECT 'it\\'s", "here'"]
    off = sqls(f"{setting}; {QUOTE}", standard_conforming_strings=False)
    assert off == [setting, QUOTE]


def test_reset_returns_to_the_setting_the_script_started_with() -> None:
    script = f"SET standard_conforming_strings = on; RESET standard_conforming_strings; {QUOTE}"
    assert sqls(script, standard_conforming_strings=False)[-1] == QUOTE


# --- unterminated literals and comments ------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1; SELECT 'abc;", ("quoted string", 17)),
        ("SELECT 1; SELECT 'it''s", ("quoted string", 17)),
        ("SELECT 1; SELECT E'abc\\';", ("escape string", 17)),
        ('SELECT 1; SELECT "abc;', ("quoted identifier", 17)),
        ("SELECT 1; SELECT $fn$ abc; $fn", ("dollar-quoted string $fn$", 17)),
        ("SELECT 1; SELECT $$ abc;", ("dollar-quoted string $$", 17)),
        ("SELECT 1; SELECT /* a /* b */ c;", ("block comment", 17)),
        ("SELECT 1; SELECT 'a'\n  'b;", ("quoted string", 17)),  # one literal, continued
        ("SELECT 1; SELECT B'1'';", ("quoted string", 21)),  # '' ends B'...'
    ],
)
def test_unterminated_names_what_is_open_and_where(script: str, expected: tuple[str, int]) -> None:
    assert unterminated(script) == expected
    # The rest of the script stays in the last statement, for the server to reject.
    assert sqls(script) == ["SELECT 1", script[10:]]


def test_a_body_left_open_runs_to_the_end_of_the_script() -> None:
    assert sqls(ATOMIC + "SELECT 1; ") == [ATOMIC + "SELECT 1;"]


def test_unterminated_comment_alone_is_still_a_statement() -> None:
    assert sqls("SELECT 1; /* open") == ["SELECT 1", "/* open"]


def test_complete_script_has_nothing_unterminated() -> None:
    assert unterminated("SELECT 'a', \"b\", $$c$$, E'\\'' /* d */ -- e") is None


# --- meta-commands and transaction control -----------------------------------------


def test_meta_command_at_top_level_is_found() -> None:
    script = "\\set ON_ERROR_STOP on\nSELECT 1;\r\n  \\i other.sql\rSELECT 2;\n"
    assert find_meta_commands(script) == [1, 3]


def test_backslash_lines_inside_literals_and_comments_are_not_meta_commands() -> None:
    script = (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n"
        "\\i not_me.sql\n"
        "$$;\n"
        "/*\n"
        "  \\connect nope\n"
        "*/\n"
        "SELECT E'\n"
        "\\n';\n"
        "SELECT 1 \\gset\n"
    )
    assert find_meta_commands(script) == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN", "BEGIN"),
        ("begin work", "BEGIN"),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("start\n  transaction read only", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("commit and chain", "COMMIT"),
        ("END", "END"),
        ("end transaction", "END"),
        ("ROLLBACK", "ROLLBACK"),
        ("rollback work", "ROLLBACK"),
        ("ABORT", "ABORT"),
        ("COMMIT PREPARED 'gid'", "COMMIT PREPARED"),
        ("rollback  prepared 'gid'", "ROLLBACK PREPARED"),
        ("PREPARE TRANSACTION 'gid'", "PREPARE TRANSACTION"),
        ("commit /* now */ prepared 'gid'", "COMMIT PREPARED"),
    ],
)
def test_transaction_control_is_recognised(sql: str, expected: str) -> None:
    assert transaction_control(Statement(sql, 0)) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "ROLLBACK TO s",
        "rollback to savepoint s",
        "ROLLBACK WORK TO SAVEPOINT s",
        "ROLLBACK TRANSACTION /* x */ TO s",
        "SAVEPOINT s",
        "RELEASE s",
        "RELEASE SAVEPOINT s",
        "BEGIN ATOMIC SELECT 1; END",
        "PREPARE transaction AS SELECT 1",
        "PREPARE transaction (int) AS SELECT $1",
        "PREPARE q AS SELECT 1",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SELECT 'COMMIT'",
        "COMMENT ON TABLE t IS 'x'",
        "beginning",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        "DO $$ BEGIN COMMIT; END $$",
    ],
)
def test_other_statements_are_not_transaction_control(sql: str) -> None:
    assert transaction_control(Statement(sql, 0)) is None


# --- positions -----------------------------------------------------------------


def test_server_position_is_one_based() -> None:
    assert server_position_to_offset(1) == 0
    assert server_position_to_offset(42) == 41
    with pytest.raises(ValueError):
        server_position_to_offset(0)


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("ab\ncd", 0, (1, 1)),
        ("ab\ncd", 2, (1, 3)),  # the line break itself
        ("ab\ncd", 3, (2, 1)),
        ("ab\r\ncd", 2, (1, 3)),
        ("ab\r\ncd", 3, (1, 4)),  # the '\n' of '\r\n' is on the line it ends
        ("ab\r\ncd", 4, (2, 1)),
        ("ab\rcd\ne", 3, (2, 1)),
        ("ab\rcd\ne", 6, (3, 1)),
        ("é\tx", 2, (1, 3)),  # characters, not bytes
        ("ab\ncd", 5, (2, 3)),  # just after the end
        ("ab\n", 3, (2, 1)),
        ("", 0, (1, 1)),
    ],
)
def test_line_col(text: str, offset: int, expected: tuple[int, int]) -> None:
    assert line_col(text, offset) == expected


def test_line_col_rejects_offsets_outside_the_text() -> None:
    with pytest.raises(ValueError):
        line_col("abc", 4)
    with pytest.raises(ValueError):
        line_col("abc", -1)


def test_excerpt_shows_numbered_lines_and_a_caret() -> None:
    text = "select 1;\nselec 2;\nselect 3;"
    assert excerpt(text, 2, 1, first_line=10) == (
        "  10 | select 1;\n  11 | selec 2;\n     | ^\n  12 | select 3;"
    )


def test_excerpt_keeps_the_caret_under_the_column_after_tabs() -> None:
    text = "a\n\tx =\tbad\nb\n"
    assert excerpt(text, 2, 6, context=0) == "  2 | \tx =\tbad\n    | \t   \t^"


def test_excerpt_at_the_edges_of_the_text() -> None:
    text = "one\r\ntwo\rthree\n\nfive"
    assert excerpt(text, 1, 4, context=1) == "  1 | one\n    |    ^\n  2 | two"
    assert excerpt(text, 5, 1, first_line=98) == ("  100 | three\n  101 |\n  102 | five\n      | ^")


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_excerpt_shows_no_line_past_the_end_of_the_file(ending: str) -> None:
    text = f"select 1;{ending}select 2;{ending}selec 3;{ending}"
    assert excerpt(text, 3, 1) == "  1 | select 1;\n  2 | select 2;\n  3 | selec 3;\n    | ^"
    assert excerpt(text, 2, 1, context=1) == (
        "  1 | select 1;\n  2 | select 2;\n    | ^\n  3 | selec 3;"
    )
    # An error at the end of the input is on the line after the last line break.
    assert excerpt(text, 4, 1, context=1) == "  3 | selec 3;\n  4 |\n    | ^"


# --- properties ------------------------------------------------------------------

# Valid statements PostgreSQL's parser accepts, each hiding a ';' or a trap.
POOL = [
    "SELECT 1",
    "SELECT 'a;b'",
    "SELECT 'it''s; fine', 'a\\'",
    "SELECT E'\\';', e'\\\\'",
    "SELECT E'a'\n'\\';'",
    'SELECT 1 AS "semi;""colon", 2 AS U&"d;"',
    "SELECT U&'d\\0061t;', B'1010', X'1F', N'na;me'",
    "SELECT $$a;b$$, $fn$ $$ ; $fn$",
    "SELECT 1 /* c; /* nested; */ still; */ + 2",
    "SELECT 1 -- not the end;\n + 1",
    "SELECT 'é;ü' AS \"ñ;\", $ü$;$ü$",
    "SELECT a$b$ FROM t",
    "SELECT xe'\\'",
    "PREPARE q AS SELECT $1::int",
    "CREATE INDEX CONCURRENTLY i ON t (c)",
    "DO $$BEGIN RAISE NOTICE ';'; END$$",
    "CREATE TABLE begin (atomic int, \"end\" text DEFAULT ';')",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
    "BEGIN PERFORM 1; RETURN 2; END $body$",
    "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC "
    "SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT (CASE a WHEN 1 THEN 'x;' END); END",
    "create or replace procedure p() language sql\n"
    "begin /* c; */ atomic insert into t values (1); end",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)",
    "INSERT INTO t (a, b) VALUES (1, 'x;y'), (2, $$;$$)",
    "SELECT '😀;' AS \"🎉;\", $😀$;$😀$, $a$$b$;$a$",
    "CREATE FUNCTION h() RETURNS TABLE (a int) LANGUAGE sql BEGIN ATOMIC END",
    "CREATE OR REPLACE RULE r AS ON UPDATE TO t DO INSTEAD (UPDATE a SET x = (1); NOTIFY c)",
]
# Statements of a BEGIN ATOMIC body, where END, CASE and BEGIN are not always keywords.
BODY = [
    "SELECT (t.end) FROM t",
    "SELECT t.end, t . case FROM t",
    "SELECT 1 AS case, 2 AS end",
    "SELECT 1 end",
    "SELECT CASE WHEN a > 0 THEN 'end;' ELSE (CASE a WHEN 1 THEN 2 END) END end",
    "SELECT begin, atomic FROM t",
    'INSERT INTO t ("end", "case") VALUES (1, $$;end$$)',
    "UPDATE t SET x = 1 WHERE y = 'END' -- end;\n",
    "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); DELETE FROM b)",
    "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 AS case; END",
    "",
]
BODY_GAP = st.sampled_from([" ", "\n  ", " -- end;\n", " /* end; */ ", " /* a /* end; */ b */ "])


@st.composite
def routines(draw: st.DrawFn) -> str:
    """A CREATE FUNCTION or PROCEDURE with a BEGIN ATOMIC body of random statements."""
    head = draw(
        st.sampled_from(
            [
                "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql",
                "create or replace procedure p()\nlanguage sql",
                "CREATE /* a /* b */ c */ FUNCTION g() RETURNS int LANGUAGE sql",
            ]
        )
    )
    body = "".join(
        draw(BODY_GAP) + draw(st.sampled_from(BODY)) + ";" for _ in range(draw(st.integers(0, 4)))
    )
    return f"{head} BEGIN{draw(BODY_GAP)}ATOMIC{body}{draw(BODY_GAP)}END"


# The statements of POOL that are one statement only with standard_conforming_strings on.
ON_ONLY = ["SELECT 'it''s; fine', 'a\\'", "SELECT xe'\\'"]
# Random contents for literals, heavy on the characters that end or escape them.
CONTENT = st.text(st.sampled_from("a;'\"$\\/*-\nEé"), max_size=12)


@st.composite
def literals(draw: st.DrawFn, std: bool = True) -> str:
    """One string, quoted identifier, dollar-quoted string or comment with random contents,
    written for standard_conforming_strings ``std``."""
    text = draw(CONTENT)
    kind = draw(st.sampled_from(["plain", "escape", "bits", "ident", "dollar", "comment"]))
    if kind == "plain" and std:
        return "'" + text.replace("'", "''") + "'"
    if kind in ("plain", "escape"):
        escaped = text.replace("\\", "\\\\")
        escaped = escaped.replace("'", draw(st.sampled_from(["''", "\\'"])))
        return ("E'" if kind == "escape" else draw(st.sampled_from(["'", "N'"]))) + escaped + "'"
    if kind == "bits":  # PostgreSQL checks the digits later than it parses
        return draw(st.sampled_from(["B'", "x'"])) + text.replace("'", "") + "'"
    if kind == "ident":
        return '1 AS "' + (text.replace('"', '""') or "x") + '"'
    if kind == "dollar":
        tag = draw(st.sampled_from(["", "q", "ü_1"]))
        if f"${tag}$" in f"{text}$" or text.endswith("$"):
            text = text.replace("$", "")
        return f"${tag}${text}${tag}$"
    text = text.replace("*", "")
    return draw(st.sampled_from(["/* {} */ 1", "/* /* {} */ */ 1", "-- {}\n1"])).format(
        text.replace("\n", " ")
    )


@st.composite
def selects(draw: st.DrawFn, std: bool = True) -> str:
    return "SELECT " + ", ".join(draw(st.lists(literals(std), min_size=1, max_size=4)))


# What may come between statements (comments may also precede a ';').
FILLER = st.sampled_from(
    [" ", "\n", "\t", "\r\n", "-- c;\n", "/* x; */", "/* a /* b; */ c */", "-- +goose Up\n"]
)


@st.composite
def scripts(draw: st.DrawFn, std: bool = True) -> tuple[str, list[str], list[str]]:
    """A script, its statements, and what pglast should return for each. Without
    ``std``, written for standard_conforming_strings off, which pglast cannot be told."""
    pool = POOL if std else [p for p in POOL if p not in ON_ONLY]
    statements = draw(
        st.lists(st.sampled_from(pool) | selects(std) | routines(), min_size=1, max_size=8)
    )
    parts = ["".join(draw(st.lists(FILLER, max_size=3)))]
    pg_texts = []
    for k, statement in enumerate(statements):
        tail = "".join(draw(st.lists(FILLER, max_size=2)))
        pg_texts.append((statement + tail).strip())  # pglast keeps comments before ';'
        if k == len(statements) - 1 and draw(st.booleans()):
            parts.append(statement + tail)  # a last statement without ';'
        else:
            between = "".join(draw(st.lists(FILLER | st.just(";"), max_size=3)))
            parts.append(statement + tail + ";" + between)
    return "".join(parts), statements, pg_texts


@settings(max_examples=300)
@given(scripts())
def test_split_agrees_with_postgresql_parser(case: tuple[str, list[str], list[str]]) -> None:
    script, expected, pg_texts = case
    statements = split_statements(script)
    slices = pglast.split(script, only_slices=True)
    assert [script[s] for s in slices] == pg_texts
    assert [s.sql for s in statements] == expected
    assert [s.start for s in statements] == [s.start for s in slices]
    assert unterminated(script) is None


@settings(max_examples=300)
@given(scripts(std=False))
def test_split_with_standard_conforming_strings_off(
    case: tuple[str, list[str], list[str]],
) -> None:
    script, expected, _ = case
    statements = split_statements(script, standard_conforming_strings=False)
    assert [s.sql for s in statements] == expected
    assert unterminated(script, standard_conforming_strings=False) is None


def _check_invariants(script: str) -> None:
    statements = split_statements(script)
    previous_end = 0
    for statement in statements:
        assert script[statement.start : statement.end] == statement.sql
        assert statement.start >= previous_end
        assert statement.sql
        assert statement.sql == statement.sql.lstrip(" \t\n\r\f\v")
        previous_end = statement.end
    if statements and unterminated(script) is None:
        assert statements[-1].sql == statements[-1].sql.rstrip(" \t\n\r\f\v")


@given(scripts())
def test_statements_are_slices_in_order(case: tuple[str, list[str], list[str]]) -> None:
    _check_invariants(case[0])


SQLISH = st.text(st.sampled_from("ab$1Ee'\"-/*;\\()\n\r \tU&é"), max_size=60)


@settings(max_examples=500)
@given(st.one_of(st.text(), SQLISH))
def test_any_text_splits_without_error(text: str) -> None:
    _check_invariants(text)
    unterminated(text)
    find_meta_commands(text)


@given(st.text(st.sampled_from("ab$1EeBX'\"-/*;()\n U&é"), max_size=60))
def test_without_a_backslash_standard_conforming_strings_changes_nothing(text: str) -> None:
    assert split_statements(text, standard_conforming_strings=False) == split_statements(text)


# Pieces of SQL at which the lexer must decide something, to be joined at random.
PIECES = [
    *["SELECT ", "a", "1", " ", "\n", ";", "(", ")", ", ", "-", "/", "*", "\\", "=", "&"],
    *["'x;y'", "'it''s'", "'a\\'", "'", "E'\\';'", "e'a", "B'1''", "x'1\\'", "N'\\';'"],
    *["U&'\\'", 'U&"i"', '"q;"""', '"', "'a'\n'\\'", " -- c\n'b'", "E'\n'"],
    *["$$;$$", "$a$ $$ $a$", "$", "$1", "a$b", "1$$", "$$", "$$x$$begin", "a$begin"],
    *["--c;\n", "-- x", "/* c; */", "/* a /* b; */ c */", "/*", "*/", "\\i x\n", "\n\\set x\n"],
    *["CREATE FUNCTION f() RETURNS int LANGUAGE sql ", "create or replace procedure p() "],
    *["CREATE RULE r AS ON INSERT TO t DO ALSO ", "CREATE /* a /* b */ c */ FUNCTION "],
    *["BEGIN", " ATOMIC ", "begin atomic ", "END", " end", "CASE ", "t.end", "AS case"],
    *["END;", "BEGIN ATOMIC SELECT 1; END", "CREATE FUNCTION g() BEGIN ATOMIC ", 'U&"', "N'"],
    *["SET standard_conforming_strings = off;", "SET standard_conforming_strings TO on;"],
    *["set local standard_conforming_strings = 'of';", "RESET standard_conforming_strings;"],
    *["RESET ALL;", "DISCARD ALL;", "SET standard_conforming_strings = $$false$$;"],
]
SOUP = st.lists(
    st.sampled_from(PIECES)
    | st.text(st.sampled_from("ab$1EeBxN'\"-/*;\\()\n\r\t\v U&é"), max_size=3),
    max_size=30,
).map("".join)


@settings(max_examples=1000)
@given(SOUP, st.booleans())
def test_lexer_agrees_with_a_plain_reference(script: str, std: bool) -> None:
    """The lexer, matching runs of text with regexes, against sql_reference, which
    follows PostgreSQL's rules one character at a time."""
    expected = sql_reference.lex(script, std)
    statements, opened = split_checked(script, standard_conforming_strings=std)
    assert [(s.start, s.end) for s in statements] == expected.statements
    assert (opened[1] if opened else None) == expected.opened
    meta = find_meta_commands(script, standard_conforming_strings=std)
    assert meta == _first_on_their_lines(script, expected.backslashes)


def _first_on_their_lines(script: str, offsets: list[int]) -> list[int]:
    """The lines on which a character at one of the offsets comes first but for blanks."""
    lines = set()
    for offset in offsets:
        line_start = max(script.rfind("\n", 0, offset), script.rfind("\r", 0, offset)) + 1
        if not script[line_start:offset].strip(" \t"):
            lines.add(line_col(script, offset)[0])
    return sorted(lines)


def _naive_line_col(text: str, offset: int) -> tuple[int, int]:
    lines = re.split(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)", text)  # each keeps its break
    start = 0
    for number, piece in enumerate(lines, 1):
        if offset < start + len(piece) or number == len(lines):
            return number, offset - start + 1
        start += len(piece)
    raise AssertionError("unreachable")


@given(st.text(st.sampled_from("ab\r\n\té"), max_size=30), st.data())
def test_line_col_agrees_with_a_naive_count(text: str, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(text)))
    assert line_col(text, offset) == _naive_line_col(text, offset)


@given(st.text(st.sampled_from("ab\r\n\t"), max_size=30), st.data())
def test_excerpt_shows_the_caret_under_the_offset(text: str, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, len(text)))
    line, column = line_col(text, offset)
    shown = excerpt(text, line, column, context=0).split("\n")
    source, caret = shown[0], shown[1]
    assert re.fullmatch(rf"  {line} \|( .*)?", source)
    assert caret.index("^") - len(f"  {line} | ") == column - 1

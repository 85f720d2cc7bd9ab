"""How a raw SQL script is cut into statements, and how positions in it are shown.

A migration that must run outside a transaction (``CREATE INDEX CONCURRENTLY``)
cannot be sent as one query string: PostgreSQL runs a multi-statement string
as one implicit transaction. So we split it ourselves, which means lexing it
the way PostgreSQL does: strings, quoted identifiers, dollar quotes, nested
comments, and ``BEGIN ATOMIC ... END`` function bodies all hide semicolons.

Whether a backslash escapes in '...' depends on ``standard_conforming_strings``.
The lexer starts from the setting it is given (on, PostgreSQL's default since
9.1, unless the caller knows better) and follows the script's own ``SET`` and
``RESET`` of it, as the server does when the statements are sent one by one.

Every script is split before it runs, and a script can be 50 MB, so Python must
not loop over characters, nor even over tokens. One compiled regex (_pattern)
matches everything that cannot end a statement (words, operators, whitespace,
comments, complete literals) at once, up to the next thing that may (a ';', and
in CREATE FUNCTION, PROCEDURE or RULE a parenthesis or BEGIN) or that only
Python can take apart (E'...', a nested comment, an unterminated literal...).
For most statements that is one match from start to ';'.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a script, as written, and where it starts in the script.

    ``sql`` runs from the statement's first significant character through its
    last: comments and whitespace around it and the terminating ``;`` are not
    part of it. Add ``start`` to an offset within ``sql`` to get one in the script.
    """

    sql: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.sql)


# --- the lexer --------------------------------------------------------------

_WS = " \t\n\r\f\v"
# An identifier character other than '$'. PostgreSQL counts every byte >= 0x80 as
# a letter, which in UTF-8 means every non-ASCII character. Written as "not one of
# the other ASCII characters": a class that spells out the range up to U+10FFFF
# takes milliseconds to compile, and there are dozens of them.
_ID = r"[^\x00-/:-@\[-^`{-\x7f]"
_ID_OR_DOLLAR = r"[^\x00-#%-/:-@\[-^`{-\x7f]"
_LETTER = r"[^\x00-@\[-^`{-\x7f]"  # an identifier character that may start one
_TAG = f"(?:{_LETTER}{_ID}*)?"
# Whitespace or a comment. A block comment with another one inside is not one
# here: Python takes those apart. Each alternative matches as far as it can, so
# that a regex that fails after _BLANKS* does not try every way of cutting the
# whitespace (exponentially many).
_FLAT_COMMENT = r"/\*[^*/]*(?:(?:\*(?!/)|/(?!\*))[^*/]*)*\*/"
_BLANK = f"[{_WS}]+(?![{_WS}])|--[^\\n\\r]*(?![^\\n\\r])|{_FLAT_COMMENT}"
_BLANKS = f"(?:{_BLANK})"
# A comment or whitespace between two keywords. The line comment must end in a
# newline (or the keyword would be inside it).
_GAP = f"(?:[{_WS}]|--[^\\n\\r]*[\\n\\r]|{_FLAT_COMMENT})"
_AFTER_WORD = f"(?!{_ID_OR_DOLLAR}){_BLANKS}*"
_END_WORD = f"(?i:end)(?!{_ID_OR_DOLLAR})"
# CREATE [OR REPLACE] FUNCTION, PROCEDURE or RULE; or, where a comment that the
# regexes cannot see through (one with another inside) stands between the words,
# its "/*" (then _kind walks the words).
_NESTED_COMMENT = rf"(?!{_FLAT_COMMENT})/\*"
_CREATE = (
    rf"(?i:create){_AFTER_WORD}"
    rf"(?:(?i:or){_AFTER_WORD}(?:(?i:replace){_AFTER_WORD}|(?={_NESTED_COMMENT})))?"
)
_ROUTINE_WORD = f"(?i:function|procedure)(?!{_ID_OR_DOLLAR})"
_KIND_WORD = f"(?i:function|procedure|rule)(?!{_ID_OR_DOLLAR})"
_HEAD = f"{_CREATE}(?:{_KIND_WORD}|{_NESTED_COMMENT})"

# Statements in which a ';' may end nothing: CREATE RULE (between parentheses) and
# CREATE FUNCTION/PROCEDURE (between parentheses, and in a BEGIN ATOMIC body).
# Only in them are parentheses tracked, as psql does: elsewhere a ';' between
# parentheses is a syntax error however we split, so we don't pay to track them.
_PLAIN = 0
_RULE = 1  # also a statement in a BEGIN ATOMIC body, and inside parentheses
_ROUTINE = 2  # CREATE FUNCTION or PROCEDURE, where BEGIN ATOMIC opens a body
_KINDS = {"function": _ROUTINE, "procedure": _ROUTINE, "rule": _RULE}
# In a character class: what words and operators stop at (and in _RULE and _ROUTINE
# statements, where parentheses count, also at parentheses).
_STOPS = ";'\"$/\\\\\\-"
_NESTED_STOPS = _STOPS + "()"
# The body of a string after the opening quote, through the closing quote. The (?!')
# ends a literal where PostgreSQL does, so that an unterminated one is seen where it
# opens, even when backtracking.
_STANDARD = r"[^']*(?:''[^']*)*'(?!')"
_ESCAPED = r"[^'\\]*(?:(?:''|\\(?s:.))[^'\\]*)*'(?!')"
# A string continued on a later line ('a'<newline>'b') is one literal, and a
# string with escapes keeps them across the continuation.
_CONTINUE = r"[ \t\f\v]*(?:--[^\n\r]*)?[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'"


def _continued(body: str) -> str:
    """A string's body and its continuations, which must close too. Only where a line
    break or comment follows can there be one: the regex looks at the rest only then."""
    return rf"{body}(?:(?![ \t\f\v]*(?:--|[\n\r]))|(?:{_CONTINUE}{body})*(?!{_CONTINUE}))"


@functools.cache
def _pattern(kind: int, standard_strings: bool, opening: bool = False) -> re.Pattern[str]:
    """The regex that matches, in a statement of this kind, everything up to the next
    thing Python must look at, or to the end of the script. ``opening``, for the
    start of a statement: stop at once at CREATE FUNCTION, PROCEDURE or RULE, rather
    than match them as plain statements.

    Group 1 is empty, where the whitespace and comments at the start end; group 2
    ends where the last significant character matched ends (-1: none).

    Everything is optional and nothing follows the loops, so the regex never
    backtracks far. Where a part can fail (parentheses, a BEGIN ATOMIC body), every
    alternative in it starts with characters of its own and matches as far as it
    can: it backtracks once, not in every way of cutting the text. Alternatives
    start with the character they match, lookarounds after, because the regex
    engine skips without trying those whose first character differs.
    """
    tags = itertools.count()

    def literal(top: bool = False) -> str:
        tag = f"tag{next(tags)}"  # each copy needs a name of its own
        # Where the last dollar quote matched at the top ends, for Python: a '$' or a
        # word right after it starts a new token (see _starts_word).
        quote_end = "(?P<quote_end>)" if top else ""
        return "|".join(
            [
                # Strings that the others' rules do not fit are left to Python: B'...'
                # and X'...'; E'...' when standard_conforming_strings is on, U&'...'
                # when it is off.
                f"'(?<![BbXxEe]'){_continued(_STANDARD)}"
                if standard_strings
                else f"'(?<![BbXx&]'){_continued(_ESCAPED)}",
                r'"[^"]*(?:""[^"]*)*"(?!")',
                # A dollar quote, or a '$' that opens none ($1). A '$' right after an
                # identifier character may be in the identifier (a$b$): Python decides.
                rf"\$(?<!{_ID_OR_DOLLAR}\$)(?:(?P<{tag}>{_TAG})\$[^$]*(?:\$(?!(?P={tag})\$)[^$]*)*"
                rf"\$(?P={tag})\${quote_end}|(?!{_TAG}\$))",
                r"-(?!-)",
                r"/(?!\*)",
            ]
        )

    def words(stops: str) -> str:  # words, numbers, operators, and the blanks between
        char = f"[^{stops}{_WS}]"
        return f"{char}(?:[^{stops}]*{char})?(?![{_WS}]*{char})"

    def group() -> str:  # parentheses nested up to three deep, ';' and all
        other = "'\"$/\\\\\\-()"
        nested = ""
        for _ in range(3):
            inside = f"[^{other}]+(?![^{other}])|{literal()}|--[^\\n\\r]*(?![^\\n\\r])"
            inside += f"|{_FLAT_COMMENT}" + (f"|{nested}" if nested else "")
            nested = rf"\((?:{inside})*\)"
        return nested

    if kind == _PLAIN:
        atom = f"{words(_STOPS)}|{literal(top=True)}"
    elif kind == _RULE:
        atom = f"{words(_NESTED_STOPS)}|{literal(top=True)}|{group()}"
    else:  # BEGIN ATOMIC ... END whole if the regex sees through it; BEGIN stops it
        statement = f"(?:{_BLANK}|{words(_NESTED_STOPS)}|{literal()}|{group()})*"
        body = (
            rf"[Bb](?<!{_ID_OR_DOLLAR}[Bb])(?i:egin){_AFTER_WORD}(?i:atomic)"
            rf"(?:(?!{_GAP}*(?:{_END_WORD}|{_CREATE}{_ROUTINE_WORD})){statement};)*"
            f"{_GAP}*{_END_WORD}"
        )
        # Words stop at every b, and a b goes on unless it starts the word BEGIN.
        b = rf"[Bb](?:(?<={_ID}[Bb])|(?!(?i:egin)(?!{_ID_OR_DOLLAR})))"
        atom = f"{body}|{words(_NESTED_STOPS + 'Bb')}|{b}|{literal(top=True)}|{group()}"
    head = f"(?={_HEAD})|" if opening else ""
    return re.compile(
        f"{_BLANKS}*()(?:{head}(?:((?:[{_WS}]*(?:{atom}))+)|{_BLANK})*)",
        re.ASCII,  # keywords are ASCII: (?i:begin) must match no look-alike (U+0131 for i)
    )


_DOLLAR = re.compile(rf"\${_TAG}\$")
_COMMENT_MARK = re.compile(r"/\*|\*/")
_GAP_PIECE = re.compile(rf"[{_WS}]+|--[^\n\r]*|/\*")
_WORD = re.compile(f"{_LETTER}{_ID_OR_DOLLAR}*")
_ATOMIC = re.compile(f"(?i:atomic)(?!{_ID_OR_DOLLAR})", re.ASCII)
_KIND = re.compile(f"{_CREATE}(?:(?P<kind>{_KIND_WORD})|{_NESTED_COMMENT})", re.ASCII)
_END = re.compile(_END_WORD, re.ASCII)
_STANDARD_BODY = re.compile(_STANDARD)
_BIT_BODY = re.compile(r"[^']*'")
_ESCAPE_BODY = re.compile(_ESCAPED)
_CONTINUATION = re.compile(_CONTINUE)


def _lex(script: str, std: bool) -> tuple[list[int], list[int], int, list[int]]:
    """Where the significant text of each statement starts and ends; where an
    unterminated literal or comment opens (-1 if none: the last statement then runs
    to the end); and where a backslash stands outside every literal and comment
    (a psql meta-command, to the server a syntax error).

    ``std`` is standard_conforming_strings at the start; a statement that sets it
    changes it for the statements after it, and RESET brings back ``std``.

    A BEGIN ATOMIC body is a list of statements, each ended by ';', then END. So END
    closes the body only where a statement of the body would start: not after CASE,
    nor as a column (t.end) or a label (AS end), which PostgreSQL's grammar sees the
    same way. (psql counts BEGIN, CASE and END at parenthesis depth 0 instead, and
    cuts ``SELECT t.end FROM t`` or ``SELECT 1 AS case`` in a body in the wrong place.)
    """
    n = len(script)
    reset = std
    starts: list[int] = []
    ends: list[int] = []
    backslashes: list[int] = []
    opened = -1
    plain, opening = _pattern(_PLAIN, std), _pattern(_PLAIN, std, opening=True)
    pattern = opening
    started = False  # the statement has a significant character
    start = end = 0  # the statement's significant text, as far as it is known
    kind = _PLAIN  # of the statement, or of the statement of a body, being lexed
    parens = 0  # open, and not matched whole by the pattern
    bodies = 0  # BEGIN ATOMIC bodies open, and not matched whole by the pattern
    dollar_end = -1  # end of the last dollar-quoted string, whose '$' ends no identifier
    pos = 0
    while True:
        m = pattern.match(script, pos)
        assert m is not None  # everything in the pattern is optional
        stop = m.end()
        last = m.end(2)
        if last >= 0:
            end = last
        if not started and (last >= 0 or (stop < n and script[stop] not in ";/")):
            start = m.start(1)
            started = True
            pattern = plain
            if stop == start and script[start] in "Cc":  # the opening saw CREATE FUNCTION...
                kind = _kind(script, start)
                pattern, pos = _pattern(kind, std), start
                continue  # match again, stopping where this kind of statement must
        if stop == n:
            break
        c = script[stop]
        if c == ";":
            pos = stop + 1
            if parens or bodies:  # it ends nothing, and is part of the statement
                end = pos
                if parens:
                    continue
            else:
                if started:
                    starts.append(start)
                    ends.append(end)
                    if script[start] in "SsRrDd" and std != (
                        std := _setting_after(script, start, stop, std, reset)
                    ):
                        plain, opening = _pattern(_PLAIN, std), _pattern(_PLAIN, std, opening=True)
                started, kind, pattern = False, _PLAIN, opening
                continue
        elif c == "'":
            dollar_end = max(dollar_end, m.end("quote_end"))
            prefixed = script[stop - 1 : stop] in ("E", "e") and _starts_word(
                script, stop - 1, dollar_end
            )
            body = _ESCAPE_BODY if prefixed else _body(script, stop, dollar_end, std)
            pos = end = _string_end(script, stop + 1, body)
            if pos < 0:
                opened = stop - 1 if prefixed else stop
                break
            continue
        elif c == '"':  # the pattern matches every complete one
            opened = stop
            break
        elif c == "$":
            dollar_end = max(dollar_end, m.end("quote_end"))
            tag = _DOLLAR.match(script, stop)
            if tag is None or _continues_identifier(script, stop, dollar_end):
                pos = end = stop + 1
                continue
            close = script.find(tag.group(), tag.end())
            if close < 0:
                opened = stop
                break
            pos = end = dollar_end = close + tag.end() - stop
            continue
        elif c == "/":  # a comment with another inside, or that never closes
            pos = _block_comment_end(script, stop)
            if pos < 0:
                if not started:  # it is all the statement there is
                    start, started = stop, True
                opened = stop
                break
            continue
        elif c == "\\":
            backslashes.append(stop)
            pos = end = stop + 1
            continue
        elif c in "()":  # where the pattern cannot match the parentheses whole
            pos = end = stop + 1
            parens = parens + 1 if c == "(" else max(parens - 1, 0)
            # Inside parentheses BEGIN opens no body: lex as in a CREATE RULE.
            pattern = _pattern(_RULE if parens else kind, std)
            continue
        else:  # BEGIN, where the pattern cannot match a BEGIN ATOMIC body whole
            dollar_end = max(dollar_end, m.end("quote_end"))
            pos = end = stop + len("begin")
            after = _gap_end(script, pos)
            if not _starts_word(script, stop, dollar_end) or not _ATOMIC.match(script, after):
                continue
            bodies += 1
            pos = end = after + len("atomic")
        # A statement of a BEGIN ATOMIC body starts at pos: END there closes the body.
        after = _gap_end(script, pos)
        if _END.match(script, after):
            bodies -= 1
            pos = end = after + len("end")
            kind = _ROUTINE  # back in the CREATE FUNCTION of that body
        elif script[after : after + 1] in ("C", "c") and _kind(script, after) == _ROUTINE:
            kind = _ROUTINE
        else:
            kind = _RULE
        pattern = _pattern(kind, std)
    if started:
        starts.append(start)
        ends.append(n if opened >= 0 else end)
    return starts, ends, opened, backslashes


def _kind(script: str, i: int) -> int:
    """_ROUTINE if CREATE [OR REPLACE] FUNCTION or PROCEDURE starts at i, _RULE if
    CREATE [OR REPLACE] RULE does, else _PLAIN."""
    m = _KIND.match(script, i)
    if m is None:
        return _PLAIN
    word = m["kind"]
    if word is None:  # a comment with another inside: walk the words
        words: list[str] = []
        while len(words) < 4 and (w := _WORD.match(script, i)):
            words.append(w.group())
            i = _gap_end(script, w.end())
        if [w.lower() for w in words[1:3]] == ["or", "replace"]:
            del words[1:3]
        word = words[1] if len(words) > 1 else ""
    return _KINDS.get(word.lower(), _PLAIN)


def _gap_end(script: str, i: int) -> int:
    """Where the whitespace and comments from i end (the end of the script in a comment
    that never closes)."""
    while (m := _GAP_PIECE.match(script, i)) is not None:
        i = _block_comment_end(script, i) if m.group() == "/*" else m.end()
        if i < 0:
            return len(script)
    return i


def _starts_word(script: str, i: int, dollar_end: int) -> bool:
    """Whether a word starts at i rather than continuing an identifier (a$end, xe'...').

    After digits it continues (PostgreSQL 15 lexes 1e'...' as one bad number); after
    a '$' only if that '$' is in an identifier ($x'...' is '$' and a hex string).
    """
    if i == 0 or i == dollar_end or not _is_identifier_char(script[i - 1]):
        return True
    return script[i - 1] == "$" and not _continues_identifier(script, i - 1, dollar_end)


def _block_comment_end(script: str, i: int) -> int:
    """End of the (nesting) /* comment opening at i, or -1 if it never closes."""
    depth = 0
    for m in _COMMENT_MARK.finditer(script, i):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return -1


def _body(script: str, i: int, dollar_end: int, std: bool) -> re.Pattern[str]:
    """How the string whose quote is at i goes on, unless it is E'...': B'...' and
    X'...' take neither escapes nor '' (which ends them); U&'...' takes only '', as
    does any other string with standard_conforming_strings on; else both."""
    if script[i - 1 : i] in ("B", "b", "X", "x") and _starts_word(script, i - 1, dollar_end):
        return _BIT_BODY
    if std or (script[i - 2 : i] in ("U&", "u&") and _starts_word(script, i - 2, dollar_end)):
        return _STANDARD_BODY
    return _ESCAPE_BODY


def _string_end(script: str, i: int, body: re.Pattern[str]) -> int:
    """End of the string literal whose body starts at i, or -1 if it never closes."""
    while (m := body.match(script, i)) is not None:
        more = _CONTINUATION.match(script, m.end())
        if more is None:
            return m.end()
        i = more.end()
    return -1


def _continues_identifier(script: str, i: int, stop: int) -> bool:
    """Whether the '$' at i is part of an identifier (a$b$) rather than a dollar quote.

    It is when the run of identifier characters before it holds a letter; after
    a number or a parameter ($1$$) PostgreSQL starts a new token.
    """
    j = i
    while j > stop and j > 0 and _is_identifier_char(script[j - 1]):
        j -= 1
    return any(ch not in "0123456789$" for ch in script[j:i])


def _is_identifier_char(ch: str) -> bool:
    return (ch.isalnum() or ch in "_$") if ch.isascii() else True


# --- standard_conforming_strings ---------------------------------------------

_SCS = rf'(?:(?i:standard_conforming_strings)(?!{_ID_OR_DOLLAR})|"standard_conforming_strings")'
_SETTING = re.compile(
    rf"(?:(?i:set)(?!{_ID_OR_DOLLAR}){_GAP}*(?:(?i:session|local)(?!{_ID_OR_DOLLAR}){_GAP}*)?"
    rf"{_SCS}{_GAP}*(?:=|(?i:to)(?!{_ID_OR_DOLLAR})){_GAP}*"
    r"""(?P<value>(?:[Ee]|[Uu]&)?'(?:[^']|'')*'|(?:[Uu]&)?"(?:[^"]|"")*"|[A-Za-z0-9_]+"""
    rf"|\$(?P<tag>{_TAG})\$(?s:.*?)\$(?P=tag)\$)"
    rf"|(?i:reset)(?!{_ID_OR_DOLLAR}){_GAP}*(?:{_SCS}|(?i:all)(?!{_ID_OR_DOLLAR}))"
    rf"|(?i:discard)(?!{_ID_OR_DOLLAR}){_GAP}*(?i:all)(?!{_ID_OR_DOLLAR})"
    rf"){_GAP}*",
    re.ASCII,
)


def _setting_after(script: str, start: int, stop: int, std: bool, reset: bool) -> bool:
    """standard_conforming_strings once the statement in script[start:stop] has run.

    SET [SESSION | LOCAL] standard_conforming_strings {= | TO} value sets it; RESET
    (of it or ALL), DISCARD ALL and SET ... TO DEFAULT set it back to ``reset``. A
    value PostgreSQL refuses changes nothing: that statement fails.
    """
    if script[start] not in "SsRrDd":
        return std  # the quick answer for most statements
    m = _SETTING.fullmatch(script, start, stop)
    if m is None:
        return std
    value = m.group("value")
    if value is None or value.upper() == "DEFAULT":
        return reset
    if value[0] == "$":  # what is between the quotes
        value = value[len(m["tag"]) + 2 : -len(m["tag"]) - 2]
    elif value[-1] in "'\"":
        value = value[value.index(value[-1]) + 1 : -1]
    parsed = _parse_bool(value)
    return std if parsed is None else parsed


def _parse_bool(text: str) -> bool | None:
    """A boolean setting's value as PostgreSQL's parse_bool reads it: on, off, 1, 0, or
    true, false, yes, no or a prefix of them (of for off), in any case; else None."""
    word = text.lower() if text.isascii() else ""
    if word in ("on", "1"):
        return True
    if word in ("of", "off", "0"):
        return False
    for full, value in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word and full.startswith(word):
            return value
    return None


# --- statements ---------------------------------------------------------------


def split_statements(script: str, *, standard_conforming_strings: bool = True) -> list[Statement]:
    """Cut a script into its statements, in order, dropping empty ones.

    A ';' ends a statement unless it is inside a literal, a comment, parentheses
    or a BEGIN ATOMIC body. A last statement without ';' is kept. An unterminated
    literal or comment runs to the end of the script, so the server reports it.

    ``standard_conforming_strings`` is the server's setting when the script starts
    (psycopg tells it:
    ``conn.info.parameter_status("standard_conforming_strings") == "on"``); the
    script's own SET and RESET of it are followed from there.
    """
    return split_checked(script, standard_conforming_strings=standard_conforming_strings)[0]


def iter_statements(
    script: str, *, standard_conforming_strings: bool = True
) -> Iterator[Statement]:
    """``split_statements``, one statement at a time: a run sends a long script in
    batches, and holds only the batch in flight, not a copy of every statement."""
    starts, ends, _, _ = _lex(script, standard_conforming_strings)
    for start, end in zip(starts, ends, strict=True):
        yield Statement(script[start:end], start)


def split_checked(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[list[Statement], tuple[str, int] | None]:
    """``split_statements`` and ``unterminated`` from one pass over the script."""
    starts, ends, opened, _ = _lex(script, standard_conforming_strings)
    statements = [Statement(script[s:e], s) for s, e in zip(starts, ends, strict=True)]
    return statements, _opened(script, opened)


def control_candidates(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[list[Statement], tuple[str, int] | None]:
    """The statements that may be transaction control, and what ``unterminated`` says,
    from one pass over the script.

    Every statement for which ``transaction_control`` is not None is among them, and
    few others: validation lexes every script, but need not copy out every statement.
    """
    starts, ends, opened, _ = _lex(script, standard_conforming_strings)
    statements = [
        Statement(script[s:e], s)
        for s, e in zip(starts, ends, strict=True)
        if _may_be_control(script, s)
    ]
    return statements, _opened(script, opened)


def unterminated(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[str, int] | None:
    """What is left open at the end of the script and where it opened, if anything.

    Lets validation refuse such a script with a clear message before any of it runs.
    """
    return _opened(script, _lex(script, standard_conforming_strings)[2])


def _opened(script: str, start: int) -> tuple[str, int] | None:
    return None if start < 0 else (_describe(script, start), start)


def _describe(script: str, start: int) -> str:
    c = script[start]
    if c == "$":
        tag = _DOLLAR.match(script, start)
        return f"dollar-quoted string {tag.group() if tag else '$'}"
    return {
        "'": "quoted string",
        '"': "quoted identifier",
        "/": "block comment",
    }.get(c, "escape string")


_BACKSLASH_AFTER_BLANKS = re.compile(r"[ \t]*\\")
_META = re.compile(r"[\n\r][ \t]*\\")  # a line break is faster to find than a line start


def find_meta_commands(script: str, *, standard_conforming_strings: bool = True) -> list[int]:
    """Line numbers (1-based) of psql meta-commands such as ``\\i`` or ``\\set``.

    The server cannot run them, and silently skipping them would change what the
    migration does. Only lines whose first non-blank character is a backslash and
    that start outside any literal or comment count.
    """
    if "\\" not in script:
        return []
    first = _BACKSLASH_AFTER_BLANKS.match(script)
    candidates = [first.end() - 1] if first else []
    candidates += [m.end() - 1 for m in _META.finditer(script)]
    if not candidates:
        return []
    outside = set(_lex(script, standard_conforming_strings)[3])
    lines: list[int] = []
    line, prev = 1, 0
    for offset in candidates:
        line += _breaks(script, prev, offset)
        prev = offset
        if offset in outside:
            lines.append(line)
    return lines


_TRANSACTION_WORD = re.compile(rf"{_GAP}*([A-Za-z_]{_ID_OR_DOLLAR}*)")
# How a statement whose first word is BEGIN, END, ABORT, COMMIT, ROLLBACK, START or
# PREPARE can start: with that word's first two letters, or with blanks or a comment.
_CONTROL_PREFIXES = frozenset(("BE", "EN", "AB", "CO", "RO", "ST", "PR"))
_BLANK_OR_COMMENT = frozenset("-/" + _WS)


def _may_be_control(text: str, start: int) -> bool:
    """A quick no for most statements starting at ``start``: see transaction_control."""
    head = text[start : start + 2]
    return head[:1] in _BLANK_OR_COMMENT or head.upper() in _CONTROL_PREFIXES


_NOT_TWO_PHASE = re.compile(rf"{_GAP}*(?:\(|(?i:as)(?!{_ID_OR_DOLLAR}))")


def transaction_control(statement: Statement) -> str | None:
    """The command, in upper case, if the statement would end or restart our transaction.

    Savepoint commands (SAVEPOINT, RELEASE, ROLLBACK TO) are fine inside a
    transaction and return None, as does anything else.
    """
    if not _may_be_control(statement.sql, 0):
        return None  # the quick answer for most statements
    words: list[str] = []
    ends: list[int] = []
    while len(words) < 3 and (m := _TRANSACTION_WORD.match(statement.sql, ends[-1] if ends else 0)):
        words.append(m.group(1).upper())
        ends.append(m.end())
    first, rest = (words[0], words[1:]) if words else ("", [])
    if first == "BEGIN":
        return None if rest[:1] == ["ATOMIC"] else "BEGIN"
    if first in ("END", "ABORT"):
        return first
    if first in ("COMMIT", "ROLLBACK"):
        if rest[:1] == ["PREPARED"]:
            return f"{first} PREPARED"
        if first == "ROLLBACK" and "TO" in rest[:2]:
            return None  # ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name
        return first
    if first == "START" and rest[:1] == ["TRANSACTION"]:
        return "START TRANSACTION"
    # PREPARE transaction AS ... prepares a statement named "transaction".
    if (
        first == "PREPARE"
        and rest[:1] == ["TRANSACTION"]
        and not _NOT_TWO_PHASE.match(statement.sql, ends[1])
    ):
        return "PREPARE TRANSACTION"
    return None


_OPENERS = ("BEGIN", "START TRANSACTION")
_COMMITS = ("COMMIT", "END")


def transaction_wrapper(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[Statement, Statement] | None:
    """The first and last statements, when the first opens a transaction and the last
    commits it: a script written to run as one transaction on its own (``BEGIN; ...
    COMMIT;``). What lies between is not looked at: that is validation's business."""
    starts, ends, opened, _ = _lex(script, standard_conforming_strings)
    if opened >= 0 or len(starts) < 2:
        return None
    first = Statement(script[starts[0] : ends[0]], starts[0])
    last = Statement(script[starts[-1] : ends[-1]], starts[-1])
    if transaction_control(first) in _OPENERS and transaction_control(last) in _COMMITS:
        return first, last
    return None


# --- positions ----------------------------------------------------------------


def server_position_to_offset(position: int) -> int:
    """0-based offset in the query sent for PostgreSQL's 1-based error ``position``."""
    if position < 1:
        raise ValueError(f"server positions start at 1, got {position}")
    return position - 1


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of the character at ``offset``; ``len(text)`` is allowed.

    Lines end at '\\n', '\\r\\n' or a lone '\\r'; columns count characters.
    """
    if not 0 <= offset <= len(text):
        raise ValueError(f"offset {offset} is outside a text of length {len(text)}")
    stop = offset
    if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
        stop -= 1  # the '\n' of a '\r\n' still belongs to the line it ends
    line_start = max(text.rfind("\n", 0, stop), text.rfind("\r", 0, stop)) + 1
    return 1 + _breaks(text, 0, stop), offset - line_start + 1


def _breaks(text: str, start: int, stop: int) -> int:
    """Line breaks in text[start:stop], counting '\\r\\n' once."""
    crlf = text.count("\r\n", start, stop)
    return text.count("\n", start, stop) + text.count("\r", start, stop) - crlf


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def excerpt(text: str, line: int, column: int, *, context: int = 2, first_line: int = 1) -> str:
    """The lines around ``line`` with their numbers, and a caret under ``column``.

    ``text`` may be a section of a file that starts at its line ``first_line``;
    line numbers shown are the file's. Tabs before the column are copied onto the
    caret line so the caret stays aligned however tabs are displayed.
    """
    lines = _LINE_BREAK.split(text, maxsplit=line + context)
    if len(lines) > 1 and lines[-1] == "" and line < len(lines):
        lines.pop()  # the final line break ends the last line; no line follows it
    line = min(max(line, 1), len(lines))
    first = max(line - context, 1)
    last = min(line + context, len(lines))
    width = len(str(last + first_line - 1))
    out: list[str] = []
    for number in range(first, last + 1):
        content = lines[number - 1]
        out.append(f"  {number + first_line - 1:>{width}} |" + (f" {content}" if content else ""))
        if number == line:
            column = max(column, 1)
            pad = "".join("\t" if ch == "\t" else " " for ch in content[: column - 1])
            pad += " " * (column - 1 - len(content[: column - 1]))
            out.append(f"  {'':>{width}} | {pad}^")
    return "\n".join(out)

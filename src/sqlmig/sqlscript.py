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

The lexer jumps from one interesting character to the next with a compiled
regex, because a Python loop over every character is far too slow for a 50 MB
script.
"""

from __future__ import annotations

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
# takes milliseconds to compile, and there are a dozen of them.
_ID = r"[^\x00-/:-@\[-^`{-\x7f]"
_ID_OR_DOLLAR = r"[^\x00-#%-/:-@\[-^`{-\x7f]"
_TAG = r"(?:[^\x00-@\[-^`{-\x7f]" + _ID + "*)?"
# A comment or whitespace between two keywords. The line comment must end in a
# newline (or the keyword would be inside it), which also keeps the regex from
# backtracking exponentially over "-- -- --".
_GAP = f"(?:[{_WS}]|--[^\\n\\r]*[\\n\\r]|/\\*(?:[^*]|\\*(?!/))*\\*/)"


def _code(standard_strings: bool, nesting: bool) -> re.Pattern[str]:
    """What _tokens searches for: where literals and comments open, and ';'.

    Complete standard strings and quoted identifiers are matched whole, so an INSERT
    full of literals costs one match per literal. The (?!') makes the regex close a
    string exactly where PostgreSQL does, even when backtracking after an
    unterminated one. If the whole form fails, the lone quote matches instead: it
    opens an unterminated literal. A string with escapes is recognised from its
    quote (see _tokens): an alternative for E'...' here would halve the speed of
    every search. With ``standard_conforming_strings`` off, every string is.

    Only three statements can hold a ';' that ends nothing: CREATE RULE (between
    parentheses) and CREATE FUNCTION/PROCEDURE (in a BEGIN ATOMIC body). With
    ``nesting``, for them, we also find parentheses and BEGIN, as psql does;
    elsewhere a ';' between parentheses is a syntax error however we split, so we
    don't pay to track them. Keywords are ASCII: with re.ASCII, (?i:begin) matches
    no look-alike (U+0131 for i).
    """
    alternatives = [
        r'"[^"]*(?:""[^"]*)*"(?!")',
        r"""[;'"]""",
        r"--[^\n\r]*",
        r"/\*",
        rf"\${_TAG}\$",
    ]
    if standard_strings:
        alternatives.insert(0, r"'[^']*(?:''[^']*)*'(?!')")
    if nesting:
        alternatives += [r"[()]", rf"(?<!{_ID})(?i:begin)(?!{_ID_OR_DOLLAR})"]
    return re.compile("|".join(alternatives), re.ASCII)


_CODE = {(std, nesting): _code(std, nesting) for std in (True, False) for nesting in (True, False)}
_SIGNIFICANT = re.compile(f"[^{_WS}]")
_DOLLAR = re.compile(rf"\${_TAG}\$")
_COMMENT_MARK = re.compile(r"/\*|\*/")
_GAP_PIECE = re.compile(rf"[{_WS}]+|--[^\n\r]*|/\*")
_WORD = re.compile(rf"[^\x00-@\[-^`{{-\x7f]{_ID_OR_DOLLAR}*")
_ATOMIC_WORD = re.compile(f"(?i:atomic)(?!{_ID_OR_DOLLAR})", re.ASCII)
_END_WORD = re.compile(f"(?i:end)(?!{_ID_OR_DOLLAR})", re.ASCII)
# The body of a string after the opening quote, through the closing quote.
_STANDARD_BODY = re.compile(r"[^']*(?:''[^']*)*'(?!')")
_BIT_BODY = re.compile(r"[^']*'")
_ESCAPE_BODY = re.compile(r"[^'\\]*(?:(?:''|\\.)[^'\\]*)*'(?!')", re.DOTALL)
# A string continued on a later line ('a'<newline>'b') is one literal, and a
# string with escapes keeps them across the continuation.
_CONTINUATION = re.compile(r"[ \t\f\v]*(?:--[^\n\r]*)?[\n\r](?:[ \t\n\r\f\v]|--[^\n\r]*[\n\r])*'")

# Token kinds yielded by _tokens.
_START = 0  # first significant character of a statement (start == end)
_END = 1  # a ';' that ends a statement
_QUOTED = 2  # string, escape string, quoted identifier, dollar-quoted string
_COMMENT = 3
_UNTERMINATED = 4  # a literal or comment still open at the end of the script

# What the next significant character means to _tokens.
_ANYTHING = 0
_STATEMENT = 1  # it starts a statement
_ATOMIC = 2  # it follows BEGIN in CREATE FUNCTION: ATOMIC there opens a body
_BODY_STATEMENT = 3  # it starts a statement of a body: END there closes the body

# Statement kinds (_kind).
_OTHER = 0
_RULE = 1
_ROUTINE = 2


def _tokens(script: str, std: bool) -> Iterator[tuple[int, int, int]]:
    """Yield (kind, start, end) for every statement start, terminator, literal and comment.

    ``std`` is standard_conforming_strings at the start; statements that set it
    change it for the statements after them, and RESET brings back ``std``.
    Parentheses and BEGIN ATOMIC bodies are tracked here but not yielded. After an
    unterminated token nothing more is yielded: the rest of the script is in it.

    A BEGIN ATOMIC body is a list of statements, each ended by ';', then END. So END
    closes the body only where a statement of the body would start: not after CASE,
    nor as a column (t.end) or a label (AS end), which PostgreSQL's grammar sees the
    same way. (psql counts BEGIN, CASE and END at parenthesis depth 0 instead, and
    cuts ``SELECT t.end FROM t`` or ``SELECT 1 AS case`` in a body in the wrong place.)
    """
    n = len(script)
    reset = std
    pos = 0  # where the search resumes
    dollar_end = -1  # end of the last dollar-quoted string, whose '$' ends no identifier
    parens = 0
    bodies = 0  # BEGIN ATOMIC bodies open
    nesting = False  # in a statement where parentheses and BEGIN count
    routine = False  # in CREATE FUNCTION/PROCEDURE, where BEGIN ATOMIC opens a body
    expect = _STATEMENT
    start = 0  # first significant character of the statement
    while True:
        m = _CODE[std, nesting].search(script, pos)
        i = m.start() if m else n
        if expect != _ANYTHING:
            first = _SIGNIFICANT.search(script, pos, i)
            j = first.start() if first else i if m and script[i] not in "-/;" else -1
            if j >= 0:
                what, expect = expect, _ANYTHING
                if what == _STATEMENT:
                    start = j
                    yield _START, j, j
                    kind = _kind(script, j)
                    if kind != _OTHER:
                        nesting, routine, pos = True, kind == _ROUTINE, j
                        continue  # search again with the pattern that finds more
                elif what == _ATOMIC:
                    if _ATOMIC_WORD.match(script, j):
                        bodies += 1
                        expect, routine, pos = _BODY_STATEMENT, False, j + len("atomic")
                        continue
                elif _END_WORD.match(script, j):
                    bodies -= 1
                    routine, pos = True, j + len("end")  # back in the CREATE FUNCTION
                    continue
                else:
                    routine = _kind(script, j) == _ROUTINE
        if m is None:
            return
        c = script[i]
        end = m.end()
        if c == ";":
            if parens == 0 and bodies == 0:
                yield _END, i, end
                if expect != _STATEMENT:
                    std = _setting_after(script, start, i, std, reset)
                expect, nesting, routine = _STATEMENT, False, False
            elif parens == 0:
                expect, routine = _BODY_STATEMENT, False
        elif c == "'":
            prefixed = script[i - 1 : i] in ("E", "e") and _starts_word(script, i - 1, dollar_end)
            body = _ESCAPE_BODY if prefixed else None if std else _body(script, i, dollar_end)
            if body is not None:
                end = _string_end(script, i + 1, body)
            elif end - i == 1:
                end = -1
            opening = i - 1 if prefixed else i
            if end < 0:
                yield _UNTERMINATED, opening, n
                return
            yield _QUOTED, opening, end
        elif c == '"':
            if end - i == 1:
                yield _UNTERMINATED, i, n
                return
            yield _QUOTED, i, end
        elif c == "-":
            yield _COMMENT, i, end
        elif c == "/":
            end = _block_comment_end(script, i)
            if end < 0:
                if expect == _STATEMENT:
                    yield _START, i, i
                yield _UNTERMINATED, i, n
                return
            yield _COMMENT, i, end
        elif c == "$":
            if _continues_identifier(script, i, dollar_end):
                end = i + 1
            else:
                close = script.find(m.group(), end)
                if close < 0:
                    yield _UNTERMINATED, i, n
                    return
                end = dollar_end = close + end - i
                yield _QUOTED, i, end
        elif c == "(":
            parens += 1
        elif c == ")":
            parens = max(parens - 1, 0)
        elif routine and parens == 0 and _starts_word(script, i, dollar_end):  # BEGIN
            expect = _ATOMIC
        pos = end


def _kind(script: str, i: int) -> int:
    """_ROUTINE if CREATE [OR REPLACE] FUNCTION or PROCEDURE starts at i, _RULE if
    CREATE [OR REPLACE] RULE does, else _OTHER."""
    if script[i] not in "Cc":
        return _OTHER  # the quick answer for most statements
    words: list[str] = []
    while len(words) < 4 and i >= 0 and (m := _WORD.match(script, i)):
        words.append(m.group().lower())
        i = _gap_end(script, m.end())
    if words[1:3] == ["or", "replace"]:
        del words[1:3]
    if words[0] != "create" or len(words) < 2:
        return _OTHER
    return {"function": _ROUTINE, "procedure": _ROUTINE, "rule": _RULE}.get(words[1], _OTHER)


def _gap_end(script: str, i: int) -> int:
    """Where the whitespace and comments from i end, or -1 in a comment that never closes."""
    while (m := _GAP_PIECE.match(script, i)) is not None:
        i = _block_comment_end(script, i) if m.group() == "/*" else m.end()
        if i < 0:
            break
    return i


def _starts_word(script: str, i: int, dollar_end: int) -> bool:
    """Whether a word starts at i rather than continuing an identifier (a$end, xe'...')."""
    return i == 0 or i == dollar_end or not _is_identifier_char(script[i - 1])


def _block_comment_end(script: str, i: int) -> int:
    """End of the (nesting) /* comment opening at i, or -1 if it never closes."""
    depth = 0
    for m in _COMMENT_MARK.finditer(script, i):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return -1


def _body(script: str, i: int, dollar_end: int) -> re.Pattern[str]:
    """How the string whose quote is at i goes on, with standard_conforming_strings off:
    B'...' and X'...' never take escapes, nor '' (which ends them), U&'...' takes '';
    any other string takes both."""
    if script[i - 1 : i] in ("B", "b", "X", "x") and _starts_word(script, i - 1, dollar_end):
        return _BIT_BODY
    if script[i - 2 : i] in ("U&", "u&") and _starts_word(script, i - 2, dollar_end):
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
    r"""(?P<value>[Ee]?'(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z0-9_]+"""
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

    ``standard_conforming_strings`` is the server's setting when the script starts (psycopg
    tells it: ``conn.info.parameter_status("standard_conforming_strings") == "on"``); the
    script's own SET and RESET of it are followed from there.
    """
    return split_checked(script, standard_conforming_strings=standard_conforming_strings)[0]


def split_checked(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[list[Statement], tuple[str, int] | None]:
    """``split_statements`` and ``unterminated`` from one pass over the script."""
    return _split(script, standard_conforming_strings, only_control=False)


def control_candidates(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[list[Statement], tuple[str, int] | None]:
    """The statements that may be transaction control, and what ``unterminated`` says,
    from one pass over the script.

    Every statement for which ``transaction_control`` is not None is among them, and
    few others: validation lexes every script, but need not copy out every statement.
    """
    return _split(script, standard_conforming_strings, only_control=True)


def _split(
    script: str, std: bool, *, only_control: bool
) -> tuple[list[Statement], tuple[str, int] | None]:
    statements: list[Statement] = []
    opened = -1  # where an unterminated literal or comment starts, if any
    keeping = False  # inside a statement that is to be returned
    start = 0  # first significant character of the current statement
    end = 0  # end of its last significant character seen so far
    pos = 0  # end of the previous token
    for kind, s, e in _tokens(script, std):
        if kind == _UNTERMINATED:
            opened = s
        if kind == _START:
            start = end = s
            keeping = not only_control or _may_be_control(script, s)
        elif keeping:
            # A literal ends where it ends; before a comment or ';', the code since
            # the previous token may hold the last significant character.
            significant = kind in (_QUOTED, _UNTERMINATED)
            end = e if significant else max(end, _text_end(script, pos, s))
            if kind == _END:
                statements.append(Statement(script[start:end], start))
                keeping = False
        elif kind == _END:
            keeping = False
        pos = e
    if keeping:
        end = max(end, _text_end(script, pos, len(script)))
        statements.append(Statement(script[start:end], start))
    return statements, (None if opened < 0 else (_describe(script, opened), opened))


def count_statements(script: str, *, standard_conforming_strings: bool = True) -> int:
    """``len(split_statements(script))`` without copying a statement out."""
    return sum(1 for kind, _, _ in _tokens(script, standard_conforming_strings) if kind == _START)


def statement_groups(
    script: str, size: int, *, standard_conforming_strings: bool = True
) -> Iterator[tuple[int, int]]:
    """``(start, end)`` spans that cover the script in order, cut only where a statement
    starts, each at least ``size`` characters long (the last holds what is left).

    Every span holds at least one statement, and the spans joined are the script:
    sent one after the other, they run exactly what the whole script would.
    """
    start = 0
    seen = False
    for kind, s, _ in _tokens(script, standard_conforming_strings):
        if kind == _START:
            if seen and s - start >= size:
                yield start, s
                start = s
            seen = True
    yield start, len(script)


def _text_end(script: str, start: int, stop: int) -> int:
    """End of the last non-blank character in script[start:stop], or -1 if none."""
    stripped = len(script[start:stop].rstrip(_WS))
    return start + stripped if stripped else -1


def unterminated(
    script: str, *, standard_conforming_strings: bool = True
) -> tuple[str, int] | None:
    """What is left open at the end of the script and where it opened, if anything.

    Lets validation refuse such a script with a clear message before any of it runs.
    """
    for kind, start, _ in _tokens(script, standard_conforming_strings):
        if kind == _UNTERMINATED:
            return _describe(script, start), start
    return None


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
    hidden: set[int] = set()
    k = 0
    for kind, start, end in _tokens(script, standard_conforming_strings):
        if kind in (_QUOTED, _COMMENT, _UNTERMINATED):
            while k < len(candidates) and candidates[k] < start:
                k += 1
            while k < len(candidates) and candidates[k] < end:
                hidden.add(candidates[k])
                k += 1
    lines: list[int] = []
    line, prev = 1, 0
    for offset in candidates:
        line += _breaks(script, prev, offset)
        prev = offset
        if offset not in hidden:
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

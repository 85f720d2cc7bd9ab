"""A slow, plain reference for sqlmig.sqlscript's lexer: PostgreSQL's lexing rules
(src/backend/parser/scan.l, and psql's psqlscan.l for where a statement ends)
followed one character at a time, then statements cut from the tokens.

It shares no code and no regex with the lexer it checks, so that the tests compare
two readings of PostgreSQL's rules rather than one with itself.
"""

from __future__ import annotations

from dataclasses import dataclass

WS = " \t\n\r\f\v"


def is_letter(ch: str) -> bool:
    """PostgreSQL's ident_start: ASCII letters, '_', and every byte >= 0x80."""
    return ch == "_" or ("a" <= ch.lower() <= "z") or not ch.isascii()


def is_ident(ch: str) -> bool:
    """PostgreSQL's ident_cont: ident_start, digits and '$'."""
    return is_letter(ch) or (ch.isdigit() and ch.isascii()) or ch == "$"


@dataclass
class Token:
    kind: str  # space, comment, word, number, string, ident, dollar, char, open
    start: int
    end: int
    text: str


def tokens(script: str, std: bool) -> list[Token]:
    """The script's tokens. A literal or comment that never closes is an "open" token
    that runs to the end."""
    out: list[Token] = []
    n = len(script)
    i = 0

    def add(kind: str, end: int) -> None:
        out.append(Token(kind, i, end, script[i:end]))

    while i < n:
        c = script[i]
        rest = script[i : i + 3]
        if c in WS:
            j = i
            while j < n and script[j] in WS:
                j += 1
            add("space", j)
        elif rest.startswith("--"):
            j = i
            while j < n and script[j] not in "\n\r":
                j += 1
            add("comment", j)
        elif rest.startswith("/*"):
            j, depth = i + 2, 1
            while j < n and depth:
                if script.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif script.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                add("open", n)
                return out
            add("comment", j)
        elif c == "'" or (c in "EeBbXxNn" and rest[1:2] == "'") or rest.lower() == "u&'":
            prefix = rest[: rest.index("'")].lower()
            # E'' has escapes, as has '' (and N'') when standard_conforming_strings is
            # off; B'' and X'' have neither escapes nor '' (which ends them).
            escapes = prefix == "e" or (prefix in ("", "n") and not std)
            doubles = prefix not in ("b", "x")
            j = string_end(script, i + len(prefix) + 1, escapes, doubles)
            if j < 0:
                add("open", n)
                return out
            add("string", j)
        elif c == '"' or rest.lower() == 'u&"':
            j = script.index('"', i) + 1
            while (k := script.find('"', j)) >= 0 and script[k + 1 : k + 2] == '"':
                j = k + 2  # a doubled quote
            if k < 0:
                add("open", n)
                return out
            add("ident", k + 1)
        elif c == "$":
            j = i + 1
            if j < n and is_letter(script[j]):
                while j < n and is_ident(script[j]) and script[j] != "$":
                    j += 1
            if j < n and script[j] == "$":  # $tag$ or $$
                delimiter = script[i : j + 1]
                k = script.find(delimiter, j + 1)
                if k < 0:
                    add("open", n)
                    return out
                add("dollar", k + len(delimiter))
            else:  # $1, or a lone '$'
                j = i + 1
                while j < n and script[j].isdigit() and script[j].isascii():
                    j += 1
                if j > i + 1 and j < n and is_letter(script[j]):  # $1x: "trailing junk"
                    while j < n and is_ident(script[j]):
                        j += 1
                add("char", j)
        elif is_letter(c):
            j = i
            while j < n and is_ident(script[j]):
                j += 1
            add("word", j)
        elif c.isdigit() and c.isascii():
            j = i
            while j < n and script[j].isdigit() and script[j].isascii():
                j += 1
            if j < n and is_letter(script[j]):  # 1e'...': "trailing junk" since PG 15
                while j < n and is_ident(script[j]):
                    j += 1
            add("number", j)
        else:
            add("char", i + 1)
        i = out[-1].end
    return out


def string_end(script: str, i: int, escapes: bool, doubles: bool) -> int:
    """End of the string whose body starts at i (after its quote), or -1; a string
    continued on a later line goes on the same way."""
    n = len(script)
    while i < n:
        c = script[i]
        if c == "\\" and escapes:
            i += 2
        elif c != "'":
            i += 1
        elif doubles and script[i + 1 : i + 2] == "'":
            i += 2
        else:
            after = continuation(script, i + 1)
            if after < 0:
                return i + 1
            i = after
    return -1


def continuation(script: str, j: int) -> int:
    """If the string that closed before j goes on ('a'<newline>'b'), where its body
    goes on; else -1. Between the two: blanks and a comment, a line break, and then
    blanks and comments that end their line."""
    n = len(script)
    while j < n and script[j] in " \t\f\v":
        j += 1
    if script.startswith("--", j):
        while j < n and script[j] not in "\n\r":
            j += 1
    if j >= n or script[j] not in "\n\r":
        return -1
    j += 1
    while j < n:
        if script[j] in WS:
            j += 1
        elif script.startswith("--", j):
            while j < n and script[j] not in "\n\r":
                j += 1
            if j >= n:
                return -1
        else:
            break
    return j + 1 if script[j : j + 1] == "'" else -1


@dataclass
class Lexed:
    statements: list[tuple[int, int]]  # the significant text of each
    opened: int | None  # where a literal or comment that never closes opens
    backslashes: list[int]  # outside every literal and comment


def lex(script: str, std: bool = True) -> Lexed:
    """Cut the script into statements as the server, given them one by one, would see
    them; follow SET and RESET of standard_conforming_strings on the way."""
    reset = std
    statements: list[tuple[int, int]] = []
    backslashes: list[int] = []
    pos = 0
    while True:
        toks = [t for t in tokens(script[pos:], std) if t.kind not in ("space", "comment")]
        for t in toks:
            t.start, t.end = t.start + pos, t.end + pos
        k = 0
        while k < len(toks) and toks[k].text == ";":
            k += 1
        if k == len(toks):
            return Lexed(statements, None, backslashes)
        end = Statement(toks, k).end  # index of its ';', or len(toks)
        body = toks[k:end]
        backslashes += [t.start for t in body if t.text == "\\"]
        statements.append((body[0].start, body[-1].end))
        last = body[-1]
        if last.kind == "open":  # sqlmig names where it opens by its quote, or by E in E'...'
            opened = last.start + len(last.text) - len(last.text.lstrip("BbXxNnUu&"))
            return Lexed(statements, opened, backslashes)
        if end == len(toks):
            return Lexed(statements, None, backslashes)
        std = setting_after(body, std, reset)
        # The next statement is lexed with the setting this one left.
        pos = toks[end].end


class Statement:
    """Where a statement that starts at toks[k] ends: its ';' at parenthesis depth 0
    and outside any BEGIN ATOMIC body (only CREATE FUNCTION, PROCEDURE and RULE have
    parentheses or bodies that count)."""

    def __init__(self, toks: list[Token], k: int) -> None:
        self.toks = toks
        self.end = self.statement(k, top=True)

    def word(self, k: int) -> str:
        t = self.toks[k] if k < len(self.toks) else None
        return t.text.lower() if t is not None and t.kind == "word" and t.text.isascii() else ""

    def kind(self, k: int) -> str:
        words = [self.word(k + d) for d in range(4)]
        if words[1:3] == ["or", "replace"]:
            del words[1:3]
        if words[0] != "create":
            return "plain"
        return {"function": "routine", "procedure": "routine", "rule": "rule"}.get(
            words[1], "plain"
        )

    def statement(self, k: int, top: bool) -> int:
        """Index of the ';' that ends the statement starting at k (or len(toks))."""
        kind = self.kind(k)
        if kind == "plain" and top:
            while k < len(self.toks) and self.toks[k].text != ";":
                k += 1
            return k
        depth = 0
        while k < len(self.toks):
            text = self.toks[k].text
            if text == ";" and depth == 0:
                return k
            if text == "(":
                depth += 1
            elif text == ")":
                depth = max(depth - 1, 0)
            elif (
                kind == "routine"
                and depth == 0
                and self.word(k) == "begin"
                and self.word(k + 1) == "atomic"
            ):
                k = self.body(k + 2)
                continue
            k += 1
        return k

    def body(self, k: int) -> int:
        """Index just after the END of the BEGIN ATOMIC body whose statements start at k."""
        while k < len(self.toks):
            if self.word(k) == "end":
                return k + 1
            k = self.statement(k, top=False) + 1
        return min(k, len(self.toks))


def setting_after(statement: list[Token], std: bool, reset: bool) -> bool:
    """standard_conforming_strings after a statement made of these tokens: SET
    [SESSION | LOCAL] standard_conforming_strings {= | TO} value, RESET of it or of
    ALL, DISCARD ALL. A value PostgreSQL refuses changes nothing."""
    toks = list(statement)
    words = [t.text.lower() if t.kind == "word" else t.text for t in toks]
    if words[:1] == ["set"] and words[1:2] in (["session"], ["local"]):
        del toks[1], words[1]
    name = ("standard_conforming_strings", '"standard_conforming_strings"')
    if words in (["reset", name[0]], ["reset", name[1]], ["reset", "all"], ["discard", "all"]):
        return reset
    if len(words) != 4 or words[0] != "set" or words[1] not in name or words[2] not in ("=", "to"):
        return std
    value = toks[3]
    text = value.text
    if value.kind == "word" and text.lower() == "default":
        return reset
    if value.kind == "dollar":
        text = text[text.index("$", 1) + 1 : text.rindex("$", 0, -1)]
    elif value.kind == "ident" or (value.kind == "string" and text[0] in "'Ee" + "Uu"):
        text = text[text.index(text[-1]) + 1 : -1]
    elif value.kind not in ("word", "number"):
        return std  # B'...', X'...' and N'...' are not strings to the grammar
    text = text.lower()
    truths = ["on", "1", *("true"[:k] for k in range(1, 5)), *("yes"[:k] for k in range(1, 4))]
    if text in truths:
        return True
    falsehoods = ["of", "off", "0", *("false"[:k] for k in range(1, 6)), "n", "no"]
    return False if text in falsehoods else std

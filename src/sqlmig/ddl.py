"""What a statement does to tables, read from its words: for checks made before it runs.

Two readers need this, and neither needs a full parser:

- validation refuses, before anything runs, a statement that PostgreSQL would refuse
  inside the transaction sqlmig wraps a migration in (``CREATE INDEX CONCURRENTLY``,
  ``VACUUM``...), naming the directive that fixes it;
- the lint (``sqlmig.lint``) asks which existing tables a statement locks, with which
  lock, so that a finding can say how big they are and what the lock blocks.

Statements come from ``sqlmig.sqlscript``; here each is cut into words by a small
tokenizer that skips comments and keeps quoted identifiers and string literals whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlmig.sqlscript import Statement, line_col, split_statements

# --- words ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """A word (``kind`` "word", ``text`` upper-cased), a quoted identifier ("ident",
    ``text`` unquoted), a string literal ("string", its value) or one punctuation
    character ("punct"); ``raw`` is the text as written, ``start`` its offset."""

    kind: str
    text: str
    raw: str
    start: int


_TOKEN = re.compile(
    r"""
    (?P<blank>\s+)
    | (?P<line>--[^\n\r]*)
    | (?P<block>/\*)
    | (?P<ident>"(?:[^"]|"")*")
    | (?P<escaped>[Ee]'(?:[^'\\]|''|\\.)*')
    | (?P<string>[BbXxNn]?'(?:[^']|'')*')
    | (?P<dollar>\$(?:[A-Za-z_\x80-\U0010ffff][\w\x80-\U0010ffff]*)?\$)
    | (?P<word>[A-Za-z_\x80-\U0010ffff][\w$\x80-\U0010ffff]*)
    | (?P<number>\d[\w.]*)
    | (?P<punct>.)
    """,
    re.X | re.S,
)


def tokens(sql: str) -> Iterator[Token]:
    """The statement's tokens, comments and dollar-quoted bodies left out."""
    i = 0
    while i < len(sql):
        m = _TOKEN.match(sql, i)
        if m is None:  # an unterminated literal: validation reports those
            return
        kind = m.lastgroup
        raw = m.group()
        i = m.end()
        if kind == "block":
            i = _block_end(sql, m.start())
        elif kind == "dollar":
            close = sql.find(raw, i)
            i = len(sql) if close < 0 else close + len(raw)
        elif kind == "ident":
            yield Token("ident", raw[1:-1].replace('""', '"'), raw, m.start())
        elif kind == "escaped":
            yield Token("string", _unescape(raw[2:-1]), raw, m.start())
        elif kind == "string":
            body = raw[raw.index("'") + 1 : -1]
            yield Token("string", body.replace("''", "'"), raw, m.start())
        elif kind == "word":
            yield Token("word", raw.upper(), raw, m.start())
        elif kind == "punct" or kind == "number":
            yield Token("punct" if kind == "punct" else "number", raw, raw, m.start())


def _block_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        two = sql[i : i + 2]
        if two == "/*":
            depth, i = depth + 1, i + 2
        elif two == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _unescape(body: str) -> str:
    """Enough of E'...' to compare values: quotes and the common escapes."""
    out = body.replace("''", "'")
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), out)


def _words(toks: Sequence[Token]) -> list[str]:
    return [t.text if t.kind == "word" else "" for t in toks]


# --- names ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    """A table or index name as written (``sql``, for the server to resolve) and as
    PostgreSQL folds it (``parts``: unquoted words in lower case)."""

    sql: str
    parts: tuple[str, ...]

    @property
    def relation(self) -> str:
        return self.parts[-1]

    def same(self, other: Name) -> bool:
        """The same relation, as far as the text tells: a schema given on one side only
        is taken to be the search path's."""
        if len(self.parts) > 1 and len(other.parts) > 1:
            return self.parts == other.parts
        return self.relation == other.relation


def _name_at(toks: Sequence[Token], i: int) -> tuple[Name | None, int]:
    """The (possibly qualified) name starting at token ``i``, and the index after it."""
    parts: list[str] = []
    raws: list[str] = []
    while i < len(toks) and toks[i].kind in ("word", "ident"):
        t = toks[i]
        parts.append(t.raw.lower() if t.kind == "word" else t.text)
        raws.append(t.raw)
        if i + 1 < len(toks) and toks[i + 1].raw == ".":
            i += 2
            continue
        i += 1
        break
    if not parts:
        return None, i
    return Name(".".join(raws), tuple(parts)), i


def _skip(words: Sequence[str], i: int, *phrases: tuple[str, ...]) -> int:
    """Step over any of the optional phrases (IF EXISTS, ONLY...) found at ``i``."""
    moved = True
    while moved:
        moved = False
        for phrase in phrases:
            if tuple(words[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                moved = True
    return i


# --- statements that cannot run in a transaction ------------------------------------

# A quick look before lexing: a script without any of these words has none of them.
_MAYBE_OUTSIDE = re.compile(
    r"concurrently|vacuum|database|tablespace|system|value|cluster|subscription|discard|reindex",
    re.I,
)


@dataclass(frozen=True)
class Refusal:
    """A statement PostgreSQL refuses in a transaction block: ``offset`` in the script,
    and why (``message``), with what to do."""

    offset: int
    message: str


_DIRECTIVE = "add `-- sqlmig:no-transaction` to the leading comments of the file"


def outside_transaction(
    script: str, *, first_line: int = 1, standard_conforming_strings: bool = True
) -> list[Refusal]:
    """Statements of a transactional script that would fail inside its transaction.

    Each is named as PostgreSQL names it, with the fix. ``ALTER TYPE ... ADD VALUE`` is
    fine in a transaction; only a use of the new value later in the same transaction
    fails (PostgreSQL: "unsafe use of new value"), and that use is what is reported.
    ``first_line``: the file's line where the script starts, for the lines named.
    """
    if not _MAYBE_OUTSIDE.search(script):
        return []
    found: list[Refusal] = []
    added: list[tuple[str, int]] = []  # enum values added so far, with their line offsets
    statements = split_statements(script, standard_conforming_strings=standard_conforming_strings)
    for statement in statements:
        toks = list(tokens(statement.sql))
        words = _words(toks)
        what = _refused_in_transaction(toks, words)
        if what is not None:
            found.append(
                Refusal(
                    statement.start,
                    f"{what} cannot run inside a transaction, and sqlmig runs this file in "
                    f"one: {_DIRECTIVE} (its statements then run one by one, each on its own)",
                )
            )
            continue
        if words[:2] == ["ALTER", "TYPE"]:
            value = _added_value(toks, words)
            if value is not None:
                added.append((value, statement.start))
            continue
        use = _first_use(toks, added)
        if use is not None:
            adding, token = use
            line = first_line + line_col(script, adding)[0] - 1
            found.append(
                Refusal(
                    statement.start + token.start,
                    f"the enum value {token.raw} is used in the transaction that adds it "
                    f"(ALTER TYPE ... ADD VALUE at line {line}); PostgreSQL refuses "
                    "that until the ALTER TYPE commits: move this statement to a later "
                    f"migration, or {_DIRECTIVE}",
                )
            )
    return found


def _refused_in_transaction(toks: Sequence[Token], words: Sequence[str]) -> str | None:
    first = words[:1]
    if first == ["VACUUM"]:
        return "VACUUM"
    if first == ["DISCARD"] and words[1:2] == ["ALL"]:
        return "DISCARD ALL"
    if first == ["CREATE"] or first == ["DROP"]:
        i = 2 if words[1:2] == ["UNIQUE"] else 1
        if words[i : i + 1] == ["INDEX"] and words[i + 1 : i + 2] == ["CONCURRENTLY"]:
            return f"{words[0]} INDEX CONCURRENTLY"
        if words[1:2] in (["DATABASE"], ["TABLESPACE"]):
            return f"{words[0]} {words[1]}"
    if first == ["CREATE"] and words[1:2] == ["SUBSCRIPTION"]:
        # Its replication slot is made unless create_slot (or connect) is false.
        options = _with_options(toks, words)
        if options.get("CREATE_SLOT") not in _FALSE and options.get("CONNECT") not in _FALSE:
            return "CREATE SUBSCRIPTION (with its replication slot)"
    if first == ["ALTER"]:
        if words[1:2] == ["SYSTEM"]:
            return "ALTER SYSTEM"
        if words[1:2] == ["DATABASE"] and "SET" in words and "TABLESPACE" in words:
            return "ALTER DATABASE ... SET TABLESPACE"
        detach = words[1:2] == ["TABLE"] and _has(words, "DETACH", "PARTITION")
        if detach and words[-1:] == ["CONCURRENTLY"]:
            return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
        if words[1:2] == ["SUBSCRIPTION"]:
            if _has(words, "REFRESH", "PUBLICATION"):
                return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"
            changes = any(_has(words, w, "PUBLICATION") for w in ("SET", "ADD", "DROP"))
            if changes and _with_options(toks, words).get("REFRESH") not in _FALSE:
                return "ALTER SUBSCRIPTION ... PUBLICATION (with refresh)"
    if first == ["REINDEX"]:
        return _reindex(toks, words)
    if first == ["CLUSTER"] and not any(t.kind in ("word", "ident") for t in _after_options(toks)):
        return "CLUSTER without a table (every table)"
    return None


_FALSE = {"FALSE", "OFF", "0", "NO"}


def _has(words: Sequence[str], *phrase: str) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def _with_options(toks: Sequence[Token], words: Sequence[str]) -> dict[str, str]:
    """``WITH (a = x, b)`` at the end of a statement, names and values upper-cased."""
    if "WITH" not in words:
        return {}
    start = len(words) - 1 - words[::-1].index("WITH")
    return _option_list(toks[start + 1 :])


def _option_list(toks: Sequence[Token]) -> dict[str, str]:
    """``(a = x, b, c true)``: each option's value, "TRUE" when it has none."""
    options: dict[str, str] = {}
    if not toks or toks[0].raw != "(":
        return options
    name: str | None = None
    value: list[str] = []
    for t in toks[1:]:
        if t.raw in (",", ")"):
            if name is not None:
                options[name] = " ".join(value) or "TRUE"
            name, value = None, []
            if t.raw == ")":
                break
        elif t.raw == "=":
            continue
        elif name is None:
            name = t.text.upper()
        else:
            value.append(t.text.upper())
    return options


def _after_options(toks: Sequence[Token]) -> list[Token]:
    """The tokens after a command's first word and its ``(options)`` or VERBOSE."""
    rest = list(toks[1:])
    if rest and rest[0].raw == "(":
        close = next((i for i, t in enumerate(rest) if t.raw == ")"), len(rest) - 1)
        rest = rest[close + 1 :]
    while rest and rest[0].kind == "word" and rest[0].text == "VERBOSE":
        rest = rest[1:]
    return [t for t in rest if t.raw != ";"]


def _reindex(toks: Sequence[Token], words: Sequence[str]) -> str | None:
    rest = list(toks[1:])
    concurrently = False
    if rest and rest[0].raw == "(":
        close = next((i for i, t in enumerate(rest) if t.raw == ")"), len(rest) - 1)
        concurrently = _option_list(rest[: close + 1]).get("CONCURRENTLY", "FALSE") not in _FALSE
        rest = rest[close + 1 :]
    kinds = _words(rest)
    kind = kinds[0] if kinds else ""
    if kinds[1:2] == ["CONCURRENTLY"]:
        concurrently = True
    if kind in ("SCHEMA", "DATABASE", "SYSTEM"):
        return f"REINDEX {kind}"
    return "REINDEX ... CONCURRENTLY" if concurrently else None


def _added_value(toks: Sequence[Token], words: Sequence[str]) -> str | None:
    """The value of ``ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'value'``."""
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["ADD", "VALUE"]:
            j = _skip(words, i + 2, ("IF", "NOT", "EXISTS"))
            if j < len(toks) and toks[j].kind == "string":
                return toks[j].text
    return None


def _first_use(toks: Sequence[Token], added: Sequence[tuple[str, int]]) -> tuple[int, Token] | None:
    """The first string literal equal to a value added earlier in the transaction."""
    if not added:
        return None
    values = {value: offset for value, offset in added}
    for t in toks:
        if t.kind == "string" and t.text in values:
            return values[t.text], t
    return None


# --- which tables a statement locks ----------------------------------------------------


# What each table lock mode keeps other sessions from doing while it is held (or
# waited for: a waiting lock queues everything that conflicts with it).
BLOCKS = {
    "ACCESS EXCLUSIVE": "reads and writes",
    "EXCLUSIVE": "writes",
    "SHARE ROW EXCLUSIVE": "writes",
    "SHARE": "writes",
    "SHARE UPDATE EXCLUSIVE": "neither reads nor writes (only schema changes and VACUUM)",
    "ROW EXCLUSIVE": "neither reads nor writes (only schema changes and writers of the same rows)",
}

_WEAK_ALTERS = {  # ALTER TABLE actions that take less than ACCESS EXCLUSIVE
    "VALIDATE": "SHARE UPDATE EXCLUSIVE",
    "ATTACH": "SHARE UPDATE EXCLUSIVE",
    "CLUSTER": "SHARE UPDATE EXCLUSIVE",
}


@dataclass(frozen=True)
class Lock:
    """A lock the statement takes on an existing relation. ``index``: the name is an
    index, and the lock is on its table (which only the database knows)."""

    name: Name
    mode: str
    index: bool = False

    @property
    def blocks(self) -> str:
        return BLOCKS.get(self.mode, "reads and writes")


@dataclass(frozen=True)
class Effect:
    """What a statement does to tables: the locks it takes on existing ones, and the
    table it creates (None if it creates none)."""

    locks: tuple[Lock, ...] = ()
    creates: Name | None = None


def effect(sql: str) -> Effect:
    """The tables a statement locks, and with which lock, as far as its words tell."""
    toks = [t for t in tokens(sql) if t.raw != ";"]
    words = _words(toks)
    if not words:
        return Effect()
    head = words[0]
    if head == "CREATE":
        return _create(toks, words)
    if head == "ALTER" and words[1:2] == ["TABLE"]:
        return _alter_table(toks, words)
    if head in ("DROP", "TRUNCATE"):
        return _drop(toks, words)
    if head in ("REINDEX", "VACUUM", "CLUSTER", "LOCK"):
        return _maintenance(toks, words)
    if head in ("UPDATE", "DELETE", "INSERT"):
        i = _skip(words, 1, ("FROM",), ("INTO",), ("ONLY",))
        name, _ = _name_at(toks, i)
        return Effect((Lock(name, "ROW EXCLUSIVE"),)) if name else Effect()
    return Effect()


def _create(toks: Sequence[Token], words: Sequence[str]) -> Effect:
    i = _skip(words, 1, ("OR", "REPLACE"), ("UNIQUE",), ("TEMPORARY",), ("TEMP",))
    i = _skip(words, i, ("UNLOGGED",), ("CONSTRAINT",))
    kind = words[i] if i < len(words) else ""
    if kind == "TABLE":
        j = _skip(words, i + 1, ("IF", "NOT", "EXISTS"))
        created, _ = _name_at(toks, j)
        return Effect(creates=created)
    if kind == "INDEX":
        concurrently = words[i + 1 : i + 2] == ["CONCURRENTLY"]
        on = words.index("ON", i) if "ON" in words[i:] else -1
        if on < 0:
            return Effect()
        name, _ = _name_at(toks, _skip(words, on + 1, ("ONLY",)))
        mode = "SHARE UPDATE EXCLUSIVE" if concurrently else "SHARE"
        return Effect((Lock(name, mode),)) if name else Effect()
    if kind == "TRIGGER" and "ON" in words[i:]:
        name, _ = _name_at(toks, words.index("ON", i) + 1)
        return Effect((Lock(name, "SHARE ROW EXCLUSIVE"),)) if name else Effect()
    return Effect()


def _alter_table(toks: Sequence[Token], words: Sequence[str]) -> Effect:
    i = _skip(words, 2, ("IF", "EXISTS"), ("ONLY",))
    table, i = _name_at(toks, i)
    if table is None:
        return Effect()
    modes: list[str] = []
    referenced: list[Name] = []
    for action in _actions(toks, words, i):
        action_words = _words(action)
        first = action_words[0] if action_words else ""
        if first in _WEAK_ALTERS:
            modes.append(_WEAK_ALTERS[first])
        elif first == "SET" and action and len(action) > 1 and action[1].raw == "(":
            modes.append("SHARE UPDATE EXCLUSIVE")  # storage parameters, mostly
        elif first == "DETACH" and action_words[-1:] == ["CONCURRENTLY"]:
            modes.append("SHARE UPDATE EXCLUSIVE")
        elif first == "ADD" and "FOREIGN" in action_words and "COLUMN" not in action_words:
            modes.append("SHARE ROW EXCLUSIVE")
        elif first == "ALTER" and _has(action_words, "SET", "STATISTICS"):
            modes.append("SHARE UPDATE EXCLUSIVE")
        else:
            modes.append("ACCESS EXCLUSIVE")
        if "REFERENCES" in action_words:
            name, _ = _name_at(action, action_words.index("REFERENCES") + 1)
            if name is not None:
                referenced.append(name)
    mode = max(modes or ["ACCESS EXCLUSIVE"], key=_strength)
    locks = [Lock(table, mode), *(Lock(r, "SHARE ROW EXCLUSIVE") for r in referenced)]
    return Effect(tuple(locks))


def _actions(toks: Sequence[Token], words: Sequence[str], i: int) -> list[list[Token]]:
    """An ALTER TABLE's actions: its tokens after the name, cut at top-level commas."""
    actions: list[list[Token]] = [[]]
    depth = 0
    for t in toks[i:]:
        if t.raw == "(":
            depth += 1
        elif t.raw == ")":
            depth -= 1
        elif t.raw == "," and depth == 0:
            actions.append([])
            continue
        actions[-1].append(t)
    return [a for a in actions if a]


_ORDER = [
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]


def _strength(mode: str) -> int:
    return _ORDER.index(mode) if mode in _ORDER else len(_ORDER)


def _drop(toks: Sequence[Token], words: Sequence[str]) -> Effect:
    if words[0] == "TRUNCATE":
        i, index = _skip(words, 1, ("TABLE",), ("ONLY",)), False
        mode = "ACCESS EXCLUSIVE"
    elif words[1:2] == ["TABLE"]:
        i, index = _skip(words, 2, ("IF", "EXISTS")), False
        mode = "ACCESS EXCLUSIVE"
    elif words[1:2] == ["INDEX"]:
        concurrently = words[2:3] == ["CONCURRENTLY"]
        i, index = _skip(words, 3 if concurrently else 2, ("IF", "EXISTS")), True
        mode = "SHARE UPDATE EXCLUSIVE" if concurrently else "ACCESS EXCLUSIVE"
    else:
        return Effect()
    locks: list[Lock] = []
    while i < len(toks):
        name, i = _name_at(toks, i)
        if name is None:
            break
        locks.append(Lock(name, mode, index))
        if i < len(toks) and toks[i].raw == ",":
            i += 1
        else:
            break
    return Effect(tuple(locks))


def _maintenance(toks: Sequence[Token], words: Sequence[str]) -> Effect:
    head = words[0]
    rest = _after_options(toks)
    rest_words = _words(rest)
    if head == "REINDEX":
        concurrently = "CONCURRENTLY" in words
        kind = rest_words[0] if rest_words else ""
        if kind not in ("TABLE", "INDEX"):
            return Effect()
        j = _skip(rest_words, 1, ("CONCURRENTLY",))
        name, _ = _name_at(rest, j)
        mode = "SHARE UPDATE EXCLUSIVE" if concurrently else "SHARE"
        return Effect((Lock(name, mode, kind == "INDEX"),)) if name else Effect()
    if head == "LOCK":
        j = _skip(rest_words, 0, ("TABLE",), ("ONLY",))
        name, j = _name_at(rest, j)
        mode = " ".join(w for w in rest_words[j:] if w not in ("IN", "MODE", "NOWAIT"))
        return Effect((Lock(name, mode or "ACCESS EXCLUSIVE"),)) if name else Effect()
    full = head == "CLUSTER" or "FULL" in words[:4]
    rest = [t for t in rest if not (t.kind == "word" and t.text in ("FULL", "ANALYZE"))]
    name, _ = _name_at(rest, 0)
    mode = "ACCESS EXCLUSIVE" if full else "SHARE UPDATE EXCLUSIVE"
    return Effect((Lock(name, mode),)) if name else Effect()


def statement_at(statements: Sequence[Statement], offset: int) -> Statement | None:
    """The statement that contains ``offset``, else the last one starting before it."""
    chosen = None
    for statement in statements:
        if statement.start > offset:
            break
        chosen = statement
    return chosen

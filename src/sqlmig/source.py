"""How a migrations directory becomes an ordered list of checked, immutable migrations.

Everything is read and checked before anything runs, and every problem in the
directory is reported at once, so an operator fixes them in one pass. Directories
written for golang-migrate (up/down file pairs), dbmate and goose (one file with up
and down sections) work unchanged: names are read by each tool's own rule, markers
where each tool looks for them, and a script's own BEGIN ... COMMIT is recognised.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Literal

from sqlmig.errors import FileProblem, MigrationFileError, UsageError
from sqlmig.sqlscript import (
    Statement,
    find_meta_commands,
    line_col,
    split_statements,
    transaction_wrapper,
)

CHECKSUM_ALGORITHM = "sha256"

_BOM = b"\xef\xbb\xbf"
_MAX_VERSION = 2**63 - 1  # what a bigint column (and goose's int64) can hold
_HASH_CHUNK = 1 << 20
_READ_CHUNK = 1 << 20

# A name starts with its version; what follows is a label, shown as written.
_VERSION = re.compile(r"[0-9]+")
# golang-migrate's rule for what follows the version in the pair form: "_<label>.up.<ext>"
# or ".down.<ext>", the label as long as it can be (so "1_a.up.b.up.sql" is an up script).
_PAIR = re.compile(r"_(.*)\.(up|down)\.(.*)", re.S)
# A name that ends like an up or down script without following that rule.
_PAIR_LIKE = re.compile(r"\.(up|down)\.sql\Z", re.I)
_NO_VERSION = (
    "looks like a migration (ends in .sql) but its name does not start with a version "
    "(digits): migrations are named <version>_<name>.up.sql and .down.sql "
    "(golang-migrate) or <version><name>.sql (dbmate, goose); rename it, "
    "or move it out of the migrations directory"
)

# Blank lines and comments before the first statement: where directives live, and
# all that an "empty" script contains.
# A lone CR ends a line comment too, as in PostgreSQL's lexer (old Mac line endings).
_LEADING = re.compile(r"(?:[ \t\n\r\f\v]+|--[^\n\r]*|/\*.*?\*/)*", re.S)
_DIRECTIVE = re.compile(r"(?:^|(?<=\r))[ \t]*--[ \t]*sqlmig:(\S*)", re.M)
# dbmate's "-- migrate:up [options]" and goose's "-- +goose <annotation>" lines, where
# the tools read them: at the very start of a line, dbmate's in lower case, goose's
# annotation in any case. A line break is ten times faster to search for than a line start.
_MARKER = rb"--[ \t]*(migrate:|\+goose)([^\r\n]*)"
_FIRST_MARKER = re.compile(_MARKER)
_NEXT_MARKER = re.compile(b"\n" + _MARKER)
_GOOSE_ANNOTATIONS = frozenset(
    ("up", "down", "statementbegin", "statementend", "no transaction", "envsub on", "envsub off")
)
# What a reader takes for a section marker but neither tool reads as one: an indented
# line, or dbmate's in another case. Inside a statement it is text; between statements
# it would silently move the SQL after it into the section before.
_NEAR = r"[ \t]*--[ \t]*(?:(?i:migrate):|\+(?i:goose)[ \t]*)(?i:up|down)(?![^ \t\r\n])"
_FIRST_NEAR = re.compile(_NEAR)
_NEXT_NEAR = re.compile("\n" + _NEAR)
# A down marker at the start of a line, in a file named as golang-migrate's up script.
_DOWN = r"--[ \t]*(?:migrate:down(?![^ \t\r\n])|\+goose[ \t]*(?i:down)[ \t]*(?![^\r\n]))"
_FIRST_DOWN = re.compile(_DOWN)
_NEXT_DOWN = re.compile("\n" + _DOWN)

# psql meta-commands, and the quoted text (comments, strings, identifiers,
# dollar-quoted bodies) in which a line-leading backslash is not one.


@dataclass(frozen=True, slots=True)
class Wrapper:
    """A transactional script's own BEGIN and COMMIT around all of it (golang-migrate
    sends a file as written, so its users wrap files themselves). sqlmig's transaction
    takes their place: they are not sent, and the file's checksum stays as it is."""

    begin: Statement
    end: Statement

    @property
    def offsets(self) -> tuple[int, int]:
        """Where the two statements start in the script: the ones to leave out."""
        return self.begin.start, self.end.start


@dataclass(frozen=True, slots=True)
class Script:
    """One direction of a migration: the SQL to send, and where it came from."""

    sql: str
    path: Path
    first_line: int
    transactional: bool
    wrapper: Wrapper | None = None

    @property
    def empty(self) -> bool:
        """Only comments (a placeholder that keeps the numbering): runs nothing, and is
        recorded like any migration."""
        return _is_empty(self.sql)

    def line_of(self, offset: int) -> int:
        """The file's line number of an offset in ``sql``."""
        return self.first_line + line_col(self.sql, offset)[0] - 1


@dataclass(frozen=True, slots=True)
class Migration:
    """A migration as read from disk; the checksum detects edits after it was applied."""

    version: str
    name: str
    up: Script
    down: Script | None
    checksum: str

    @property
    def number(self) -> int:
        """The ordering key: versions compare by value, so 0002 and 2 are the same."""
        return int(self.version)

    @property
    def filename(self) -> str:
        return self.up.path.name

    @property
    def notes(self) -> tuple[str, ...]:
        """What sqlmig makes of the files that a reader might not expect, for ``status``
        and ``validate``: a recognised transaction wrapper, a script with no SQL."""
        found = []
        for direction, script in (("up", self.up), ("down", self.down)):
            if script is None:
                continue
            if script.wrapper is not None:
                begin, end = script.wrapper.begin, script.wrapper.end
                found.append(
                    f"{direction}: its own {begin.sql} ... {end.sql} (lines "
                    f"{script.line_of(begin.start)}-{script.line_of(end.start)}) is "
                    "recognised: the statements between run as sqlmig's one transaction, "
                    "with the tracking row"
                )
            if script.empty and script.sql.strip():
                found.append(f"{direction}: no SQL, only comments: runs nothing and is recorded")
        return tuple(found)


@dataclass(frozen=True, slots=True)
class ParsedName:
    """What a migration file's name says: its version, name and role."""

    version: str
    name: str
    kind: Literal["up", "down", "single"]

    @property
    def number(self) -> int:
        return int(self.version)


def checksum(sql: str) -> str:
    """``sha256:<hex>`` of a script, blind to a BOM and to CRLF or CR line endings.

    A Windows checkout must not look like an edited migration.
    """
    return _digest(sql.lstrip("\ufeff").encode("utf-8"))


def label_of(filename: str) -> str:
    """The name shown for a migration file, as written after its version; for a row
    whose file is gone, from the file name it recorded."""
    parsed = _classify(filename)
    return parsed.name if isinstance(parsed, ParsedName) else filename


def parse_filename(name: str) -> ParsedName | None:
    """The parts of a migration file name; None for a file that is not a migration.

    Raises MigrationFileError for a ``.sql`` file whose name does not parse: silently
    skipping what was meant to be a migration would be worse.
    """
    parsed = _classify(name)
    if isinstance(parsed, str):
        raise MigrationFileError([FileProblem(name, parsed)])
    return parsed


def load_migrations(directory: str | os.PathLike[str]) -> list[Migration]:
    """Every migration in ``directory``, ordered by version number.

    Raises UsageError when the directory itself cannot be listed, and one
    MigrationFileError listing every problem in its files.
    """
    scan = scan_directory(directory)
    if scan.problems:
        raise MigrationFileError(sort_problems(scan.problems))
    return scan.migrations


@dataclass(frozen=True, slots=True)
class DirectoryScan:
    """Everything read from a migrations directory, its problems included.

    ``scripts`` holds every script that could be read, also those of migrations
    refused for another problem (a duplicate version, a bad down file), so that a
    check of their SQL can report all problems in one pass.
    """

    migrations: list[Migration]  # the valid ones, ordered by version number
    scripts: list[Script]
    problems: list[FileProblem]


def scan_directory(directory: str | os.PathLike[str]) -> DirectoryScan:
    """Read and check every file in ``directory``, collecting problems instead of raising.

    Raises UsageError only when the directory itself cannot be listed.
    """
    with _collector_paused():
        return _scan(os.fspath(directory))


def sort_problems(problems: list[FileProblem]) -> list[FileProblem]:
    """By file, then line: the order an operator fixes them in."""
    return sorted(problems, key=lambda p: (p.path, p.line or 0))


def _scan(root: str) -> DirectoryScan:
    entries = _list_directory(root)
    root_real = os.path.realpath(root)
    problems: list[FileProblem] = []
    scripts: list[Script] = []
    versions: dict[int, list[tuple[ParsedName, os.DirEntry[str]]]] = {}
    for entry in entries:
        parsed = _classify(entry.name)
        if parsed is None or _is_directory(entry):
            continue
        if isinstance(parsed, str):
            problems.append(_problem(entry.path, parsed))
        else:
            versions.setdefault(parsed.number, []).append((parsed, entry))

    migrations = []
    for number, files in versions.items():
        migration = _load_version(number, files, root_real, problems, scripts)
        if migration is not None:
            migrations.append(migration)
    migrations.sort(key=lambda m: m.number)
    return DirectoryScan(migrations, scripts, problems)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Loading keeps all it builds and builds no cycles, so the cyclic collector would
    only rescan an ever larger heap: a fifth of the time on 100,000 files."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- the directory and file names -----------------------------------------


def _list_directory(root: str) -> list[os.DirEntry[str]]:
    where = f"migrations directory {root}"
    try:
        with os.scandir(root) as it:
            return list(it)
    except FileNotFoundError:
        raise UsageError(
            f"{where} does not exist; create it or pass directory=DIR", options=("directory",)
        ) from None
    except NotADirectoryError:
        raise UsageError(
            f"{where} is not a directory; pass the directory that holds the .sql files as "
            "directory=DIR",
            options=("directory",),
        ) from None
    except OSError as e:
        raise UsageError(f"cannot read {where}: {_reason(e)}") from None


def _classify(name: str) -> ParsedName | str | None:
    """The parsed name, a problem for a look-alike, or None for a file to ignore.

    The pair form follows golang-migrate (``<digits>_<label>.up.sql``), the single
    form dbmate (``<digits><label>.sql``, which also holds goose's
    ``<digits>_<label>.sql``). A name that one tool would read as a pair and another
    as a single file is refused rather than guessed.
    """
    # ".SQL" counts too: a migration ignored because of its case would be a silent trap.
    if name.startswith(".") or name[-4:].lower() != ".sql":
        return None
    found = _VERSION.match(name)
    if found is None:
        return _NO_VERSION
    version = found[0]
    digits = version.lstrip("0")
    if len(digits) > 19 or (digits and int(digits) > _MAX_VERSION):
        return f"version {version} is too large; versions must be at most {_MAX_VERSION}"
    rest = name[len(version) :]
    pair = _PAIR.fullmatch(rest)
    if pair is not None:
        label, direction, extension = pair[1], pair[2], pair[3]
        if extension.lower() == "sql":
            return ParsedName(version, label, "up" if direction == "up" else "down")
        return (
            f"is ambiguous: golang-migrate reads it as the {direction} script of version "
            f"{version} (extension .{extension}), dbmate and goose as a single-file "
            f"migration; rename it {version}_{label}.{direction}.sql for the first, or "
            f"take .{direction} out of its name for the second"
        )
    like = _PAIR_LIKE.search(rest)
    if like is not None:
        direction = like[1].lower()
        label = _label(rest[: like.start()]) or "<name>"
        return (
            f"is ambiguous: it ends like a golang-migrate {direction} script, but "
            f"golang-migrate skips it (its rule is <version>_<name>.{direction}.sql, with _ "
            f"after the version and .{direction} in lower case) while dbmate would run it "
            f"as a single-file migration; rename it {version}_{label}.{direction}.sql "
            f"or {version}_{label}.sql"
        )
    if not name.endswith(".sql"):
        return (
            f"ends in {name[-4:]}, not .sql: dbmate and goose skip such a file, so sqlmig "
            f"does not guess; rename it {name[:-4]}.sql"
        )
    return ParsedName(version, _label(rest[:-4]), "single")


def _label(rest: str) -> str:
    """What follows the version, without the one separator dbmate allows there."""
    return rest[1:] if rest[:1] in ("_", "-") else rest


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False  # reading it will say why


def _problem(path: str, text: str, line: int | None = None) -> FileProblem:
    return FileProblem(_printable(path), _printable(text), line)


def _printable(text: str) -> str:
    """File names need not be UTF-8; a message about one must still print."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


# --- one version: its files, read and checked -------------------------------


def _load_version(
    number: int,
    files: list[tuple[ParsedName, os.DirEntry[str]]],
    root_real: str,
    problems: list[FileProblem],
    scripts: list[Script],
) -> Migration | None:
    """The migration for one version number, or None after recording why not.

    Every script read is added to ``scripts``, whether or not the migration is valid.
    """
    before = len(problems)
    if len(files) > 1 or files[0][0].kind == "down":
        _check_files_agree(number, files, problems)
    up: Script | None = None
    down: Script | None = None
    digest = ""
    for parsed, entry in files:  # every file is read, so that all its problems are reported
        read = _read(entry, root_real, problems)
        if read is None:
            continue
        data, bom = read
        if parsed.kind == "single":
            sections = _single_file(entry.path, data, bom, problems)
            if sections is not None:
                up, down, digest = sections
                scripts.extend(script for script in (up, down) if script is not None)
        elif parsed.kind == "up":
            up = _pair_file(entry.path, data, bom, problems, is_up=True)
            digest = _digest(data)
            if up is not None:
                scripts.append(up)
        else:
            down = _pair_file(entry.path, data, bom, problems, is_up=False)
            if down is not None:
                scripts.append(down)

    if len(problems) > before or up is None:
        return None
    first = next(parsed for parsed, _ in files if parsed.kind != "down")
    return Migration(first.version, first.name, up, down, digest)


def _check_files_agree(
    number: int, files: list[tuple[ParsedName, os.DirEntry[str]]], problems: list[FileProblem]
) -> None:
    """One migration per version, and every down script next to its up script.

    As in golang-migrate, a down script belongs to the up script of its version,
    whatever the labels say.
    """
    files.sort(key=lambda file: file[1].name)
    ups = [entry for parsed, entry in files if parsed.kind != "down"]
    downs = [(parsed, entry) for parsed, entry in files if parsed.kind == "down"]
    if len(ups) > 1:
        names = ", ".join(entry.name for entry in ups)
        if {parsed.kind for parsed, _ in files} >= {"up", "single"}:
            text = f"version {number} has both a single-file migration and an up/down pair"
            text += f" ({names}); keep one form"
        else:
            text = f"version {number} is used by more than one migration ({names});"
            text += " give each migration its own version"
        problems.append(_problem(ups[0].path, text))
    if len(downs) > 1:
        names = ", ".join(entry.name for _, entry in downs)
        text = f"version {number} has more than one down script ({names}); keep one"
        problems.append(_problem(downs[0][1].path, text))
    paired = any(parsed.kind == "up" for parsed, _ in files)
    for parsed, entry in downs:
        if not paired:
            expected = f"{parsed.version}_{parsed.name}.up.sql"
            text = f"down script without its up script {expected}; "
            problems.append(_problem(entry.path, text + "add the up script or delete this file"))


def _read(
    entry: os.DirEntry[str], root_real: str, problems: list[FileProblem]
) -> tuple[bytes, int] | None:
    """The file's bytes without a BOM, and the BOM's length (for byte offsets)."""
    target = ""
    try:
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if os.path.commonpath([root_real, target]) != root_real:
                text = f"is a symlink to {target}, outside the migrations directory; "
                text += "sqlmig does not follow links out of it (copy the file in instead)"
                problems.append(_problem(entry.path, text))
                return None
        if not entry.is_file():
            os.stat(entry.path)  # raises the reason for a dangling link or a loop
            text = "is not a regular file (a FIFO, socket or device)"
            problems.append(_problem(entry.path, text))
            return None
        data = _read_all(entry.path)
    except OSError as e:
        link = f" (it is a symlink to {_link_target(entry.path)})" if target else ""
        problems.append(_problem(entry.path, f"cannot be read: {_reason(e)}{link}"))
        return None
    # Every leading BOM goes (an editor may add one to a file that has one): the
    # server would choke on the rest, and checksum() of the text drops them too.
    bom = 0
    while data.startswith(_BOM, bom):
        bom += len(_BOM)
    return (data[bom:], bom) if bom else (data, 0)


def _read_all(path: str) -> bytes:
    """The file's bytes: one read sized by fstat, then the read that finds the end.

    Plain descriptors, not a file object: with thousands of small files the object's
    set-up cost as much as the reading.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, os.fstat(fd).st_size + 1)
        while more := os.read(fd, _READ_CHUNK):  # it grew, or a read came up short
            data += more
        return data
    finally:
        os.close(fd)


def _link_target(path: str) -> str:
    """Where a link points, as written: the resolved path of a loop says nothing."""
    try:
        return os.readlink(path)
    except OSError:
        return os.path.realpath(path)


def _decode(
    path: str, data: bytes, start: int, end: int, bom: int, problems: list[FileProblem]
) -> str | None:
    try:
        text = str(memoryview(data)[start:end], "utf-8")
    except UnicodeDecodeError as e:
        bad = start + e.start
        text = f"is not valid UTF-8 (byte 0x{data[bad]:02x} at byte offset {bad + bom}); "
        if bom == 0 and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            text += "it starts with a UTF-16 byte order mark; "
        text += "save the file as UTF-8"
        problems.append(_problem(path, text, data.count(b"\n", 0, bad) + 1))
        return None
    # PostgreSQL takes a query as a C string: it would end at the NUL, silently
    # dropping the rest of the script, or fail with a misleading syntax error.
    nul = data.find(b"\0", start, end)
    if nul >= 0:
        message = f"contains a NUL byte (at byte offset {nul + bom}), which PostgreSQL "
        message += "cannot receive in SQL text; remove it"
        problems.append(_problem(path, message, data.count(b"\n", 0, nul) + 1))
        return None
    return text


def _pair_file(
    path: str, data: bytes, bom: int, problems: list[FileProblem], *, is_up: bool
) -> Script | None:
    sql = _decode(path, data, 0, len(data), bom, problems)
    if sql is None:
        return None
    script = _script(path, sql, 1, True, problems)
    if is_up:
        if _is_blank(sql):
            text = "the up script is empty (0 bytes or only blank lines); write its SQL, or a "
            text += "comment saying why it has none (it is then recorded without running anything)"
            problems.append(_problem(path, text))
        elif len(sql) < _TEMPLATE_MAX and sql.replace("\r\n", "\n") == _template(path):
            text = "the up script is still what `sqlmig new` wrote; write its SQL, or replace "
            text += "the comment with one saying why it has none"
            problems.append(_problem(path, text))
        _down_markers(path, sql, problems)
    return script


def _is_blank(sql: str) -> bool:
    """Nothing but whitespace (or nothing): looked at without copying a large script."""
    return not sql or sql.isspace()


_TEMPLATE_MAX = 256  # longer than any up script `sqlmig new` writes


def _template(path: str) -> str:
    """The up script ``sqlmig new`` writes (see sqlmig.scaffold), to tell it from a
    comment someone wrote: recorded unedited, a forgotten migration would never run."""
    parsed = _classify(os.path.basename(path))
    return f"-- {parsed.name}: up\n\n" if isinstance(parsed, ParsedName) else ""


def _down_markers(path: str, sql: str, problems: list[FileProblem]) -> None:
    """A dbmate or goose down marker in golang-migrate's up script: that tool would run
    the file whole, down section included."""
    if "migrate:down" not in sql and "+goose" not in sql:
        return
    stem = os.path.basename(path)[: -len(".up.sql")]
    for offset in _between_statements(sql, _line_starts(sql, _FIRST_DOWN, _NEXT_DOWN)):
        text = "has a down marker, but its name makes it golang-migrate's up script, which "
        text += "runs whole: its down section would run too; rename it "
        text += f"{stem}.sql to make it a single-file migration"
        problems.append(_problem(path, text, line_col(sql, offset)[0]))


def _line_starts(text: str, first: re.Pattern[str], following: re.Pattern[str]) -> list[int]:
    """Offsets of the lines that ``first`` matches at the start of ``text`` and
    ``following`` (which starts with the line break) matches after a line break."""
    found = [0] if first.match(text) else []
    return found + [m.start() + 1 for m in following.finditer(text)]


def _between_statements(sql: str, offsets: list[int]) -> list[int]:
    """Those of ``offsets`` that no statement covers: comments between statements, not
    text inside a string, a body or a statement."""
    if not offsets:
        return []
    spans = [(s.start, s.end) for s in split_statements(sql)]
    return [o for o in offsets if not any(start <= o < end for start, end in spans)]


# --- dbmate and goose files ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Marker:
    """A dbmate or goose line that starts the up or down section."""

    up: bool
    line: int
    start: int  # offset of the marker line
    end: int  # offset just after it: where the section starts
    transactional: bool


def _single_file(
    path: str, data: bytes, bom: int, problems: list[FileProblem]
) -> tuple[Script, Script | None, str] | None:
    """The up section, the down section and the up checksum of a dbmate or goose file."""
    markers, file_transactional = _markers(path, data, problems)
    structure = _structure_problems(path, markers)
    if structure:
        problems.extend(structure)
        return None
    up_marker = next(m for m in markers if m.up)
    down_marker = next((m for m in markers if not m.up), None)
    bounds = [0, up_marker.start, up_marker.end, len(data)]
    if down_marker is not None:
        bounds[3:3] = [down_marker.start, down_marker.end]
    texts = []
    for start, end in pairwise(bounds):  # decoding every part validates the whole file
        text = _decode(path, data, start, end, bom, problems)
        if text is None:
            return None
        texts.append(text)

    prefix = texts[0]
    prefix_end = _leading_end(prefix)
    if prefix_end < len(prefix):
        text = f"SQL before the up marker (line {up_marker.line}) belongs to no section; "
        line = prefix.count("\n", 0, prefix_end) + 1
        problems.append(_problem(path, text + "move it below the marker", line))
        return None
    if _no_transaction(path, prefix, 1, problems):
        file_transactional = False

    up_transactional = file_transactional and up_marker.transactional
    up = _script(path, texts[2], up_marker.line + 1, up_transactional, problems)
    if _is_blank(up.sql):
        text = "the up section is empty (only blank lines); write its SQL, or a comment "
        text += "saying why it has none (it is then recorded without running anything)"
        problems.append(_problem(path, text, up_marker.line))
    _near_markers(up, "up", problems)
    down = None
    if down_marker is not None:
        down_transactional = file_transactional and down_marker.transactional
        down = _script(path, texts[4], down_marker.line + 1, down_transactional, problems)
        _near_markers(down, "down", problems)
    return up, down, _digest(data, up_marker.end, bounds[3])


def _near_markers(script: Script, section: str, problems: list[FileProblem]) -> None:
    """Lines between statements that look like section markers but are not, as
    dbmate and goose read them: the SQL after one would silently stay in this section."""
    starts = _line_starts(script.sql, _FIRST_NEAR, _NEXT_NEAR)
    for offset in _between_statements(script.sql, starts):
        line = script.line_of(offset)
        text = "looks like a section marker but dbmate and goose do not read it as one (they "
        text += "read '-- migrate:up', '-- migrate:down' and '-- +goose Up', '-- +goose Down' "
        text += "at the very start of a line, dbmate's in lower case): it is a comment, and "
        text += f"the SQL after it stays in the {section} section; write the marker at the "
        text += "start of the line, or reword the comment"
        problems.append(_problem(str(script.path), text, line))


def _markers(path: str, data: bytes, problems: list[FileProblem]) -> tuple[list[_Marker], bool]:
    """The section markers, and False if goose's NO TRANSACTION covers the whole file."""
    markers: list[_Marker] = []
    file_transactional = True
    line, counted = 1, 0
    first = _FIRST_MARKER.match(data)
    for match in chain([first] if first else [], _NEXT_MARKER.finditer(data)):
        start = match.start() if match is first else match.start() + 1
        line += data.count(b"\n", counted, start)
        counted = start
        words = match[2].decode("utf-8", "replace").split()
        transactional = True
        if match[1] == b"migrate:":
            if not words or match[2][:1].isspace() or words[0] not in ("up", "down"):
                continue  # a comment that happens to start with "migrate:"
            transactional = _dbmate_options(path, words[1:], line, problems)
            up = words[0] == "up"
        else:
            command = " ".join(words).lower()
            if command not in _GOOSE_ANNOTATIONS:
                written = data[start : match.end()].decode("utf-8", "replace").strip()
                text = f"unknown goose annotation {written!r}: goose refuses the file; it knows "
                text += "Up, Down, StatementBegin, StatementEnd, NO TRANSACTION and ENVSUB ON/OFF"
                problems.append(_problem(path, text, line))
                continue
            if command == "no transaction":
                file_transactional = False
            elif command == "envsub on":
                text = "uses goose's ENVSUB, which sqlmig does not support (it sends the SQL "
                text += "as written); replace the ${...} variables with their values"
                problems.append(_problem(path, text, line))
            if command not in ("up", "down"):
                continue  # StatementBegin and StatementEnd stay in the SQL as comments
            up = command == "up"
        end = data.find(b"\n", match.end())
        end = len(data) if end < 0 else end + 1
        markers.append(_Marker(up, line, start, end, transactional))
    return markers, file_transactional


def _structure_problems(path: str, markers: list[_Marker]) -> list[FileProblem]:
    """Why the markers do not make one up section optionally followed by one down."""
    ups = [m for m in markers if m.up]
    downs = [m for m in markers if not m.up]
    found = []
    if not ups:
        stem = os.path.basename(path).removesuffix(".sql")
        text = "has no up section: a single-file migration needs a '-- migrate:up' (dbmate) "
        text += f"or '-- +goose Up' (goose) line before its SQL (or rename it {stem}.up.sql)"
        found.append(_problem(path, text))
    for same in (ups, downs):
        if len(same) > 1:
            which = "up" if same[0].up else "down"
            text = f"has a second {which} marker (the first is at line {same[0].line}); "
            text += f"a migration has one {which} section"
            found.append(_problem(path, text, same[1].line))
    if ups and downs and downs[0].start < ups[0].start:
        text = f"the down marker comes before the up marker (line {ups[0].line}); "
        found.append(_problem(path, text + "put the up section first", downs[0].line))
    return found


def _dbmate_options(path: str, options: list[str], line: int, problems: list[FileProblem]) -> bool:
    """Whether the section runs in a transaction; unknown options are problems, not ignored."""
    transactional = True
    for option in options:
        if option in ("transaction:false", "transaction:true"):
            transactional = option == "transaction:true"
        else:
            text = f"unknown option {option!r} on the migrate marker; "
            problems.append(_problem(path, text + "the only option is transaction:false", line))
    return transactional


# --- inside one script -----------------------------------------------------


def _script(
    path: str, sql: str, first_line: int, transactional: bool, problems: list[FileProblem]
) -> Script:
    if _no_transaction(path, sql, first_line, problems):
        transactional = False
    wrapper = None
    if transactional and _OPENING.match(sql, _leading_end(sql)):
        found = transaction_wrapper(sql)
        wrapper = Wrapper(*found) if found is not None else None
    for line in find_meta_commands(sql):
        command = _line(sql, line).split()[0]
        text = f"psql meta-command {command[:20]} cannot run: sqlmig sends the script to "
        text += "the server, which does not know psql's backslash commands; write it as SQL"
        problems.append(_problem(path, text, first_line + line - 1))
    return Script(sql, Path(path), first_line, transactional, wrapper)


def _line(text: str, number: int) -> str:
    """Line ``number`` (1-based) of ``text``; only used to quote a problem."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[number - 1]


def _leading_end(text: str) -> int:
    match = _LEADING.match(text)
    return match.end() if match else 0


def _is_empty(sql: str) -> bool:
    return _leading_end(sql) == len(sql)


# Where a script may open its own transaction: only then is it lexed while loading.
_OPENING = re.compile(r"(?i:begin|start)(?![A-Za-z0-9_$])")


def _no_transaction(path: str, text: str, first_line: int, problems: list[FileProblem]) -> bool:
    """Whether the leading comments say ``-- sqlmig:no-transaction``.

    A misspelt or misplaced directive is a problem: ignoring it would run the script
    in a transaction its author meant to avoid.
    """
    if "sqlmig:" not in text:
        return False
    leading_end = _leading_end(text)
    found = False
    for match in _DIRECTIVE.finditer(text):
        line = first_line + line_col(text, match.start())[0] - 1
        if match[1] != "no-transaction":
            message = f"unknown directive 'sqlmig:{match[1]}'; "
            message += "the only one is 'sqlmig:no-transaction'"
            problems.append(_problem(path, message, line))
        elif match.start() >= leading_end:
            message = "'-- sqlmig:no-transaction' after the first statement has no effect; "
            message += "move it to the comments at the top of the script"
            problems.append(_problem(path, message, line))
        else:
            found = True
    return found


# --- checksums -------------------------------------------------------------


def _digest(data: bytes, start: int = 0, end: int | None = None) -> str:
    """Checksum of ``data[start:end]`` with line endings normalised, in bounded memory."""
    end = len(data) if end is None else end
    sha = hashlib.sha256()
    if data.find(b"\r", start, end) < 0:
        sha.update(memoryview(data)[start:end])
    else:
        while start < end:
            stop = min(start + _HASH_CHUNK, end)
            while stop < end and data[stop - 1] == 0x0D:  # never split a CR LF pair
                stop += 1
            sha.update(data[start:stop].replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
            start = stop
    return f"{CHECKSUM_ALGORITHM}:{sha.hexdigest()}"

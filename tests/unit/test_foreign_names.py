"""File names as golang-migrate, dbmate and goose read them, against sqlmig's reading.

Each tool's rule is written here from its documentation, as a small model:

- golang-migrate: ``^([0-9]+)_(.*)\\.(down|up)\\.(.*)$``, the version parsed as an
  unsigned 64-bit integer; files that do not match are skipped.
- dbmate: ``^(\\d+).*\\.sql$`` (ASCII digits); the version is those digits, as text.
- goose: the extension (from the last dot) is ``.sql``; the version is what precedes
  the first ``_``, parsed as a signed 64-bit integer (a sign is allowed), and must be
  at least 1.

The property: every ``.sql`` name a tool accepts parses here to the same version, or
is refused with a reason that says why (a version PostgreSQL's bigint cannot hold, a
name that does not start with digits, a name the tools would read in two different
ways). sqlmig reads ``.sql`` files only: golang-migrate's other extensions are out of
scope. Conversely, every name sqlmig accepts is one golang-migrate or dbmate runs,
with the same version.
"""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from sqlmig.errors import MigrationFileError
from sqlmig.source import ParsedName, parse_filename

_UINT64 = 2**64 - 1
_INT64 = 2**63 - 1


def golang_migrate(name: str) -> tuple[int, str] | None:
    """The version and direction golang-migrate reads, or None when it skips the file."""
    found = _golang_migrate(name)
    if found is None or int(found[1]) > _UINT64:
        return None
    return int(found[1]), found[3]


def _golang_migrate(name: str) -> re.Match[str] | None:
    return re.fullmatch(r"([0-9]+)_(.*)\.(down|up)\.(.*)", name)


def dbmate(name: str) -> int | None:
    found = re.fullmatch(r"([0-9]+).*\.sql", name)
    return int(found[1]) if found else None


def goose(name: str) -> int | None:
    if "." not in name or name[name.rindex(".") :] != ".sql" or "_" not in name:
        return None
    number = name[: name.index("_")]
    if re.fullmatch(r"[+-]?[0-9]+", number) is None:
        return None  # Go's strconv.ParseInt: an optional sign, then ASCII digits
    value = int(number)
    return value if 1 <= value <= _INT64 else None


def sqlmig(name: str) -> ParsedName | str | None:
    """What sqlmig makes of the name: parsed, the reason it is refused, or None (ignored)."""
    try:
        return parse_filename(name)
    except MigrationFileError as error:
        (problem,) = error.problems
        return problem.problem


# Anything but "/" and NUL (no file name holds them) and line breaks (Go's "." does not
# match one, which only matters to names nobody writes).
_CHAR = st.characters(blacklist_characters="/\0\n\r")
VERSION = st.one_of(
    st.from_regex(r"\A[0-9]{1,20}\Z"),
    st.from_regex(r"\A[+-][0-9]{1,4}\Z"),
    st.just(""),
)
SEPARATOR = st.sampled_from(["_", "-", "", ".", "x", "__"])
LABEL = st.one_of(
    st.text(_CHAR, max_size=12),
    st.lists(st.sampled_from(["a", "B", ".", "_", "-", "up", "down", "sql", "1.7.0", " "])).map(
        "".join
    ),
)
SUFFIX = st.sampled_from(
    [".up.sql", ".down.sql", ".sql", ".sql.sql", ".UP.sql", ".up.SQL", ".SQL", ".up.b.sql"]
)
NAME = st.one_of(
    st.builds(lambda v, s, label, x: v + s + label + x, VERSION, SEPARATOR, LABEL, SUFFIX),
    st.text(_CHAR, max_size=20).map(lambda text: text + ".sql"),
)


def justified(reason: str, name: str, version: int) -> bool:
    """Whether a refusal of a name some tool accepts says a reason that holds."""
    if reason.startswith("version ") and "is too large" in reason:
        return version > _INT64
    if reason.startswith("looks like a migration (ends in .sql) but its name does not start"):
        return not name[:1].isascii() or not name[:1].isdigit()
    if reason.startswith("is ambiguous"):
        # golang-migrate reads it as an up or down script, dbmate as a single file, or
        # the name ends like an up or down script that golang-migrate skips.
        paired = _golang_migrate(name)
        pair_like = re.search(r"\.(up|down)\.sql\Z", name, re.I) is not None
        return (paired is not None and paired[4].lower() != "sql") or (
            paired is None and pair_like and dbmate(name) is not None
        )
    return False


@settings(max_examples=500)
@given(NAME)
@example("0002_1.7.0_schema.up.sql")
@example("20231002232836_Add-Sms-Consent-Column-To-Users.sql")
@example("20230524032337_add-cbsa.sql.sql")
@example("00000000000000-initial-schema.sql")
@example("+3_a.sql")
@example("99999999999999999999_a.up.sql")
@example("1_a.up.b.sql")
def test_a_name_a_tool_accepts_parses_to_its_version_or_is_refused_with_the_reason(
    name: str,
) -> None:
    ours = sqlmig(name)
    read = golang_migrate(name)
    readings = [
        ("golang-migrate", read[0] if read and name.lower().endswith(".sql") else None),
        ("dbmate", dbmate(name)),
        ("goose", goose(name)),
    ]
    for tool, version in readings:
        if version is None:
            continue
        if isinstance(ours, ParsedName):
            assert ours.number == version, (tool, name, ours)
        else:
            assert isinstance(ours, str), (tool, name, "ignored")
            assert justified(ours, name, version), (tool, name, ours)


@settings(max_examples=500)
@given(NAME)
def test_a_name_sqlmig_accepts_is_one_golang_migrate_or_dbmate_runs(name: str) -> None:
    ours = sqlmig(name)
    if not isinstance(ours, ParsedName):
        return
    if ours.kind == "single":
        assert dbmate(name) == ours.number
    else:
        assert golang_migrate(name) == (ours.number, ours.kind)

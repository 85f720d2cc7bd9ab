"""Security evidence against a real PostgreSQL: no password in any output, identifiers
quoted or refused, `new` confined to its directory, values only as bound parameters.

Every CLI run here goes through `run_cli`, which scans stdout, stderr, the Python
logging records and any exception for the sentinel password in each form it can take
(as typed, percent-encoded, form-encoded).
"""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from helpers import clean_environ, connect, write
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from sqlmig.cli import app
from sqlmig.database import _mask_unparsed, classify, parse_url, safe_url, scrub
from sqlmig.errors import InvalidURLError, SqlmigError
from sqlmig.locking import MIGRATION_LOCK_ID
from sqlmig.migrator import Migrator
from sqlmig.tracker import RecordParams, Tracker

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_environment")]

SENTINEL = f"S3ntinel-p4ss-{uuid.uuid4().hex[:10]}"
SRC = Path(__file__).resolve().parents[2] / "src" / "sqlmig"
MIGRATIONS = {
    "0001_create_t.up.sql": "CREATE TABLE t (id int);\n",
    "0001_create_t.down.sql": "DROP TABLE IF EXISTS t;\n",  # 0001 is baselined, never run
    "0002_add_u.sql": "-- migrate:up\nCREATE TABLE u (id int);\n-- migrate:down\nDROP TABLE u;\n",
}


def forms(password: str) -> set[str]:
    """Every way a password can show up in text: as typed, or encoded for a URL."""
    return {password, quote(password), quote(password, safe=""), quote_plus(password)}


def chain_text(exc: BaseException) -> str:
    """Message, repr, args and formatted traceback of an exception and all it chains."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *map(repr, current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def assert_hidden(password: str, *texts: str) -> None:
    for shown in texts:
        for form in forms(password):
            assert form not in shown, f"password form {form!r} leaked in:\n{shown}"


# --- the masking functions, for any password (no database) -----------------------------

MARKERS = ("Zq9", "Xk7", "Wm5")
# Printable ASCII, so delimiters included: @ : / % ? # & = ' " and space.
PIECES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)


def marked(a: str, b: str) -> str:
    """A password whose start, middle and end are each recognisable when shown."""
    return f"{MARKERS[0]}{a}{MARKERS[1]}{b}{MARKERS[2]}"


def libpq_quoted(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spellings(password: str) -> list[str]:
    """How an operator might write a URL, right or wrong, with this password in it."""
    encoded = quote(password, safe="")
    found = [
        f"postgresql://u:{password}@h:5432/db",  # raw: '@', '/', ':' not escaped
        f"postgresql://u:{encoded}@h:5432/db",
        f"postgres://u:{password}@[::1",
        f"postgresql://u:{password}@h:port/db",
        f"postgresql://u:{password}@h",
        f"mysql://u:{encoded}@h/db",
        f"postgresql://u@h/db?password={encoded}",
        f"postgresql+psycopg://u:{encoded}@h/db?sslmode=require&password={encoded}",
        f"u:{password}@h/db",  # no scheme
        f"u:{password}",
        f"postgresql:u:{password}@h/db",
        f"host=h password={libpq_quoted(password)} dbname=db",  # libpq keyword/value
        f"dbname=postgresql://u:{encoded}@h/db",
    ]
    if not re.search(r"[\s'\\]", password):
        found.append(f"password={password} host=h")
    if "@" not in password:  # else it reads as a user, a password and a host
        found.append(f"postgresql://u:{password}")  # no host after the password
    return found


def shown_for(url: str) -> list[str]:
    """Everything sqlmig could show about this URL without connecting."""
    shown = [safe_url(url), _mask_unparsed(url)]
    try:
        parsed = parse_url(url)
    except InvalidURLError as exc:
        shown.append(chain_text(exc))
    else:
        shown.append(safe_url(parsed))
        # A driver message quoting the password, as drivers have done: classify scrubs it.
        message = f'FATAL:  password authentication failed for user "u" ({parsed.password})'
        shown.append(chain_text(classify(RuntimeError(message), parsed)))
        shown.append(scrub(f"{quote(str(parsed.password))} in a URL", parsed.password))
    return shown


@settings(max_examples=300, deadline=None)
@given(a=PIECES, b=PIECES)
def test_no_part_of_any_password_survives_masking_however_the_url_is_written(
    a: str, b: str
) -> None:
    password = marked(a, b)
    for url in spellings(password):
        for shown in shown_for(url):
            for marker in MARKERS:
                assert marker not in shown, f"{marker} of {password!r} shown for {url!r}:\n{shown}"


# --- the password through every command, on success and on error ------------------------

# Plain, and verbose JSON: the second prints all the others do (traceback, document,
# error line), so the two cover text, JSON and -v.
MODES = [[], ["-v", "--format", "json"]]
DB_COMMANDS = [
    ["up"],
    ["up", "--dry-run"],
    ["down"],
    ["redo"],
    ["status"],
    ["history"],
    ["validate"],
    ["baseline", "0001"],
    ["repair", "0001", "--applied"],
    ["adopt", "--from", "dbmate"],
]


@pytest.fixture
def role(pg_admin_url: str) -> Iterator[str]:
    """A login role whose password is the sentinel (set up before, and so dropped after,
    the database it will own)."""
    name = f"sqlmig_sec_{uuid.uuid4().hex[:8]}"
    with connect(pg_admin_url) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{SENTINEL}'")
    yield name
    with connect(pg_admin_url) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def url(role: str, database_url: str) -> str:
    """The test database, owned by the role, reached as the role with the sentinel."""
    database = make_url(database_url)
    with connect(database_url) as conn:
        conn.execute(f'ALTER DATABASE "{database.database}" OWNER TO {role}')
        conn.execute(f"ALTER SCHEMA public OWNER TO {role}")
    return database.set(username=role, password=SENTINEL).render_as_string(hide_password=False)


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    return write(tmp_path / "migrations", MIGRATIONS)


def run_cli(
    caplog: pytest.LogCaptureFixture,
    *args: str,
    env: dict[str, str] | None = None,
    password: str = SENTINEL,
) -> Result:
    """Run a command in-process; fail if the password shows anywhere it could."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    shown = [result.stdout, result.stderr, records]
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        shown.append(chain_text(result.exception))
        pytest.fail(f"{args} raised instead of exiting:\n{chain_text(result.exception)}")
    assert_hidden(password, *shown)
    return result


def url_with(base: str, **parts: Any) -> str:
    return make_url(base).set(**parts).render_as_string(hide_password=False)


def test_every_command_succeeds_without_showing_the_password(
    url: str, migrations: Path, caplog: pytest.LogCaptureFixture
) -> None:
    steps = [
        (["validate"], 0),
        (["status"], 0),
        (["up", "--dry-run"], 0),
        (["baseline", "0001"], 0),
        (["up"], 0),
        (["status", "--exit-code"], 0),
        (["history"], 0),
        (["redo"], 0),
        (["down"], 0),
        (["down", "--dry-run"], 0),
        (["repair", "0002", "--forget"], 0),
        (["repair", "0001", "--checksum"], 0),
        (["up"], 0),
    ]
    for mode in MODES:
        for args, code in steps:
            result = run_cli(caplog, *mode, "--database-url", url, *args)
            assert result.exit_code == code, (mode, args, result.stderr)
            if "json" in mode:
                assert json.loads(result.stdout)["ok"] is True
        assert (
            run_cli(caplog, *mode, "--database-url", url, "down", "--all", "--yes").exit_code == 0
        )
        with psycopg.connect(url, autocommit=True) as conn:  # a database never migrated
            conn.execute("DROP TABLE schema_migrations")
    made = run_cli(caplog, "-v", "--database-url", url, "--dir", "other", "new", "x")
    assert made.exit_code == 0


def _unreachable(admin: str, role: str) -> dict[str, tuple[str, int]]:
    """URLs (with the sentinel) that fail to connect, and the exit code each must give."""
    return {
        "unknown host": (f"postgresql://u:{SENTINEL}@nohost.invalid:5432/db", 4),
        "refused port": (f"postgresql://u:{SENTINEL}@127.0.0.1:1/db", 4),
        "wrong database": (url_with(admin, database="no_such_db_x", password=SENTINEL), 4),
        "unknown role": (url_with(admin, username="nobody_x", password=SENTINEL), 4),
        "known role, wrong database": (
            url_with(admin, username=role, database="nodb_x", password=SENTINEL),
            4,
        ),
    }


MALFORMED = {
    "unescaped @": f"postgresql://u:p@ss{SENTINEL}@127.0.0.1/db",
    "unescaped @ before the host": f"postgresql://u:{SENTINEL}@x@127.0.0.1:1/db",
    "unclosed IPv6": f"postgres://u:{SENTINEL}@[::1",
    "encoded @:/": f"postgresql://u:{quote(SENTINEL + '@:/', safe='')}@h:port/db",
    "raw @:/": f"postgresql://u:{SENTINEL}@:/@127.0.0.1:notaport/db",
    "no scheme": f"u:{SENTINEL}@127.0.0.1/db",
    "user:password alone": f"u:{SENTINEL}",
    "password alone": SENTINEL,
    "libpq keywords": f"host=127.0.0.1 password={SENTINEL} dbname=db",
    "libpq quoted": f"host=127.0.0.1 password='{SENTINEL} x' dbname=db",
    "unparsable port": f"postgresql://u:{SENTINEL}@127.0.0.1:99x/db",
    "no host": f"postgresql://u:{SENTINEL}",
    "no database": f"postgresql://u:{SENTINEL}@127.0.0.1:1",
    "other scheme": f"mysql://u:{SENTINEL}@127.0.0.1/db",
    "password in the query": f"mysql://127.0.0.1/db?password={SENTINEL}",
}


@pytest.mark.parametrize(
    "case",
    [
        "unknown host",
        "refused port",
        "wrong database",
        "unknown role",
        "known role, wrong database",
    ],
)
def test_connection_failures_of_every_command_never_show_the_password(
    case: str,
    pg_admin_url: str,
    role: str,
    migrations: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad_url, code = _unreachable(pg_admin_url, role)[case]
    for mode in MODES:
        for command in DB_COMMANDS:
            result = run_cli(caplog, *mode, "--database-url", bad_url, *command)
            assert result.exit_code == code, (mode, command, result.stderr)
            if "json" in mode:
                assert json.loads(result.stdout)["error"]["exit_code"] == code


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_urls_are_usage_errors_that_never_show_the_password(
    case: str, migrations: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Every command parses the URL the same way: all of them plainly, `up` in each mode.
    runs: list[tuple[list[str], list[str]]] = [
        ([], c) for c in [*DB_COMMANDS, ["new", "x", "--sequential"]]
    ]
    runs += [(mode, ["up"]) for mode in (["-v"], ["--format", "json"], MODES[1])]
    for mode, command in runs:
        result = run_cli(caplog, *mode, "--database-url", MALFORMED[case], *command)
        expected = 0 if command[0] == "new" else 2
        assert result.exit_code == expected, (mode, command, result.stderr)
        if expected:
            assert "error: " in result.stderr
    assert "Traceback" not in run_cli(caplog, "--database-url", MALFORMED[case], "up").stderr


def test_a_refused_url_leaves_the_verbose_traceback_readable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLAlchemy reads "p" as the password of u:p@ss@host; starring out every "p" of
    the traceback would hide nothing and garble it."""
    url = f"postgresql://u:p@ss{SENTINEL}@127.0.0.1/db"
    result = run_cli(caplog, "-v", "--database-url", url, "status")

    assert result.exit_code == 2
    masked = "malformed database URL 'postgresql://u:***@127.0.0.1/db'"
    assert result.stderr.count(masked) == 2  # the traceback's last line, and the error
    assert "***ostgresql" not in result.stderr and 'File "' in result.stderr


def test_a_failing_migration_and_a_held_lock_never_show_the_password(
    url: str, migrations: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (migrations / "0003_broken.up.sql").write_text(f"SELECT '{SENTINEL[:4]}' FROM nope;\n")
    for mode in MODES:
        result = run_cli(caplog, *mode, "--database-url", url, "up")
        assert result.exit_code == 1, result.stderr
        assert "0003_broken.up.sql:1" in result.stdout + result.stderr
    (migrations / "0003_broken.up.sql").unlink()
    with connect(url) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_ID])
        for mode in MODES:
            for command in (["up"], ["down"], ["redo"], ["baseline", "0001"]):
                result = run_cli(
                    caplog, *mode, "--database-url", url, "--lock-timeout", "0", *command
                )
                assert result.exit_code == 3, (mode, command, result.stderr)
                assert "held by pid" in result.stderr


@pytest.mark.parametrize(
    "source", ["--database-url", "SQLMIG_DATABASE_URL", "DATABASE_URL", "config"]
)
def test_every_source_of_the_url_keeps_the_password_hidden(
    source: str, url: str, migrations: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def given(value: str) -> tuple[list[str], dict[str, str]]:
        if source == "--database-url":
            return ["--database-url", value], {}
        if source == "config":
            (tmp_path / "sqlmig.toml").write_text('database_url_env = "APP_DB_URL"\n')
            return [], {"APP_DB_URL": value}
        return [], {source: value}

    for value, code in [
        (url, 0),
        (f"postgresql://u:{SENTINEL}@127.0.0.1:1/db", 4),
        (MALFORMED["unescaped @"], 2),
        (MALFORMED["libpq keywords"], 2),
    ]:
        options, env = given(value)
        for mode in MODES:
            result = run_cli(caplog, *mode, *options, "status", env=env)
            assert result.exit_code == code, (value, mode, result.stderr)


def test_the_console_script_with_verbose_never_shows_the_password(
    url: str, migrations: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    script = Path(sys.executable).parent / "sqlmig"
    clean = clean_environ()
    for value, code in [
        (url, 0),
        (f"postgresql://u:{SENTINEL}@127.0.0.1:1/db", 4),
        (MALFORMED["unescaped @"], 2),
        (MALFORMED["user:password alone"], 2),
    ]:
        done = subprocess.run(
            [str(script), "-v", "up"],
            cwd=tmp_path,
            env={**clean, "DATABASE_URL": value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == code, done.stderr
        assert_hidden(SENTINEL, done.stdout, done.stderr)


@pytest.mark.parametrize("case", ["refused port", "unknown role", *MALFORMED])
def test_library_errors_and_their_chains_never_hold_the_password(
    case: str, pg_admin_url: str, role: str, migrations: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad_url = MALFORMED.get(case) or _unreachable(pg_admin_url, role)[case][0]
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(SqlmigError) as raised,
        Migrator(bad_url, migrations) as m,
    ):
        m.up()
    assert_hidden(SENTINEL, chain_text(raised.value), caplog.text)


# --- table and schema names: quoted exactly, or refused before connecting ----------------

HOSTILE_TABLES = [
    "x; DROP TABLE victim; --",
    'x"; DROP TABLE victim; --',
    "it's",
    "Mixed Case",
    "dot.ted",
    "ünïcödé_表",
    "pct%s%(x)s:name$1?",
    "a" * 63,  # the limit, with a constraint name longer than that
    "é" * 31,  # 62 bytes
]
HOSTILE_SCHEMAS = [None, 'a"; DROP TABLE victim; --', "Sch ema", "UPPER"]


def tables_and_victim(engine_url: str) -> tuple[set[tuple[str, str]], list[int]]:
    with psycopg.connect(engine_url) as conn:
        found = set(
            conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
        )
        victim = [r[0] for r in conn.execute("SELECT id FROM victim ORDER BY id")]
    return found, victim


def test_hostile_table_and_schema_names_are_quoted_never_executed(
    url: str, migrations: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each name, given by option, environment or config file in turn, names exactly
    one quoted table; the victim table and its rows survive them all."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1), (2)")
    made: set[tuple[str, str]] = {("public", "victim")}
    for index, table in enumerate(HOSTILE_TABLES):
        schema = HOSTILE_SCHEMAS[index % len(HOSTILE_SCHEMAS)]
        where = ("option", "environment", "config")[index % 3]
        options: list[str] = []
        env: dict[str, str] = {}
        (tmp_path / "sqlmig.toml").unlink(missing_ok=True)
        if where == "option":
            options = ["--table", table, *(["--schema", schema] if schema else [])]
        elif where == "environment":
            env = {"SQLMIG_TABLE": table, **({"SQLMIG_SCHEMA": schema} if schema else {})}
        else:
            lines = [f"table = {json.dumps(table)}"] + (
                [f"schema = {json.dumps(schema)}"] if schema else []
            )
            (tmp_path / "sqlmig.toml").write_text("\n".join(lines) + "\n")

        for command in (["up"], ["status"], ["history"], ["redo"], ["down"]):
            result = run_cli(caplog, "--database-url", url, *options, *command, env=env)
            assert result.exit_code == 0, (table, schema, where, command, result.stderr)

        made.add((schema or "public", table))
        found, victim = tables_and_victim(url)
        assert victim == [1, 2]
        assert found == made | {("public", "t")}, (table, schema, where)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute(
                psycopg.sql.SQL("SELECT version, filename, status FROM {} ORDER BY 1").format(
                    psycopg.sql.Identifier(*([schema] if schema else []), table)
                )
            ).fetchall()
            conn.execute("DROP TABLE t")  # for the next name's run
        assert rows == [
            ("0001", "0001_create_t.up.sql", "applied"),
            ("0002", "0002_add_u.sql", "rolled_back"),
        ], (table, schema, where)


INVALID_NAMES = {
    "too long": ("a" * 64, "it is 64 bytes long; PostgreSQL allows 63"),
    "too long in bytes": ("é" * 32, "it is 64 bytes long; PostgreSQL allows 63"),
    "empty": ("", "it is empty or starts or ends with a space"),
    "padded": (" t", "it is empty or starts or ends with a space"),
    "newline": ("t\nDROP TABLE victim", "it contains a control character"),
    "NUL": ("t\x00", "it contains a control character"),
}


@pytest.mark.parametrize("case", list(INVALID_NAMES))
@pytest.mark.parametrize("key", ["table", "schema"])
def test_names_postgresql_would_alter_are_usage_errors_before_connecting(
    case: str, key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, migrations: Path
) -> None:
    value, problem = INVALID_NAMES[case]
    refused = f"postgresql://u:{SENTINEL}@127.0.0.1:1/db"  # never reached: exit 2, not 4
    sources: list[tuple[list[str], dict[str, str], str]] = [
        ([f"--{key}", value], {}, f"--{key}"),
    ]
    if value:  # an empty variable counts as unset
        sources.append(([], {"SQLMIG_" + key.upper(): value}, f"$SQLMIG_{key.upper()}"))
    if "\x00" in value:  # a NUL cannot be in the environment
        sources.pop()
    (tmp_path / "cfg.toml").write_text(f"{key} = {json.dumps(value)}\n")
    sources.append((["--config", str(tmp_path / "cfg.toml")], {}, str(tmp_path / "cfg.toml")))
    for options, env, origin in sources:
        result = run_cli(caplog, "--database-url", refused, *options, "up", env=env)
        assert result.exit_code == 2, result.stderr
        assert result.stderr == (
            f"error: invalid {key} name {value!r} (from {origin}): {problem}. A {key} name is "
            "1 to 63 bytes, used as given (quoted, so case, spaces and quotes are kept)\n"
        )


# --- `new` writes inside its directory or nowhere ------------------------------------------

ODD_NAMES = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "..\\x",
    "C:\\Windows\\x",
    "x\x00y",
    "\x00",
    "..",
    "\u2025",  # two dot leader: NFKD ".."
    "\uff0e\uff0e/\uff0e\uff0e/x",  # fullwidth full stops and solidus
    "\u2024\u2024\u2215x",  # one dot leaders, division slash
    "~/x",
    "$(touch pwned)",
    "a" * 5000,
    "日本語",
    "\u0301\u0301",  # combining accents only
    "-rf",
    "con",  # a reserved device name on Windows: harmless here, but a plain slug
]


def _new_in(root: Path, name: str, *extra: str) -> Result:
    folder = root / "migrations"
    return CliRunner().invoke(
        app, ["--dir", str(folder), "new", *extra, "--", name], catch_exceptions=False
    )


def _everything(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(
        st.text(max_size=60),
        st.sampled_from(ODD_NAMES),
        st.lists(
            st.sampled_from(["..", "/", "\\", ".", "\x00", "a", "\u2025", "\uff0f"]), max_size=8
        ).map("".join),
    ),
    extra=st.sampled_from([[], ["--sequential"], ["--single-file"]]),
)
def test_new_creates_files_inside_the_directory_or_nothing_at_all(
    name: str, extra: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp) / "root"
        root.mkdir()
        (root / "migrations").mkdir()
        (root / "migrations" / "0001_first.sql").write_text("-- migrate:up\nSELECT 1;\n")
        before = _everything(Path(temp))

        result = _new_in(root, name, *extra)

        created = _everything(Path(temp)) - before
        if result.exit_code == 2:
            assert created == set()
            assert result.stderr.startswith("error: migration name")
            return
        assert result.exit_code == 0, result.stderr
        folder = (root / "migrations").resolve()
        assert created and all(p.resolve().parent == folder for p in created)
        assert {str(p) for p in created} == set(result.stdout.split())
        # What the name became can only be lowercase ASCII, digits and underscores.
        assert all(
            re.fullmatch(r"0002_[a-z0-9_]{1,100}(\.up|\.down)?\.sql", p.name) for p in created
        )


def test_new_through_a_symlinked_directory_writes_in_its_target_only(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)

    result = CliRunner().invoke(app, ["--dir", str(link), "new", "../../x"])

    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and link.resolve() == target
    names = sorted(p.name for p in target.iterdir())
    assert [n.split("_", 1)[1] for n in names] == ["x.down.sql", "x.up.sql"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    assert result.stdout.split() == [str(link / n) for n in reversed(names)]


def test_new_never_overwrites_nor_follows_a_link_out_of_the_directory(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    stamp = "20240102030405"
    existing = folder / f"{stamp}_add_users.up.sql"
    existing.write_text("CREATE TABLE users ();\n")
    # A link named like the next migration would be, pointing outside.
    (folder / f"{stamp}_add_users.down.sql").symlink_to(outside)

    result = CliRunner().invoke(app, ["--dir", str(folder), "new", "add users"])

    assert result.exit_code == 0, result.stderr
    assert existing.read_text() == "CREATE TABLE users ();\n"
    assert outside.read_text() == "keep me\n"
    new_files = sorted(
        set(p.name for p in folder.iterdir()) - {existing.name, f"{stamp}_add_users.down.sql"}
    )
    assert len(new_files) == 2 and all(name > existing.name for name in new_files)


# --- versions and names reach the server only as bound parameters --------------------------


def test_file_names_with_dashes_and_comment_markers_are_recorded_verbatim(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    name = "0001_x--drop-table-victim--.up.sql"
    (folder / name).write_text("CREATE TABLE t (id int);\n")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")

    assert run_cli(caplog, "--database-url", url, "--dir", str(folder), "up").exit_code == 0

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version, filename FROM schema_migrations").fetchall() == [
            ("0001", name)
        ]
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (0,)


def test_quotes_semicolons_and_spaces_in_names_are_recorded_verbatim(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """dbmate and golang-migrate take any name after the version, so sqlmig does too: the
    name is a label that only ever reaches the server as a bound parameter."""
    folder = tmp_path / "m"
    folder.mkdir()
    names = [
        "0001_it's.up.sql",
        "0002_a';DROP TABLE victim;--.up.sql",
        "0003 a b.sql",
        '0004_"q".sql',
    ]
    for name in names:
        body = "SELECT 1;\n" if name.endswith(".up.sql") else "-- migrate:up\nSELECT 1;\n"
        (folder / name).write_text(body)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")

    result = run_cli(caplog, "--database-url", url, "--dir", str(folder), "up")

    assert result.exit_code == 0, result.stderr
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT filename FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(name,) for name in names]
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (0,)


def test_every_statement_sqlmig_sends_carries_values_as_parameters(
    url: str, tmp_path: Path
) -> None:
    """All SQL of up, status, down and repair (not the scripts, sent raw by design) is
    read off the wire as the server receives it: no version, file name or checksum in
    its text, all of them in its parameters."""
    from wire import captured

    folder = tmp_path / "m"
    folder.mkdir()
    name = "0001_x--y.up.sql"
    (folder / name).write_text("CREATE TABLE t (id int);\n")
    (folder / "0001_x--y.down.sql").write_text("DROP TABLE t;\n")
    scripts = {"CREATE TABLE t (id int)", "DROP TABLE t"}
    with captured(url) as (proxy, capture), Migrator(proxy.url(url), folder) as m:
        m.up()
        m.status()
        m.down()
        m.repair("0001", "forget")
    ours = [sent for sent in capture.sent if sent.sql not in scripts]
    assert len(ours) < len(capture.sent), "the scripts were not seen: the tap saw nothing"
    values = [name, "0001"]  # what comes from the files; statuses are constants
    for sent in ours:
        for value in values:
            assert f"'{value}'" not in sent.sql, sent.sql
        assert name not in sent.sql and "sha256:" not in sent.sql, sent.sql
    flat = json.dumps([sent.params for sent in ours if sent.params])
    assert name in flat and "sha256:" in flat and '"0001"' in flat


def test_hostile_values_given_to_the_tracker_are_stored_verbatim(url: str) -> None:
    from sqlmig.database import new_engine

    evil = "1'); DROP TABLE victim; --"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
    engine = new_engine(url)
    try:
        tracker = Tracker(engine)
        tracker.ensure_table()
        tracker.record_applied(RecordParams(evil, f"{evil}.sql", f"sha256:{evil}", 1))
        assert tracker.get(evil) is not None
        assert tracker.set_checksum(evil, "%(x)s :name $1")
        assert tracker.get_checksum(evil) == "%(x)s :name $1"
        assert tracker.forget(evil)
    finally:
        engine.dispose()
    found, _ = tables_and_victim(url)
    assert ("public", "victim") in found


SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WHERE|FROM|SET|INTO)\b")


@pytest.mark.parametrize("module", ["tracker.py", "locking.py", "lease.py"])
def test_tracker_and_locking_build_no_sql_from_strings(module: str) -> None:
    """SQL there is a Core expression or a literal `text()`: never an f-string, `%` or
    `.format()` with SQL in it, and `text()`/`exec_driver_sql()` take only literals."""
    tree = ast.parse((SRC / module).read_text())
    offences = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            literal = "".join(
                v.value
                for v in node.values
                if isinstance(v, ast.Constant) and isinstance(v.value, str)
            )
            if SQL_WORDS.search(literal):
                offences.append(f"line {node.lineno}: f-string with SQL")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if isinstance(node.left, ast.Constant) and SQL_WORDS.search(str(node.left.value)):
                offences.append(f"line {node.lineno}: % formatting of SQL")
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name)):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if called == "format" and isinstance(node.func, ast.Attribute):
                base = node.func.value
                if isinstance(base, ast.Constant) and SQL_WORDS.search(str(base.value)):
                    offences.append(f"line {node.lineno}: .format() of SQL")
            constant = bool(node.args) and isinstance(node.args[0], ast.Constant)
            if called in ("text", "exec_driver_sql") and node.args and not constant:
                offences.append(f"line {node.lineno}: {called}() of a non-literal")
    assert offences == []


def test_the_grep_test_catches_sql_built_from_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above fails on each way of pasting values into SQL."""
    for body in (
        'q = f"SELECT * FROM {name}"\n',
        'q = "DELETE FROM t WHERE v = %s" % v\n',
        'q = "UPDATE {} SET x = 1".format(t)\n',
        "conn.exec_driver_sql(q)\n",
        "text(q)\n",
    ):
        (tmp_path / "tracker.py").write_text(body)
        monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
        with pytest.raises(AssertionError):
            test_tracker_and_locking_build_no_sql_from_strings("tracker.py")

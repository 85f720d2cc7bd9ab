"""Engines for a database URL: a small pool, psycopg 3, and errors an operator can act on.

Nothing here lets a password escape: URLs are shown through :func:`safe_url`, driver
messages are scrubbed, and our errors are raised outside the driver's ``except``
block so no chained exception carries the original text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from sqlmig.errors import (
    AuthenticationError,
    ConnectionStalledError,
    ConnectTimeoutError,
    DatabaseNotFoundError,
    DatabaseUnavailableError,
    InvalidURLError,
    RefusedConnectionError,
    UnknownHostError,
)

log = logging.getLogger("sqlmig")

DRIVER = "postgresql+psycopg"
_ACCEPTED = {"postgres", "postgresql", DRIVER}
APPLICATION_NAME = "sqlmig"

# libpq TCP keepalives: a vanished peer is noticed in about a minute instead of hours.
# tcp_user_timeout (ms): sent data unacknowledged that long closes the connection, so
# a partition is noticed mid-statement too, where keepalives stay silent. A URL that
# sets any of these (or connect_timeout) wins.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}


def parse_url(database_url: str | URL) -> URL:
    """Parse and normalise a PostgreSQL URL to the psycopg 3 driver, without connecting."""
    if isinstance(database_url, URL):
        url = database_url
    else:
        text = database_url.strip()
        parsed = _parse(text)
        if parsed is None:
            # Raised here, not inside the except block: SQLAlchemy's message quotes the
            # whole URL, password included, and must not ride along as __context__.
            raise InvalidURLError(
                f"malformed database URL {_mask_unparsed(text)!r}: expected "
                f"postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE{_malformed_hint(text)}"
            )
        url = parsed
    if url.drivername not in _ACCEPTED:
        raise InvalidURLError(
            f"unsupported database URL scheme {url.drivername!r} in {safe_url(url)}: sqlmig "
            "works with PostgreSQL through psycopg 3; use postgresql:// (or "
            "postgres://, postgresql+psycopg://)"
        )
    if not url.database:
        raise InvalidURLError(f"database URL {safe_url(url)} names no database: add /DATABASE")
    _check_ports(url)
    return url.set(drivername=DRIVER)


def _valid_port(text: str) -> bool:
    # isascii(): str.isdigit() also takes "²" (which int() refuses) and "٣".
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535


def _check_ports(url: URL) -> None:
    """Refuse ports that are not numbers from 1 to 65535, wherever the URL puts them.

    Left to the driver, ``?port=abc`` fails inside create_engine as SQLAlchemy's
    ArgumentError and ``:99999`` as an unknown host; either way not a usage error.
    """
    ports = [] if url.port is None else [str(url.port)]
    for key in ("port", "host"):
        value = url.query.get(key) or ()
        for item in (value,) if isinstance(value, str) else value:
            for part in item.split(","):
                if key == "port":
                    ports.append(part)
                elif ":" in part and not part.startswith("/"):
                    ports.append(part.rsplit(":", 1)[1])
    bad = next((p for p in ports if p and not _valid_port(p)), None)
    problem = None if bad is None else f"port {bad!r} is not a number from 1 to 65535"
    if problem is None:
        try:
            url.set(drivername=DRIVER).get_dialect()().create_connect_args(url)
        except (ArgumentError, ValueError) as exc:
            # SQLAlchemy's text names hosts and ports only, never the password.
            problem = scrub(str(exc), url.password)
    if problem is not None:
        raise InvalidURLError(
            f"invalid database URL {safe_url(url)}: {problem}. Ports go in "
            "postgresql://USER@HOST:PORT/DATABASE or ?host=H1,H2&port=P1,P2"
        )


# Stands in for a password query parameter while rendering, then becomes "***" (which
# the renderer would percent-encode).
_QUERY_MASK = "sqlmig-masked-password"


def safe_url(url: str | URL) -> str:
    """The URL as text with its password (and a ``password`` query parameter) as ``***``."""
    if isinstance(url, str):
        parsed = _parse(url)
        if parsed is None:
            return _mask_unparsed(url)
        url = parsed
    if "password" in url.query:
        url = url.update_query_dict({"password": _QUERY_MASK})
    return url.render_as_string(hide_password=True).replace(_QUERY_MASK, "***")


def _parse(text: str) -> URL | None:
    """The URL, or None when it cannot be parsed or may have split a password.

    SQLAlchemy ends the password at the first ``@``, so ``u:p@ss@host`` parses with
    the rest of the password in the host (or the database, or a query it drops):
    shown as "where", it would leak. So every ``@`` must be accounted for: the one
    ending the user info, and any in the user name (``me@corp:pw@host`` is fine).
    """
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        return None
    has_userinfo = url.username is not None or url.password is not None
    expected = (url.username or "").count("@") + (1 if has_userinfo else 0)
    return url if text.count("@") == expected else None


# libpq keyword/value strings (``password=secret host=db``) and URL query parameters:
# the value of ``password`` is quoted with backslash escapes, or runs to a space (in a
# URL, also over the parameters after it: hiding too much beats hiding too little).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# A URL's password anywhere in the text (a libpq dbname may be a URL), to its last "@".
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
_KEYWORD_STRING = re.compile(r"\s*[A-Za-z_]+\s*=")
_PASSWORD_VALUE = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)", re.IGNORECASE)


def _mask_unparsed(text: str) -> str:
    """Text SQLAlchemy cannot parse, with anything that may be a password as ``***``.

    Errs towards hiding: text without ``://`` is shown only when it is a libpq
    keyword/value string (its password masked), as anything else may be a password
    pasted on its own (``user:secret``, ``secret``).
    """
    text = _USERINFO_PASSWORD.sub(r"\1***@", _PASSWORD_VALUE.sub(r"\1***", text))
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        if not text.strip() or _KEYWORD_STRING.match(text):
            return text
        return "<not shown: not a URL>"
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else text
    # No "@": after the colon is a port, or a password (which may hold a "/") whose
    # host is missing.
    host, colon, port = rest.partition(":")
    return f"{scheme}://{host}:***" if colon and not re.match(r"\d*(/|$)", port) else text


def _malformed_hint(text: str) -> str:
    """What is probably wrong with a URL that does not parse, for the message."""
    if "://" not in text and _KEYWORD_STRING.match(text):
        return " (sqlmig takes a URL, not a libpq key=value string)"
    if text.count("@") > 1:
        return " (write an @ in the user name or password as %40)"
    return ""


@dataclass(frozen=True)
class Target:
    """Where a URL points, for messages."""

    host: str
    port: int | None
    database: str

    @classmethod
    def of(cls, url: URL) -> Target:
        host = url.host or str(url.query.get("host") or "local socket")
        port = url.port or (5432 if url.host else None)
        return cls(host=host, port=port, database=url.database or "")


def new_engine(
    database_url: str | URL,
    *,
    pool_size: int = 5,
    connect_timeout: int = 10,
    check: bool = True,
) -> Engine:
    """An engine with at most ``pool_size`` connections, checked with a ping before return.

    The pool never overflows: a migration tool must not surprise a database with
    more sessions than it was told to use. ``check=False`` leaves out the ping, for
    a caller whose first connection (through :func:`connect`) is the check.
    """
    url = parse_url(database_url)
    defaults = {
        "connect_timeout": connect_timeout,
        **KEEPALIVES,
        "application_name": APPLICATION_NAME,
    }
    # connect_args override the URL's query, so only what the URL leaves out goes there.
    connect_args = {k: v for k, v in defaults.items() if k not in url.query}
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        # No hstore adapter: tracking rows are text, and looking the type up costs
        # three round trips on the first connection.
        use_native_hstore=False,
        connect_args=connect_args,
    )
    # Same state, one round trip to learn the server instead of six (see _LeanDialect).
    engine.dialect.__class__ = _LeanDialect
    failure = ping(engine) if check else None
    if failure is not None:
        engine.dispose()
        raise failure
    return engine


class _LeanDialect(PGDialect_psycopg):
    """psycopg's dialect, learning the server in one round trip instead of six.

    On a first connection SQLAlchemy asks for the server version, the default schema,
    the isolation level and standard_conforming_strings in four queries, inside a
    transaction of their own (BEGIN and ROLLBACK make six). libpq already has the
    version and standard_conforming_strings from the connection's start-up; the other
    two come from one query in autocommit. Only engines made by :func:`new_engine`
    use it: an application's engine is left exactly as it is.
    """

    supports_statement_cache = True
    _facts: tuple[str, str] = ("public", "READ COMMITTED")

    def initialize(self, connection: Connection) -> None:
        driver: Any = connection.connection.driver_connection
        before = driver.autocommit
        driver.autocommit = True
        try:
            row = driver.execute(
                "SELECT current_schema(), upper(current_setting('transaction_isolation'))"
            ).fetchone()
        finally:
            driver.autocommit = before
        self._facts = (str(row[0]), str(row[1]))
        super().initialize(connection)  # type: ignore[no-untyped-call]

    def _get_server_version_info(self, connection: Connection) -> tuple[int, ...]:
        number = int(connection.connection.driver_connection.info.server_version)  # type: ignore[union-attr]
        return (number // 10000, number % 10000)

    def _get_default_schema_name(self, connection: Connection) -> str:
        return self._facts[0]

    def get_default_isolation_level(self, dbapi_conn: Any) -> Any:
        return self._facts[1]

    def _set_backslash_escapes(self, connection: Connection) -> None:
        info = connection.connection.driver_connection.info  # type: ignore[union-attr]
        self._backslash_escapes = info.parameter_status("standard_conforming_strings") == "off"


def connect(engine: Engine) -> Connection:
    """A connection from the engine; one that cannot be made is a classified error
    (raised outside the driver's ``except`` block: no chained text, no password)."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        failure = classify(exc.orig if exc.orig is not None else exc, engine.url)
    raise failure


def announced_pid(conn: Connection) -> int:
    """The server process id the connection was told at start-up (BackendKeyData).

    PostgreSQL announces its own pid; a pooler or proxy in between announces a cancel
    key of its own instead, so comparing this with ``pg_backend_pid()`` from any
    statement tells, at no cost, whether something sits between us and the server.
    """
    driver: Any = conn.connection.driver_connection
    return int(driver.info.backend_pid)


def behind_pooler(conn: Connection, backend_pid: int) -> bool:
    """Whether ``conn`` goes through a pooler, from the ``pg_backend_pid()`` a statement
    on it returned; if so, psycopg's automatic prepared statements are turned off on it.

    A pooler in transaction mode sends each transaction to any of its server
    connections, where a statement psycopg prepared on another does not exist. Left
    off for good: the connection's pool is behind the same pooler.
    """
    if backend_pid == announced_pid(conn):
        return False
    driver: Any = conn.connection.driver_connection
    driver.prepare_threshold = None
    return True


@contextmanager
def autocommit(conn: Connection) -> Iterator[None]:
    """Run the block's statements in autocommit: each its own transaction, and no
    BEGIN and COMMIT round trips around a lone statement.

    For reads and session settings that need no transaction of ours. ``conn`` must
    not be inside a transaction; its mode is put back afterwards. A connection in
    autocommit already (the lock's, a run's work connection) is used as it is.
    """
    # The DBAPI connection: psycopg's own, or SQLAlchemy's adapter of an async one.
    driver: Any = conn.connection.dbapi_connection
    if driver.autocommit:
        yield
        return
    before = driver.autocommit
    driver.autocommit = True
    try:
        with conn.begin():  # SQLAlchemy's bookkeeping; the driver sends nothing for it
            yield
    finally:
        if not conn.invalidated and not driver.closed:
            driver.autocommit = before


def ping(engine: Engine) -> DatabaseUnavailableError | None:
    """Connect once; return (not raise) the classified error so no driver text is chained.

    Connecting is the test: the first connection of an engine also runs the
    dialect's own queries, so a ``SELECT 1`` after it would prove nothing more.
    """
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        return classify(exc.orig if exc.orig is not None else exc, engine.url)
    return None


# (pattern in the driver's message, error type, what happened, what to do next)
_RULES: list[tuple[re.Pattern[str], type[DatabaseUnavailableError], str, str]] = [
    (
        re.compile(r"resolve host|translate host name"),
        UnknownHostError,
        "unknown host",
        "Check the host name in the URL.",
    ),
    (
        re.compile(r"timeout expired|timed out"),
        ConnectTimeoutError,
        "timed out connecting",
        "Check that the server is up and reachable from here, or raise the connect timeout.",
    ),
    (
        re.compile(r"connection refused|no such file or directory"),
        RefusedConnectionError,
        "connection refused",
        "Check that PostgreSQL is running and listening there.",
    ),
    (
        re.compile(r'database ".*" does not exist'),
        DatabaseNotFoundError,
        "database does not exist",
        "Create it (createdb) or fix the database name in the URL.",
    ),
    (
        re.compile(r'authentication failed|password|pg_hba\.conf|role ".*" does not exist'),
        AuthenticationError,
        "authentication failed",
        "Check the user name and password, or the server's pg_hba.conf.",
    ),
]


def stalled_error(url: URL, detail: str, advice: str) -> ConnectionStalledError:
    """The server stopped answering on a connection to ``url`` (sqlmig.watchdog)."""
    target = Target.of(url)
    return ConnectionStalledError(
        "the server stopped answering",
        host=target.host,
        port=target.port,
        database=target.database,
        detail=detail,
        advice=advice,
    )


def classify(exc: BaseException, url: URL) -> DatabaseUnavailableError:
    """Turn a driver's connection failure into the error an operator can act on."""
    target = Target.of(url)
    message = scrub(str(exc), url.password)
    lower = message.lower()
    kind, reason, advice = (
        DatabaseUnavailableError,
        "could not connect",
        ("Check the URL and that the server accepts connections."),
    )
    for pattern, rule_kind, rule_reason, rule_advice in _RULES:
        if pattern.search(lower):
            kind, reason, advice = rule_kind, rule_reason, rule_advice
            break
    return kind(
        reason,
        host=target.host,
        port=target.port,
        database=target.database,
        advice=advice,
        detail=_server_detail(message),
    )


def _server_detail(message: str) -> str:
    """The useful part of a libpq message: the server's FATAL text, or its first line."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    if "FATAL:" in first:
        return first.split("FATAL:", 1)[1].strip()
    if "failed:" in first:
        return first.rsplit("failed:", 1)[1].strip()
    return first


def scrub(text: str, password: str | None) -> str:
    """Remove a password from text that a driver or server produced."""
    if password:
        # Also the forms it takes inside a URL, should a message quote one.
        plain = str(password)
        for form in {plain, quote(plain), quote(plain, safe=""), quote_plus(plain)}:
            text = text.replace(form, "***")
    return text

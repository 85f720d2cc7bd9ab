"""Engines for a database URL: a small pool, psycopg 3, and errors an operator can act on.

Nothing here lets a password escape: URLs are shown through :func:`safe_url`, driver
messages are scrubbed, and our errors are raised outside the driver's ``except``
block so no chained exception carries the original text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from sqlmig.errors import (
    AuthenticationError,
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
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def parse_url(database_url: str | URL) -> URL:
    """Parse and normalise a PostgreSQL URL to the psycopg 3 driver, without connecting."""
    if isinstance(database_url, URL):
        url = database_url
    else:
        text = database_url.strip()
        parsed: URL | None
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError):
            parsed = None
        if parsed is None:
            # Raised here, not inside the except block: SQLAlchemy's message quotes the
            # whole URL, password included, and must not ride along as __context__.
            raise InvalidURLError(
                f"malformed database URL {_mask_unparsed(text)!r}: expected "
                "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
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
    return url.set(drivername=DRIVER)


def safe_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``."""
    if isinstance(url, str):
        try:
            return make_url(url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            return _mask_unparsed(url)
    return url.render_as_string(hide_password=True)


def _mask_unparsed(text: str) -> str:
    """Mask anything between ``://user:`` and ``@`` in a string SQLAlchemy cannot parse."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "<unparseable URL>" if "@" in text else text
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return text
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}" if ":" in userinfo else text


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


def new_engine(database_url: str | URL, *, pool_size: int = 5, connect_timeout: int = 10) -> Engine:
    """An engine with at most ``pool_size`` connections, checked with a ping before return.

    The pool never overflows: a migration tool must not surprise a database with
    more sessions than it was told to use.
    """
    url = parse_url(database_url)
    connect_args: dict[str, object] = {"connect_timeout": connect_timeout, **KEEPALIVES}
    if "application_name" not in url.query:
        connect_args["application_name"] = APPLICATION_NAME
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    failure = ping(engine)
    if failure is not None:
        engine.dispose()
        raise failure
    return engine


def ping(engine: Engine) -> DatabaseUnavailableError | None:
    """Run ``SELECT 1``; return (not raise) the classified error so no driver text is chained."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
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
        text = text.replace(str(password), "***")
    return text

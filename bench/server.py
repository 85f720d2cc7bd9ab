"""The bench's PostgreSQL: an admin URL, fresh databases on it, and URLs for each tool.

``SQLMIG_BENCH_DATABASE_URL`` (an admin URL on which the bench may create and drop
databases) when set, else an embedded PostgreSQL 16 from pgserver started once in a
temporary directory, listening only on a Unix socket.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import urllib.parse
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import URL, make_url

ENV_URL = "SQLMIG_BENCH_DATABASE_URL"


@dataclass
class Server:
    """A running PostgreSQL with an admin URL, and how to let it go."""

    source: str
    admin: URL
    stop: Callable[[], None]

    def version(self) -> str:
        with psycopg.connect(libpq(self.admin)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def settings(self, *names: str) -> dict[str, str]:
        with psycopg.connect(libpq(self.admin)) as conn:
            return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}  # type: ignore[index]


def start() -> Server:
    """The server named by SQLMIG_BENCH_DATABASE_URL, or a new embedded one."""
    url = os.environ.get(ENV_URL)
    if url:
        admin = make_url(url)
        with psycopg.connect(libpq(admin), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return Server(f"{ENV_URL} ({admin.render_as_string(hide_password=True)})", admin, _noop)
    return _embedded()


def _noop() -> None:
    pass


def _embedded() -> Server:
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    datadir = tempfile.mkdtemp(prefix="sqlmig-bench-pg-")
    # pgserver logs its pg_ctl calls on stdout and stderr; the bench's output is its own.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        server = pgserver.get_server(datadir, cleanup_mode="stop")

    def stop() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)

    return Server("embedded PostgreSQL (pgserver, Unix socket)", make_url(server.get_uri()), stop)


def libpq(url: URL) -> str:
    """The URL for psycopg and libpq (no +driver)."""
    return _render(url.set(drivername="postgresql"))


def sqlalchemy_url(url: URL) -> str:
    """The URL for SQLAlchemy (alembic) and yoyo: postgresql+psycopg, psycopg 3."""
    return _render(url.set(drivername="postgresql+psycopg"))


def dbmate_url(url: URL) -> str:
    """The URL for dbmate (Go, lib/pq): ``postgres://user@host:port/db?sslmode=disable``,
    or with a Unix socket no host and ``socket=DIR`` (dbmate's own parameter). dbmate
    asks for TLS unless told not to, so ``sslmode`` is ``disable`` unless the URL says."""
    query = {k: str(v) for k, v in url.query.items() if k not in ("host", "port")}
    host = url.host or url.query.get("host")
    if isinstance(host, tuple):
        host = host[0]
    if host and str(host).startswith("/"):
        query["socket"] = str(host)
        url = url._replace(host=None)
    query.setdefault("sslmode", "disable")
    base = _render(url.set(drivername="postgres", query={}))
    return f"{base}?{urllib.parse.urlencode(query, safe='/')}"


def _render(url: URL) -> str:
    if url.password == "":
        # pgserver's "postgres:@": yoyo reads it as a password. (URL.set ignores None.)
        url = url._replace(password=None)
    return url.render_as_string(hide_password=False)


def checkpoint(conn: psycopg.Connection) -> None:
    """Flush what earlier runs left dirty (a dropped database of 1,000 tables, say), so
    that no run pays for the one before it. Needs a superuser or pg_checkpoint."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def on_database(admin: URL, name: str) -> URL:
    return admin.set(database=name)


@contextlib.contextmanager
def fresh_database(admin: URL, *, prefix: str = "bench", setup: str = "") -> Iterator[URL]:
    """Create a uniquely named empty database (``setup`` run in it), yield its URL, then
    drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        if setup:
            with psycopg.connect(libpq(on_database(admin, name)), autocommit=True) as inside:
                inside.execute(setup)
        checkpoint(conn)
    try:
        yield on_database(admin, name)
    finally:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

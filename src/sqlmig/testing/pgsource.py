"""Where tests get a real PostgreSQL: the first source that works.

1. ``SQLMIG_TEST_DATABASE_URL``: an admin URL on which each test gets its own database.
2. A PostgreSQL 16 container through testcontainers, when a Docker engine answers.
3. An embedded PostgreSQL 16 from pgserver, started once in a temporary directory.

sqlmig's own tests and the pytest plugin share this chain. testcontainers and
pgserver are optional: when no source works, the error says what to install.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ENV_URL = "SQLMIG_TEST_DATABASE_URL"

INSTALL_HINT = (
    f"set {ENV_URL} to an admin URL of a PostgreSQL server (each test database is "
    "created and dropped on it), or pip install pgserver for an embedded PostgreSQL, "
    "or pip install 'testcontainers[postgres]' with Docker running"
)


@dataclass
class Source:
    """A running PostgreSQL with an admin URL, and how to let it go."""

    name: str
    admin_url: str
    stop: Callable[[], None] = lambda: None


class NoDatabaseError(RuntimeError):
    """No source gave a PostgreSQL; the message lists why each one failed."""


@dataclass
class Starters:
    """The three ways to get a server; replaced by fakes in the unit tests."""

    from_url: Callable[[str], Source] = field(default=lambda url: from_url(url))
    docker_available: Callable[[], bool] = field(default=lambda: docker_available())
    container: Callable[[], Source] = field(default=lambda: start_container())
    embedded: Callable[[], Source] = field(default=lambda: start_embedded())


def choose_source(env: Mapping[str, str], starters: Starters | None = None) -> Source:
    """The first source that works, or NoDatabaseError saying why each failed."""
    starters = starters or Starters()
    failures: list[str] = []
    url = env.get(ENV_URL)
    if url:
        try:
            return starters.from_url(url)
        except Exception as exc:
            failures.append(f"{ENV_URL}: {type(exc).__name__}: {exc}")
    else:
        failures.append(f"{ENV_URL}: not set")
    if starters.docker_available():
        try:
            return starters.container()
        except Exception as exc:
            failures.append(f"testcontainers: {type(exc).__name__}: {exc}")
    else:
        failures.append("testcontainers: no Docker engine answers")
    try:
        return starters.embedded()
    except Exception as exc:
        failures.append(f"pgserver: {type(exc).__name__}: {exc}")
    raise NoDatabaseError(
        "no PostgreSQL for the tests:\n  " + "\n  ".join(failures) + f"\nTo fix: {INSTALL_HINT}."
    )


def from_url(url: str) -> Source:
    with psycopg.connect(libpq_url(url), connect_timeout=5) as conn:
        conn.execute("SELECT 1")
    return Source(ENV_URL, url)


def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # not installed, no socket, no permission: all mean "no Docker"
        return False


def start_container() -> Source:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", driver=None)
    container.start()
    return Source("testcontainers (postgres:16)", container.get_connection_url(), container.stop)


def start_embedded() -> Source:
    with warnings.catch_warnings():
        # platformdirs, under pgserver, warns where XDG_RUNTIME_DIR is unset (containers, CI).
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

        datadir = tempfile.mkdtemp(prefix="sqlmig-pg-")
        server = pgserver.get_server(datadir, cleanup_mode="stop")

    def stop() -> None:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)

    return Source("pgserver (embedded PostgreSQL 16)", server.get_uri(), stop)


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style URL as a libpq URL (drop any +driver suffix)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, then drop it.

    Empty, or a copy of the database named ``template``: copying a migrated
    database costs what creating an empty one does, however many migrations made it.
    """
    name = f"sqlmig_test_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(create)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def database_name(url: str) -> str:
    """The database a URL names."""
    return str(make_url(url).database)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}

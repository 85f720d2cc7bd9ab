"""Alembic's environment for a test case, online and offline as usual.

The URL is ``Config.attributes["url"]`` (a test in this process) or
``$CASE_DATABASE_URL`` (a test running Alembic in another interpreter); plain
``postgresql://`` URLs get the driver installed next to SQLAlchemy: psycopg 3 with
SQLAlchemy 2, psycopg2 with 1.4.
"""

import os

import sqlalchemy
from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

config = context.config
DRIVER = "psycopg" if sqlalchemy.__version__.startswith("2") else "psycopg2"


def url():
    given = make_url(config.attributes.get("url") or os.environ["CASE_DATABASE_URL"])
    return given.set(drivername="postgresql+" + DRIVER)


def run_migrations_offline():
    context.configure(url="postgresql://", literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = create_engine(url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                version_table=config.get_main_option("version_table", "alembic_version"),
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

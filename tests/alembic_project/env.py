"""Alembic's environment for the sample project, online and offline as usual.

The URL is taken from ``Config.attributes["url"]`` (tests), ``-x url=...``, then
``$DATABASE_URL``, then ``sqlalchemy.url``; plain ``postgresql://`` URLs are run
through psycopg 3, the driver installed next to sqlmig.
"""

from __future__ import annotations

import os

from alembic import context
from alembic_project.models import Base
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = (
        config.attributes.get("url")
        or context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

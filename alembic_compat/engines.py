"""One owner per engine: the caller's is used as it is, one made from a URL is disposed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from sqlmig.database import new_engine


@contextmanager
def engine_for(database: Engine | str | URL) -> Iterator[Engine]:
    """The caller's Engine, never disposed, or a sqlmig engine for a URL, disposed after."""
    if isinstance(database, Engine):
        yield database
        return
    engine = new_engine(database)
    try:
        yield engine
    finally:
        engine.dispose()

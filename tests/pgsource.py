"""Where the integration tests get a real PostgreSQL: the chain in
:mod:`sqlmig.testing.pgsource`, which the pytest plugin offers applications too."""

from sqlmig.testing.pgsource import (
    ENV_URL,
    NoDatabaseError,
    Source,
    Starters,
    choose_source,
    fresh_database,
    in_ci,
)

__all__ = [
    "ENV_URL",
    "NoDatabaseError",
    "Source",
    "Starters",
    "choose_source",
    "fresh_database",
    "in_ci",
]

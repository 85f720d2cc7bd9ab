"""sqlmig: raw-SQL schema migrations for PostgreSQL, built on SQLAlchemy Core.

The public names load on first use, so ``import sqlmig`` (and ``sqlmig --help``) does
not import SQLAlchemy or psycopg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The module that defines each public name.
_MODULES = {
    "sqlmig.migrator": ("Migrator", "RepairAction", "Baseline", "AdoptResult"),
    "sqlmig.apply": ("MigrationResult", "RunResult"),
    "sqlmig.database": ("new_engine", "safe_url"),
    "sqlmig.locking": ("advisory_lock", "AdvisoryLock"),
    "sqlmig.lease": ("LeaseLock",),
    "sqlmig.tracker": ("Tracker",),
    "sqlmig.validation": ("validate_files",),
    "sqlmig.outcome": ("Direction", "Outcome"),
    "sqlmig.events": ("Event", "MigrationStarted", "MigrationDone", "LockWaiting"),
    "sqlmig.errors": (
        "SqlmigError",
        "UsageError",
        "InvalidURLError",
        "DatabaseUnavailableError",
        "LockError",
        "LockTimeoutError",
        "LockLostError",
        "LockHeldError",
        "TransactionPoolerError",
        "ValidationError",
        "MigrationFileError",
        "StateError",
        "AlreadyTrackedError",
        "AdoptError",
        "MigrationError",
        "ConnectionLostError",
        "ConcurrentRunError",
        "QueryError",
        "MigrationInterrupted",
    ),
}
_PUBLIC = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "AdoptError",
    "AdoptResult",
    "AdvisoryLock",
    "AlreadyTrackedError",
    "Baseline",
    "ConcurrentRunError",
    "ConnectionLostError",
    "DatabaseUnavailableError",
    "Direction",
    "Event",
    "InvalidURLError",
    "LeaseLock",
    "LockError",
    "LockHeldError",
    "LockLostError",
    "LockTimeoutError",
    "LockWaiting",
    "MigrationDone",
    "MigrationError",
    "MigrationFileError",
    "MigrationInterrupted",
    "MigrationResult",
    "MigrationStarted",
    "Migrator",
    "Outcome",
    "QueryError",
    "RepairAction",
    "RunResult",
    "SqlmigError",
    "StateError",
    "Tracker",
    "TransactionPoolerError",
    "UsageError",
    "ValidationError",
    "__version__",
    "advisory_lock",
    "new_engine",
    "safe_url",
    "validate_files",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'sqlmig' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from sqlmig.apply import MigrationResult, RunResult
    from sqlmig.database import new_engine, safe_url
    from sqlmig.errors import (
        AdoptError,
        AlreadyTrackedError,
        ConcurrentRunError,
        ConnectionLostError,
        DatabaseUnavailableError,
        InvalidURLError,
        LockError,
        LockHeldError,
        LockLostError,
        LockTimeoutError,
        MigrationError,
        MigrationFileError,
        MigrationInterrupted,
        QueryError,
        SqlmigError,
        StateError,
        TransactionPoolerError,
        UsageError,
        ValidationError,
    )
    from sqlmig.events import Event, LockWaiting, MigrationDone, MigrationStarted
    from sqlmig.lease import LeaseLock
    from sqlmig.locking import AdvisoryLock, advisory_lock
    from sqlmig.migrator import AdoptResult, Baseline, Migrator, RepairAction
    from sqlmig.outcome import Direction, Outcome
    from sqlmig.tracker import Tracker
    from sqlmig.validation import validate_files

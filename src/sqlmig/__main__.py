"""``python -m sqlmig``."""

from sqlmig.cli import entry

entry()

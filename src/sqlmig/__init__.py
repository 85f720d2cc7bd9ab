"""sqlmig: raw-SQL schema migrations for PostgreSQL, built on SQLAlchemy Core."""

__version__ = "0.1.0"

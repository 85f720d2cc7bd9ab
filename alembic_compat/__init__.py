"""The bridge between Alembic and sqlmig's plain-SQL migrations.

Installed with ``pip install 'sqlmig[alembic]'``; its commands appear as
``sqlmig alembic ...``. Each capability is one module with one library function:

- :func:`alembic_compat.history.import_history`: an Alembic history as sqlmig files;
- :func:`alembic_compat.adopt.adopt`: a database Alembic migrated, taken over by sqlmig;
- :func:`alembic_compat.compare.draft`: a migration drafted from the ORM models;
- :func:`alembic_compat.compare.check`: the differences between models and database.

Importing this package imports neither Alembic nor SQLAlchemy; the modules do.
"""

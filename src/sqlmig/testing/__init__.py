"""Testing migrations with pytest: a real PostgreSQL, fixtures, and ready-made checks.

The pytest plugin (:mod:`sqlmig.testing.plugin`, the ``pytest11`` entry point) stays
inert until a project turns it on. :mod:`sqlmig.testing.checks` holds the checks as
plain functions, :mod:`sqlmig.testing.pgsource` the chain that finds a server.
"""

"""The project's records, read in this process or in the project's own interpreter.

``--python PATH`` runs :mod:`alembic_compat.project` as a script in another
interpreter, the one that has the project's dependencies (its own SQLAlchemy,
1.4 or 2, and Alembic), and reads its records line by line as they are written.
Without it the same function runs here. Either way the caller gets the same dicts.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic_compat import project
from alembic_compat.errors import AlembicConfigError

# Run project.py by path, without its folder on sys.path (where this package's module
# names would shadow the project's), and with the current directory on it, as
# `python -c` has.
_BOOTSTRAP = (
    "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
_STDERR_SHOWN = 4000  # the end of what the interpreter printed, when it fails
_PROJECT_OPTIONS = ("alembic_ini", "script_location", "name")


def records(
    config_file: str | None,
    *,
    script_location: str | None,
    section: str,
    python: str | os.PathLike[str] | None,
) -> Iterator[dict[str, Any]]:
    """The project's records (see :func:`alembic_compat.project.read_project`).

    Raises AlembicConfigError when the project cannot be read, or the interpreter
    cannot run or stops without saying why.
    """
    if python is None:
        try:
            yield from project.read_project(
                config_file, script_location=script_location, section=section
            )
        except project.ProjectError as exc:
            raise AlembicConfigError(str(exc), options=_PROJECT_OPTIONS) from None
        return
    arguments = {"config_file": config_file, "script_location": script_location, "section": section}
    yield from _from_interpreter(Path(python), json.dumps(arguments))


def _from_interpreter(python: Path, arguments: str) -> Iterator[dict[str, Any]]:
    command = [str(python), "-c", _BOOTSTRAP, project.__file__, arguments]
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        except OSError as exc:
            raise AlembicConfigError(
                f"python={python}: cannot run it: {exc.strerror or exc}; pass the path of "
                "the project's Python interpreter, e.g. python=.venv/bin/python",
                options=("python",),
            ) from None
        assert process.stdout is not None
        last: dict[str, Any] | None = None
        with process:
            for line in process.stdout:
                if not line.startswith('{"kind"'):
                    continue  # printed by the project's code below Python's sys.stdout
                last = json.loads(line)
                if last["kind"] != "error":
                    yield last
        if last is not None and last["kind"] == "error":
            raise AlembicConfigError(last["message"], options=_PROJECT_OPTIONS)
        if process.returncode != 0:
            stderr.seek(0)
            printed = stderr.read()[-_STDERR_SHOWN:].strip()
            raise AlembicConfigError(
                f"python={python} stopped (exit code {process.returncode}) before it had "
                "read the project; it needs Alembic, on Python 3.8 or newer. It printed:\n"
                + printed,
                options=("python",),
            )

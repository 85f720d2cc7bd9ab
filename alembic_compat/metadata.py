"""Finding the application's ORM ``MetaData`` from a ``package.module:attribute`` path."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from sqlalchemy import MetaData

from alembic_compat.errors import MetadataLoadError

_FORM = "package.module:attribute (for example myapp.models:Base.metadata)"


def load_metadata(path: str, *, search_path: Path | None = None) -> MetaData:
    """Import ``package.module`` and return its ``attribute`` (dotted names are followed).

    The attribute may be a ``MetaData`` or a class whose ``metadata`` is one (a
    declarative base). ``search_path`` (the command line passes the current
    directory) is put first on ``sys.path``, as Alembic's ``prepend_sys_path`` does.
    Raises MetadataLoadError saying which part was not found.
    """
    module_name, colon, attribute = path.partition(":")
    if not colon or not module_name.strip() or not attribute.strip():
        raise MetadataLoadError(f"path={path!r} is not of the form {_FORM}")
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
    module = _import(module_name.strip(), path)
    found: object = module
    walked = module_name.strip()
    for part in attribute.strip().split("."):
        if not hasattr(found, part):
            raise MetadataLoadError(
                f"path={path!r}: {walked} has no attribute {part!r}"
                + _suggestion(module, walked == module_name.strip())
            )
        found = getattr(found, part)
        walked += ("." if walked != module_name.strip() else ":") + part
    if isinstance(found, MetaData):
        return found
    if isinstance(found, type) and isinstance(getattr(found, "metadata", None), MetaData):
        return found.metadata  # type: ignore[attr-defined, no-any-return]
    raise MetadataLoadError(
        f"path={path!r} is a {type(found).__name__}, not a SQLAlchemy MetaData "
        "or a declarative base; point it at the models' MetaData, e.g. Base.metadata"
    )


def _import(module_name: str, path: str) -> object:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise MetadataLoadError(
                f"path={path!r}: module {module_name!r} not found (no module named "
                f"{exc.name!r}); run from the directory that holds the package, or add it "
                "to PYTHONPATH"
            ) from None
        raise MetadataLoadError(f"path={path!r}: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # the application's own import-time code failed
        raise MetadataLoadError(
            f"path={path!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _suggestion(module: object, at_module: bool) -> str:
    """Names in the module that would work, when the attribute was looked up on it."""
    if not at_module:
        return ""
    names = sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, MetaData) or _is_declarative_base(value)
    )
    if not names:
        return "; it defines no MetaData or declarative base"
    shown = ", ".join(names[:5])
    return f"; it has {shown}"


def _is_declarative_base(value: object) -> bool:
    """A class carrying the MetaData, other than a mapped model (which has a table)."""
    return (
        isinstance(value, type)
        and isinstance(getattr(value, "metadata", None), MetaData)
        and not hasattr(value, "__tablename__")
        and not hasattr(value, "__table__")
    )

"""Reading option values without pydantic, the same on every typer.

From 0.29, typer converts each parameter's value, the ``--help`` flag's included,
through a pydantic ``TypeAdapter`` built while the command line is parsed: importing
pydantic and building the adapters adds about 70 ms to every command (not to
``--help`` or ``--version``, which exit before), and its error messages are
pydantic's, not click's. sqlmig's parameters are plain (str, int, float, Path, an
Enum, bool), so :class:`App` gives each of them a small :class:`Converter` that does
what click's types did for typer 0.28, with click's messages. Anything else keeps
typer's own conversion; on typer 0.28 and older nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType


class App(typer.Typer):
    """A ``typer.Typer`` whose group and commands read values with :class:`Converter`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or Command, **kwargs)


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            read_plainly(param)

    def get_help_option(self, ctx: Any) -> Any:
        return read_plainly(super().get_help_option(ctx))


class Command(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            read_plainly(param)

    def get_help_option(self, ctx: Any) -> Any:
        return read_plainly(super().get_help_option(ctx))


def read_plainly(param: Any) -> Any:
    """Give ``param`` a :class:`Converter` when it is one typer would hand to pydantic."""
    convert = converter(param)
    if convert is not None:
        # typer >= 0.29 builds its pydantic conversion here on first use.
        param._runtime_param = convert
    return param


@dataclass(frozen=True)
class Converter:
    """Turns a parameter's raw value into its Python value, as typer's runtime param does."""

    convert: Callable[[Any], Any]

    def coerce(self, value: Any, param: Any, ctx: typer.Context) -> Any:
        if value is None:
            return None
        try:
            return self.convert(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None


def converter(param: Any) -> Converter | None:
    """A converter for a typer >= 0.29 parameter of a plain type; None for anything else
    (and on older typer, whose parameters carry click types instead)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not hasattr(param, "_runtime_param"):
        return None
    if param.multiple or param.nargs != 1:
        return None
    info = descriptor.parameter_info
    annotation = descriptor.annotation
    if getattr(info, "parser", None) is not None or getattr(info, "clamp", False):
        return None
    if annotation is str:
        return Converter(str)
    if annotation is bool:
        return Converter(_flag)
    if annotation in (int, float):
        return Converter(_number(annotation, info.min, info.max))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return Converter(_choice(list(annotation), info.case_sensitive))
    if annotation is Path and not _path_checks(info):
        return Converter(_path)
    return None


_BOOLEANS = {
    **dict.fromkeys(("1", "yes", "true", "on", "t", "y"), True),
    **dict.fromkeys(("0", "no", "false", "off", "f", "n", ""), False),
}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    state = _BOOLEANS.get(str(value).strip().lower())
    if state is None:
        known = ", ".join(sorted(_BOOLEANS))
        raise ValueError(f"{value!r} is not a valid boolean. Recognized values: {known}")
    return state


def _number(kind: type[Any], low: float | None, high: float | None) -> Callable[[Any], Any]:
    ranged = low is not None or high is not None
    name = {int: "int", float: "float"}[kind] + (" range" if ranged else "")
    if low is None:
        described = f"x<={high}"
    elif high is None:
        described = f"x>={low}"
    else:
        described = f"{low}<=x<={high}"

    def convert(value: Any) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid {name}.") from None
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(f"{number} is not in the range {described}.")
        return number

    return convert


def _choice(members: Sequence[Enum], case_sensitive: bool) -> Callable[[Any], Any]:
    def spelled(text: str) -> str:
        return text if case_sensitive else text.casefold()

    names = {spelled(str(member.value)): member for member in members}

    def convert(value: Any) -> Any:
        if isinstance(value, Enum) and value in members:
            return value
        member = names.get(spelled(str(value)))
        if member is None:
            raise ValueError(f"{value!r} is not one of {', '.join(map(repr, names))}.")
        return member

    return convert


def _path_checks(info: Any) -> bool:
    """Whether the option asks typer to check or transform the path."""
    return bool(
        info.exists
        or not info.file_okay
        or not info.dir_okay
        or info.writable
        or not info.readable
        or info.resolve_path
        or info.allow_dash
        or info.path_type is not None
    )


def _path(value: Any) -> Path:
    try:
        os.stat(value)
    except OSError:
        return Path(value)  # it need not exist
    if not os.access(value, os.R_OK):
        raise ValueError(f"Path {str(value)!r} is not readable.")
    return Path(value)

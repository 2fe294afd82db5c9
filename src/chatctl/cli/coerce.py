"""Typer's parameter coercion without pydantic, for the plain types chatctl's flags declare.

typer (0.2x) converts every parameter that is not a boolean flag with a pydantic
``TypeAdapter`` built the first time the parameter gets a value; importing pydantic and
building the adapters costs about 70 ms of every run, a third of ``chatctl send ROOM TEXT``
(see docs/performance.md, "Start-up"). After :func:`install`, each parameter whose type is
``str``, ``int``, ``float``, ``bool``, ``pathlib.Path`` or a list of those (optional or not,
with typer's ``min``/``max``) gets a converter that does the same checks with the same
messages; any other parameter keeps typer's own.

This is the one module that touches typer internals: ``typer.core._TyperParameter`` (its
``get_runtime_param``, ``_runtime_param`` and ``type_descriptor``) and
``typer._coercion.RuntimeParam``. ``tests/cli/test_cli_coerce.py`` fails when one of them
disappears; :func:`install` then leaves typer as it is.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

# typer >= 0.26 vendors click as typer._click (see chatctl.cli)
from typer._click import Context
from typer._click.exceptions import BadParameter

try:
    from typer._coercion import RuntimeParam
    from typer._param_types import coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - a typer without these: keep its own coercion
    _TyperParameter = None  # type: ignore[assignment,misc,unused-ignore]

_SCALARS = (str, int, float, bool, Path)
_INT = re.compile(r"([+-]?[0-9](?:_?[0-9])*)(?:\.0+)?")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def install() -> None:
    """Make typer convert plain parameters with :class:`_Plain` (idempotent): every
    parameter of every command, the ``--help`` option typer creates per command included."""
    if _TyperParameter is None or getattr(_TyperParameter, "_chatctl_plain", False):
        return
    typer_own = _TyperParameter.get_runtime_param

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None and _plain(self.type_descriptor):
            self._runtime_param = _Plain(
                self.type_descriptor.parameter_info, self.type_descriptor.annotation
            )
        return typer_own(self)

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
    _TyperParameter._chatctl_plain = True  # type: ignore[attr-defined]


def _plain(descriptor: Any) -> bool:
    """Whether :class:`_Plain` converts this parameter exactly as typer would."""
    info = descriptor.parameter_info
    if info.parser is not None or getattr(info, "click_type", None) is not None or info.clamp:
        return False
    if descriptor.file_annotation is not None:
        return False
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    if annotation is Path:
        return not (info.allow_dash or info.path_type is not None or info.resolve_path)
    return annotation in _SCALARS


if _TyperParameter is not None:

    @dataclass(frozen=True)
    class _Plain(RuntimeParam):
        """Converts str, int, float, bool and Path values (and lists of them) as typer's pydantic
        adapters do, with the same error messages."""

        def _coerce_value(self, value: Any, param: Any, ctx: Context) -> Any:
            annotation: Any = self.annotation
            if get_origin(annotation) is list:
                (item,) = get_args(annotation)
                items = value if isinstance(value, list | tuple) else [value]
                return [self._one(item, v, param, ctx) for v in items]
            return self._one(annotation, value, param, ctx)

        def _one(self, annotation: Any, value: Any, param: Any, ctx: Context) -> Any:
            try:
                if annotation is str:
                    return _text(value)
                if annotation is bool:
                    return _bool(value)
                if annotation is Path:
                    path = value if isinstance(value, Path) else Path(os.fsdecode(value))
                    return coerce_cli_path(
                        path, self.parameter_info, path_type=Path, param=param, ctx=ctx
                    )
                number = _int(value) if annotation is int else _float(value)
                return self._ranged(number)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

        def _ranged(self, number: float) -> float:
            low, high = self.parameter_info.min, self.parameter_info.max
            if low is not None and not number >= low:
                raise ValueError(f"Input should be greater than or equal to {low}")
            if high is not None and not number <= high:
                raise ValueError(f"Input should be less than or equal to {high}")
            return number


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return str(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "":
        return False
    raise ValueError("Input should be a valid boolean, unable to interpret input")


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _INT.fullmatch(_text(value).strip())
    if match is None:  # pydantic's lax int: "+3", "1_000" and "3.0", not "3.5" or fullwidth digits
        raise ValueError("Input should be a valid integer, unable to parse string as an integer")
    return int(match[1])


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _text(value).strip()
    try:
        if not text.isascii():  # float() reads fullwidth digits; pydantic does not
            raise ValueError(text)
        return float(text)
    except ValueError:
        raise ValueError(
            "Input should be a valid number, unable to parse string as a number"
        ) from None

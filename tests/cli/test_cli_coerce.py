"""chatctl.cli.coerce: typer's conversions without pydantic, checked against typer's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import BadParameter
from typer._coercion import AdapterRuntimeParam, RuntimeParam, resolve_type_descriptor
from typer.core import _TyperParameter
from typer.models import OptionInfo

from chatctl.cli import coerce

CASES: list[tuple[Any, dict[str, Any], list[Any]]] = [
    (int, {}, ["3", " 7 ", "3.0", "-2", "1.5", "x", "", "1e3", "inf", "+3", "1_000", "3."]),
    (int, {}, ["0x10", "\uff11\uff12", "-0.0", ".0"]),
    (int, {"min": 1, "max": 100}, ["1", "0", "100", "101", "50"]),
    (float, {}, ["0.5", "-1", "1e1", "inf", "nan", "x", "", "1_0", "0x1", "\uff11", "1e999"]),
    (float, {"min": 0}, ["0", "-1", "nan", "inf", "2.5"]),
    (str, {}, ["abc", "", " spaced "]),
    (bool, {}, ["true", "FALSE", "1", "0", "yes", "off", "", "maybe"]),
    (Path, {}, ["/tmp", "relative/file"]),
    (list[str], {}, [["a", "b"], []]),
    (list[int], {}, [["1", "2"], ["1", "x"]]),
]


def _outcome(runtime: RuntimeParam, value: Any) -> tuple[str, Any]:
    try:
        return "ok", runtime._coerce_value(value, param=None, ctx=None)  # type: ignore[arg-type]
    except BadParameter as exc:
        return "error", exc.message


@pytest.mark.parametrize(("annotation", "limits", "values"), CASES)
def test_plain_conversion_matches_typers_pydantic_adapter(
    annotation: Any, limits: dict[str, Any], values: list[Any]
) -> None:
    info = OptionInfo(**limits)
    descriptor = resolve_type_descriptor(annotation, info)
    assert coerce._plain(descriptor)
    from typer import _adapters

    adapter = _adapters.try_build_adapter(annotation, info)
    assert adapter is not None
    theirs = AdapterRuntimeParam(info, annotation, adapter=adapter)
    ours = coerce._Plain(info, annotation)
    for value in values:
        a, b = _outcome(theirs, value), _outcome(ours, value)
        if a[0] == "ok" and isinstance(a[1], float) and a[1] != a[1]:
            assert b[0] == "ok" and b[1] != b[1], value  # nan
            continue
        assert b == a, value


def test_typer_internals_it_relies_on_are_there() -> None:
    """Fails when a typer upgrade removes what chatctl.cli.coerce patches."""
    assert callable(_TyperParameter.get_runtime_param)
    assert getattr(_TyperParameter, "_chatctl_plain", False)  # installed by chatctl.cli
    app = typer.Typer(add_completion=False)

    @app.command()
    def cmd(n: int = 1) -> None:  # pragma: no cover - never run
        del n

    command = typer.main.get_command(app)
    (param,) = command.params
    assert hasattr(param, "_runtime_param") and hasattr(param, "type_descriptor")
    assert isinstance(param.get_runtime_param(), coerce._Plain)  # type: ignore[attr-defined]


def test_types_it_does_not_know_keep_typers_conversion() -> None:
    from enum import Enum

    class Colour(Enum):
        RED = "red"

    for annotation, info in [
        (Colour, OptionInfo()),
        (float, OptionInfo(min=0, clamp=True)),
        (Path, OptionInfo(resolve_path=True)),
        (str, OptionInfo(parser=str.upper)),
    ]:
        assert not coerce._plain(resolve_type_descriptor(annotation, info))

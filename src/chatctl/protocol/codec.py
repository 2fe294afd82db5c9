"""Strict JSON both ways: :func:`dumps` writes one frame, :func:`loads` reads one.

``NaN``, ``Infinity`` and numbers too large for a double are refused in both directions, so
nothing read here can make :func:`dumps` fail and ``JSON.parse`` in a browser reads every
frame the server writes.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn


def dumps(obj: dict[str, Any]) -> str:
    """Serialise one frame: compact, UTF-8 kept as is, and strict JSON: a NaN or infinite float
    raises ``ValueError`` instead of writing ``NaN``/``Infinity``, which ``JSON.parse`` rejects."""
    return ENCODER.encode(obj)


def loads(data: str) -> Any:
    """Parse strict JSON: ``NaN``, ``Infinity`` and numbers too large for a double (``1e999``)
    raise ``ValueError``, so nothing parsed here can make :func:`dumps` fail. (A client reads
    server frames with plain ``json.loads``: the server never writes those, and a hook per
    float would slow every ``ts``.)"""
    return _DECODER.decode(data)


def encodable(obj: dict[str, Any]) -> bool:
    """True when ``obj`` serialises to valid UTF-8 (no lone surrogates anywhere in it)."""
    try:
        dumps(obj).encode()
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is too large for a double")
    return value


#: Built once: json.dumps/json.loads with options build a new encoder/decoder at every call.
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def list_field(obj: dict[str, Any], key: str) -> list[Any]:
    """``obj[key]`` as a list (``[]`` when absent); ``TypeError`` when it is something else."""
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"{key} is not a list")
    return value


def number_field(obj: dict[str, Any], key: str) -> float:
    """``obj[key]`` as a float; ``KeyError`` when absent, ``TypeError`` when not a number."""
    value = obj[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{key} is not a number")
    return float(value)

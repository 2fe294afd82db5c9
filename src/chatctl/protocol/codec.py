"""Strict JSON both ways: :func:`dumps` writes one frame, :func:`loads` reads one.

``NaN``, ``Infinity`` and numbers too large for a double are refused in both directions, so
nothing read here can make :func:`dumps` fail and ``JSON.parse`` in a browser reads every
frame the server writes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: dict[str, Any]) -> str:
    """Serialise one frame: compact, UTF-8 kept as is, and strict JSON: a NaN or infinite float
    raises ``ValueError`` instead of writing ``NaN``/``Infinity``, which ``JSON.parse`` rejects.

    orjson writes a non-finite float as ``null``; so a frame with a ``null`` in it (rare: the
    frames leave absent fields out) is checked with the standard library's strict encoder."""
    try:
        out = orjson.dumps(obj)
    except TypeError as exc:  # lone surrogates, integers beyond 64 bits, unknown types
        raise ValueError(str(exc)) from None
    if b"null" in out:
        ENCODER.encode(obj)  # raises ValueError on NaN and infinities
    return out.decode()


def loads(data: str) -> Any:
    """Parse strict JSON: ``NaN``, ``Infinity`` and numbers too large for a double (``1e999``)
    raise ``ValueError``, so nothing parsed here can make :func:`dumps` fail; so do a
    ``\\u`` escape of a lone surrogate (no UTF-8 can carry it) and a byte-order mark.
    Integers beyond 64 bits are read as floats. orjson (chosen by measurement:
    docs/performance.md, issue 27) is ~10x the standard library's strict decoder."""
    return orjson.loads(data)  # its JSONDecodeError is a ValueError


def encodable(obj: dict[str, Any]) -> bool:
    """True when ``obj`` serialises to valid UTF-8 (no lone surrogates anywhere in it)."""
    try:
        orjson.dumps(obj)
    except TypeError:  # orjson refuses a str that is not valid UTF-8
        return False
    return True


#: Built once (json.dumps with options builds a new encoder at every call): the strict check
#: behind :func:`dumps`, and what writes a string's JSON where a frame is spliced.
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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

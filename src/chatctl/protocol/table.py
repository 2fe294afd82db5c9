"""The frame table: every frame type, both directions, and the two parsers that read it.

:data:`CLIENT_FRAMES` and :data:`SERVER_FRAMES` map a ``type`` to its frame class; they are
built from the unions ``ClientFrame`` (in :mod:`~chatctl.protocol.client`) and
``ServerFrame`` (in :mod:`~chatctl.protocol.server`), so a new frame type is its class and
its name in that union, in one module. docs/protocol.md documents each type and the web page
(``web/app.js``) has a handler for each server type: tests fail when one is missing.

:func:`parse_client_frame` is the server's read of a client frame; :func:`parse_server_frame`
a client's read of a server frame. :func:`peek_type` finds a frame's ``type`` without
decoding the rest when ``type`` is the first key (as the chatctl server writes it), so a
client can skip what it does not need (``send`` skips the room's messages) for a fraction of
a decode; it returns None for any other order or spacing, and the frame is then decoded in
full: the field order decides how fast a frame is read, never how it is understood.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import orjson

from chatctl.protocol.client import ClientFrame, client_id_of
from chatctl.protocol.codec import encodable, loads
from chatctl.protocol.errors import ErrorCode, ProtocolError
from chatctl.protocol.rules import MAX_MESSAGE_CHARS
from chatctl.protocol.server import ServerFrame, Unknown

CLIENT_FRAMES: dict[str, type[ClientFrame]] = {c.TYPE: c for c in get_args(ClientFrame)}
SERVER_FRAMES: dict[str, type[ServerFrame]] = {c.TYPE: c for c in get_args(ServerFrame)}

_TYPE_FIRST = re.compile(r'\{\s*"type"\s*:\s*"([a-z_]{1,32})"')


def parse_client_frame(data: str | bytes, *, max_chars: int = MAX_MESSAGE_CHARS) -> ClientFrame:
    """Parse and validate one frame a client sent; raise :class:`ProtocolError` if it is bad.

    A frame without ``type`` but with ``message`` is a chat message (what a browser sending
    ``{"message": "hi"}`` expects)."""
    if isinstance(data, bytes):
        raise ProtocolError(
            ErrorCode.INVALID_FRAME, "binary frames are not supported; send JSON text"
        )
    try:
        obj = loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "a frame must be a JSON object")
    if ("\\u" in data or not data.isascii()) and not encodable(obj):
        # "\ud800" is valid JSON but no UTF-8 can carry it: stored, it would poison history
        raise ProtocolError(
            ErrorCode.INVALID_JSON, "invalid JSON: a \\u escape encodes a lone surrogate"
        )
    ftype = obj.get("type", "message" if "message" in obj else None)
    cls = CLIENT_FRAMES.get(ftype) if isinstance(ftype, str) else None
    if cls is None:
        client_id = client_id_of(obj)  # a bad client_id is the first fault, as in from_dict
        if ftype is None:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: type", client_id=client_id)
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown frame type: {str(ftype)[:40]!r}", client_id=client_id
        )
    return cls.from_dict(obj, max_chars=max_chars)  # checks client_id first


def parse_server_frame(data: str | bytes) -> ServerFrame | Unknown:
    """Decode one server frame into its class (:class:`Unknown` for a type this client does
    not know: clients ignore those); raise :class:`ProtocolError` if it is not a JSON object
    with a string ``type`` or a field has the wrong type."""
    try:
        obj = orjson.loads(data)
    except ValueError as exc:
        raise ProtocolError(ErrorCode.INVALID_JSON, f"server sent invalid JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ProtocolError(ErrorCode.INVALID_FRAME, "server frame is not a typed JSON object")
    return server_frame_from_dict(obj)


def server_frame_from_dict(obj: dict[str, Any]) -> ServerFrame | Unknown:
    """A decoded server frame (a dict with a string ``type``) as its class."""
    ftype: str = obj["type"]
    cls = SERVER_FRAMES.get(ftype)
    if cls is None:
        return Unknown(ftype)
    try:
        return cls.from_dict(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"malformed {ftype} frame from the server: {exc}"
        ) from None


def type_name(frame: ServerFrame | Unknown) -> str:
    """The ``type`` a parsed frame had on the wire."""
    return frame.type if isinstance(frame, Unknown) else frame.TYPE


def peek_type(data: str | bytes) -> str | None:
    """The ``type`` of a frame whose first key is ``type``, without decoding it; None when
    that is not how the frame starts (decode it with :func:`parse_server_frame` to know)."""
    if isinstance(data, str):
        m = _TYPE_FIRST.match(data)
        if m is not None:
            return m[1]
    return None

"""The plain-text WebSocket mode, ``/ws/{room}?format=text``, for websocat and wscat users.

Each text frame the client sends is one chat message, as typed: no JSON (a trailing newline
is dropped; ``/me waves`` is an action). Each frame the server sends is one line of text:

- a message (live, or from the welcome's history): ``user: text``, an action ``* user text``;
- an error: ``! code: reason`` (``! message_too_long: message is 9000 characters; …``);
- nothing else: no welcome frame (its history comes as message lines), no acks, no presence,
  no pongs or rate-limit shares.

The hub keeps these connections apart from the JSON ones (``RoomMembers.plain``): a message
is encoded once per room for each form, so the JSON fan-out is unchanged. What the session
writes to one connection (its welcome, errors) is translated here from the JSON frame it
would have had (:func:`translate`): the plain mode is for people, not for throughput.
"""

from __future__ import annotations

from typing import Any

from chatctl.protocol import (
    ErrorCode,
    Message,
    ProtocolError,
    SendMessage,
)
from chatctl.protocol.codec import loads

#: the ``format`` parameter's values
FORMATS = ("json", "text")
#: what a typed line starts with to be an action
ACTION = "/me "


def parse(data: str | bytes, *, max_chars: int) -> SendMessage:
    """One frame of a plain-text client as the message it is; raise :class:`ProtocolError`
    as for a JSON ``message`` frame (too long, empty, NUL)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(
                ErrorCode.INVALID_FRAME, "a binary frame that is not UTF-8 text"
            ) from None
    text = data.removesuffix("\n").removesuffix("\r")
    fields: dict[str, Any] = {"message": text}
    if text.startswith(ACTION) and text[len(ACTION) :].strip():
        fields = {"message": text[len(ACTION) :], "kind": "action"}
    return SendMessage.from_dict(fields, max_chars=max_chars)


def message_line(message: Message) -> bytes:
    """The line a plain-text client is sent for ``message``."""
    if message.kind == "moderation":  # its text names who did it
        return f"* {message.text}".encode()
    if message.deleted:
        return f"{message.user}: (deleted)".encode()
    if message.kind == "action":
        return f"* {message.user} {message.text}".encode()
    return f"{message.user}: {message.text}".encode()


def translate(frame: bytes) -> list[bytes]:
    """The lines a plain-text client is sent instead of the JSON ``frame`` (often none)."""
    obj = loads(frame.decode())
    kind = obj.get("type")
    if kind == "message":
        return [message_line(Message.from_dict(obj))]
    if kind == "welcome":
        return [message_line(Message.from_dict(m)) for m in obj.get("history", ())]
    if kind == "error":
        return [f"! {obj.get('code')}: {obj.get('reason')}".encode()]
    return []

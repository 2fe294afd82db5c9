"""The chatctl wire protocol: every frame type in both directions, its parsing, validation and
serialisation, and the limits. docs/protocol.md is the prose version of it.

No I/O happens here: the package imports neither asyncio nor websockets, so every rule of the
protocol is tested with plain function calls. Every frame is one JSON object in one WebSocket
text frame, with a ``type`` field.

- :mod:`~.rules`: limits, room and user-name rules, the handshake's query parameters
- :mod:`~.errors`: :class:`CloseCode`, :class:`ErrorCode`, :data:`RETRYABLE_CODES`,
  :class:`ProtocolError`
- :mod:`~.codec`: strict JSON (:func:`dumps`, :func:`loads`)
- :mod:`~.client`: the frames a client sends (``message``, ``who``, ``ping``, ``refresh``,
  ``history``)
- :mod:`~.broadcast`: the frames fanned out to a room (``message``, ``presence``,
  ``presence_batch``)
- :mod:`~.server`: the frames answering one connection (``welcome``, ``ack``, ``error``,
  ``limits``, ``refreshed``, ``who``, ``pong``, ``history``)
- :mod:`~.moderation`: ``moderate`` and ``delete`` (client frames) and the
  :class:`Moderation` record of a room's ``moderation`` message
- :mod:`~.direct`: conversations (``@bob``), their internal rooms and the ``dm`` notice
- :mod:`~.table`: the table from ``type`` to class, both ways, and the two parsers

Adding a server frame type: its class (``TYPE``, ``to_dict``, ``frame``, ``from_dict``) and
its name in the ``ServerFrame`` union, both in ``server.py``; its section in
docs/protocol.md and its handler in ``web/app.js`` (tests fail without them); then the code
that sends it and each client that shows it (the Python clients receive it as an event
already: ``client/events.py`` needs no change).
"""

from __future__ import annotations

from chatctl.protocol.broadcast import (
    Message,
    MessageKind,
    Presence,
    PresenceBatch,
    PresenceEvent,
)
from chatctl.protocol.client import ClientFrame, HistoryRequest, Ping, Refresh, SendMessage, Who
from chatctl.protocol.codec import dumps, loads
from chatctl.protocol.direct import (
    DM_PREFIX,
    INBOX_PREFIX,
    NOTICES_ROOM,
    DmNotice,
    conversation_name,
    conversation_peer,
    dm_peer,
    dm_room,
    dm_users,
    inbox_room,
    is_conversation,
    relabel,
    valid_stored_room,
)
from chatctl.protocol.errors import RETRYABLE_CODES, CloseCode, ErrorCode, ProtocolError
from chatctl.protocol.moderation import (
    DURATION_RULE,
    MAX_REASON_CHARS,
    Delete,
    Moderate,
    ModerateAction,
    Moderation,
    Sanction,
    format_duration,
    parse_duration,
)
from chatctl.protocol.rules import (
    BLANK_CATEGORIES,
    DEFAULT_DEDUP_WINDOW,
    DEFAULT_HISTORY,
    DEFAULT_HISTORY_PAGE,
    DEFAULT_WELCOME_HISTORY,
    DISPLAY_RULE,
    EPOCH_RE,
    MAX_CLIENT_ID_CHARS,
    MAX_DISPLAY_CHARS,
    MAX_FRAME_BYTES,
    MAX_HISTORY_PAGE,
    MAX_MESSAGE_CHARS,
    MAX_SINCE_DIGITS,
    MAX_WELCOME_USERS,
    PROTOCOL_VERSION,
    RESERVED_PREFIX,
    ROOM_RE,
    ROOM_RULE,
    USER_FORBIDDEN_CATEGORIES,
    USER_RULE,
    clean_display,
    describe_char,
    is_blank,
    parse_epoch,
    parse_history,
    parse_since,
    user_problem,
    valid_room,
    valid_user,
)
from chatctl.protocol.server import (
    STORED_UNKNOWN,
    Ack,
    ErrorFrame,
    HistoryPage,
    Pong,
    RateLimit,
    Refreshed,
    ServerFrame,
    Unknown,
    UserList,
    Welcome,
)
from chatctl.protocol.table import (
    CLIENT_FRAMES,
    SERVER_FRAMES,
    parse_client_frame,
    parse_server_frame,
    peek_type,
    server_frame_from_dict,
    type_name,
)

__all__ = [
    "BLANK_CATEGORIES",
    "CLIENT_FRAMES",
    "DEFAULT_DEDUP_WINDOW",
    "DEFAULT_HISTORY",
    "DEFAULT_HISTORY_PAGE",
    "DEFAULT_WELCOME_HISTORY",
    "DISPLAY_RULE",
    "DM_PREFIX",
    "DURATION_RULE",
    "EPOCH_RE",
    "INBOX_PREFIX",
    "MAX_CLIENT_ID_CHARS",
    "MAX_DISPLAY_CHARS",
    "MAX_FRAME_BYTES",
    "MAX_HISTORY_PAGE",
    "MAX_MESSAGE_CHARS",
    "MAX_REASON_CHARS",
    "MAX_SINCE_DIGITS",
    "MAX_WELCOME_USERS",
    "NOTICES_ROOM",
    "PROTOCOL_VERSION",
    "RESERVED_PREFIX",
    "RETRYABLE_CODES",
    "ROOM_RE",
    "ROOM_RULE",
    "SERVER_FRAMES",
    "STORED_UNKNOWN",
    "USER_FORBIDDEN_CATEGORIES",
    "USER_RULE",
    "Ack",
    "ClientFrame",
    "CloseCode",
    "Delete",
    "DmNotice",
    "ErrorCode",
    "ErrorFrame",
    "HistoryPage",
    "HistoryRequest",
    "Message",
    "MessageKind",
    "Moderate",
    "ModerateAction",
    "Moderation",
    "Ping",
    "Pong",
    "Presence",
    "PresenceBatch",
    "PresenceEvent",
    "ProtocolError",
    "RateLimit",
    "Refresh",
    "Refreshed",
    "Sanction",
    "SendMessage",
    "ServerFrame",
    "Unknown",
    "UserList",
    "Welcome",
    "Who",
    "clean_display",
    "conversation_name",
    "conversation_peer",
    "describe_char",
    "dm_peer",
    "dm_room",
    "dm_users",
    "dumps",
    "format_duration",
    "inbox_room",
    "is_blank",
    "is_conversation",
    "loads",
    "parse_client_frame",
    "parse_duration",
    "parse_epoch",
    "parse_history",
    "parse_server_frame",
    "parse_since",
    "peek_type",
    "relabel",
    "server_frame_from_dict",
    "type_name",
    "user_problem",
    "valid_room",
    "valid_stored_room",
    "valid_user",
]

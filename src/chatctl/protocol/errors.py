"""Close codes, error codes and :class:`ProtocolError`, the one exception of the protocol.

``ProtocolError`` (a :class:`~chatctl.errors.ChatctlError`) is raised by
:func:`~chatctl.protocol.parse_client_frame` when a client frame breaks a rule (the server
answers it with an error frame, :meth:`ProtocolError.to_frame`), and by
:func:`~chatctl.protocol.parse_server_frame` when a server frame is malformed (a client
ignores it).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from chatctl.errors import ChatctlError


class CloseCode(IntEnum):
    """WebSocket close codes the server uses."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    POLICY_VIOLATION = 1008  # sustained abuse (e.g. rate limit)
    MESSAGE_TOO_BIG = 1009  # frame over the size limit
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # graceful drain, or the room's history was lost: resume
    TRY_AGAIN_LATER = 1013  # the broker is unavailable: reconnect with backoff
    TOKEN_EXPIRED = 4001  # the token's exp (plus leeway) passed without a refresh
    TOKEN_REVOKED = 4002  # the token was revoked (chatctl token revoke, POST /api/revoke)
    KICKED = 4003  # a moderator kicked the user from the room (the reason says why)
    BANNED = 4004  # a moderator banned the user from the room (the reason says why)
    SLOW_CONSUMER = 4008  # pending output over the per-connection bound


class ErrorCode(StrEnum):
    """The ``code`` of an error frame. The connection stays open after every one of them."""

    INVALID_JSON = "invalid_json"  # not JSON, or a number that is not finite (NaN, 1e999)
    INVALID_FRAME = "invalid_frame"  # JSON but not an object, or a binary frame
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"  # a field of the wrong type or form
    MESSAGE_TOO_LONG = "message_too_long"
    BROKER_UNAVAILABLE = "broker_unavailable"  # not stored (or "stored": "unknown"): retry
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"
    INVALID_TOKEN = "invalid_token"  # a refresh token that does not verify, or another user's
    FORBIDDEN = "forbidden"  # a refresh token that does not allow the connection's room, a
    # moderate frame without the mod claim, a delete of someone else's message
    READ_ONLY = "read_only"  # a message to a room the token may only read (read_rooms)
    MUTED = "muted"  # a message from a user a moderator muted in the room (until it ends)
    NOT_FOUND = "not_found"  # a delete of a message the room does not keep (or deleted)


#: Error codes after which a message is sent again (after ``retry_after``) with its client id;
#: the server stores no later message of the connection until the refused one comes back
#: (docs/protocol.md, "Order"). Every other code refuses a message for good.
RETRYABLE_CODES = frozenset(
    {ErrorCode.BROKER_UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.INTERNAL}
)


class ProtocolError(ChatctlError):
    """A frame broke a rule: ``code`` and a one-line ``reason``, and the ``client_id`` of the
    client frame at fault when it had one."""

    def __init__(self, code: ErrorCode, reason: str, *, client_id: str | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.client_id = client_id

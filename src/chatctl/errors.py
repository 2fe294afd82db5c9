"""The exception tree of chatctl.

::

    ChatctlError                  root; carries the exit status of the CLI
    ├── UsageError                bad flag, URL, room name, config (status 2)
    ├── ConfigError               unreadable config or secret/key file (status 2)
    ├── AuthError                 a token could not be made or was refused (status 3)
    │   ├── TokenError            raised by chatctl.tokens.verify: invalid token -> HTTP 401
    │   └── PermissionDenied      valid token, room not allowed -> HTTP 403
    ├── ConnectError              server unreachable (status 4), raised by the client core
    ├── DeliveryTimeout           not all messages acked in time (status 5)
    ├── WaitTimeout               join's --timeout ran out before --count/--once (status 5)
    ├── MessageRejected           the server answered a message with an error (status 6)
    ├── Removed                   a moderator kicked (4003) or banned (4004, or 403 for a
    │                             ban) the user from the room: raised by the client core (8)
    ├── OutputError               stdout cannot take the output (raised by client.output)
    │   ├── OutputFailed          writing failed: disk full, I/O error (status 7)
    │   └── OutputClosed          its reader went away, as ``| head`` (status 141)
    └── BrokerError               the broker cannot accept or serve a request right now
        └── BrokerUnavailable     the backing store (Redis) is down; retry later
            └── BrokerOutcomeUnknown  it failed after the write may have run: maybe stored

``ProtocolError`` lives in :mod:`chatctl.protocol` (no I/O module imports this one's
dependencies) and subclasses ``ChatctlError`` too.
"""

from __future__ import annotations

from chatctl.status import ExitStatus


class ChatctlError(Exception):
    """Root of every error chatctl raises on purpose."""

    status: ExitStatus = ExitStatus.ERROR


class UsageError(ChatctlError):
    status = ExitStatus.USAGE


class ConfigError(ChatctlError):
    status = ExitStatus.USAGE


class AuthError(ChatctlError):
    status = ExitStatus.AUTH


class TokenError(AuthError):
    """The token is missing, malformed, expired, badly signed or has wrong claims."""


class PermissionDenied(AuthError):
    """The token is valid but does not allow the room."""


class ConnectError(ChatctlError):
    status = ExitStatus.CONNECT


class DeliveryTimeout(ChatctlError):
    status = ExitStatus.TIMEOUT


class WaitTimeout(ChatctlError):
    status = ExitStatus.TIMEOUT


class MessageRejected(ChatctlError):
    status = ExitStatus.REJECTED


class Removed(ChatctlError):
    """A moderator closed the connection to ``room``: kicked (close code 4003: joining
    again is allowed) or banned (4004: refused until the ban ends). The client does not
    reconnect; ``str()`` is the line said to the user (``kicked from ops by alice: spam``)."""

    status = ExitStatus.REMOVED

    def __init__(self, text: str, *, room: str, code: int, reason: str = "") -> None:
        super().__init__(text)
        self.room = room
        self.code = code
        #: the server's close reason (who and why), as sent
        self.reason = reason

    @property
    def banned(self) -> bool:
        return self.code == 4004


class OutputError(ChatctlError):
    """stdout cannot take the output; the message (possibly empty: a closed pipe is no
    news to the one who closed it) says what was done."""


class OutputFailed(OutputError):
    status = ExitStatus.OUTPUT_FAILED


class OutputClosed(OutputError):
    status = ExitStatus.OUTPUT_CLOSED


class BrokerError(ChatctlError):
    """The broker could not do what was asked."""


class BrokerUnavailable(BrokerError):
    """The broker's backing store is unreachable; nothing was stored."""


class BrokerOutcomeUnknown(BrokerUnavailable):
    """The backing store failed after a write was sent and did not answer again in time: the
    message may be stored. Retry with the same client id (a repeat is acked as a duplicate)."""

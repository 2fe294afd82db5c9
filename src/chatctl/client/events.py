"""The typed events of :class:`chatctl.client.stream.RoomStream`, and its states.

State changes: :class:`Connecting` (each attempt), :class:`Connected`, :class:`Reconnecting`
(an attempt failed, the next in ``delay`` s), :class:`Disconnected` (a live connection
ended; offline until the next :class:`Connected`), :class:`Closed` (the last event).
The outbox's changes: :class:`Acked`, :class:`Deferred` (re-sent after a retryable error),
:class:`Rejected`. The token's (defined in :mod:`chatctl.tokens.renewal`): :class:`TokenRenewed`,
:class:`TokenProblem` (not renewed yet, still valid), :class:`TokenExpired` (refused by the
server: waiting for a new one). Server frames are :mod:`chatctl.protocol`'s types
(:func:`~chatctl.protocol.parse_server_frame`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chatctl.client.outbox import Pending
from chatctl.client.room import Resume
from chatctl.protocol import Ack, ErrorFrame, ServerFrame, Unknown, Welcome
from chatctl.tokens.renewal import TokenEvent as TokenEvent
from chatctl.tokens.renewal import TokenExpired as TokenExpired
from chatctl.tokens.renewal import TokenProblem as TokenProblem
from chatctl.tokens.renewal import TokenRenewed as TokenRenewed


class State(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    #: offline: waiting before the next attempt, or the connection just ended
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class Connecting:
    """A connection attempt starts (``attempt`` counts from 1 in each connect phase)."""

    url: str
    attempt: int


@dataclass(frozen=True)
class Reconnecting:
    """An attempt failed for ``reason``; the next starts in ``delay`` seconds."""

    reason: str
    delay: float


@dataclass(frozen=True)
class Connected:
    """A welcome arrived: ``resume`` holds the history not seen yet and whether messages were
    missed; ``resending`` unacked messages are being sent again, before any new one."""

    welcome: Welcome
    resume: Resume
    resending: int


@dataclass(frozen=True)
class Disconnected:
    """The connection ended for ``reason`` (offline); the stream reconnects."""

    reason: str


@dataclass(frozen=True)
class Closed:
    """:meth:`RoomStream.close` was called: the last event."""


@dataclass(frozen=True)
class Acked:
    """A message from the outbox was stored by the server."""

    pending: Pending
    ack: Ack


@dataclass(frozen=True)
class Deferred:
    """The server could not take a message now (``error``); it is re-sent after ``delay`` s."""

    pending: Pending
    error: ErrorFrame
    delay: float


@dataclass(frozen=True)
class Rejected:
    """The server refused a message for good; it left the outbox."""

    pending: Pending
    error: ErrorFrame


@dataclass(frozen=True)
class InvalidFrame:
    """The server sent a frame that is not valid JSON of a known shape (ignored by clients)."""

    reason: str


StateEvent = Connecting | Reconnecting | Connected | Disconnected | Closed
OutboxEvent = Acked | Deferred | Rejected
#: Any server frame the stream does not consume itself (it consumes ``welcome``, ``limits``
#: and ``refreshed``): a new server frame type reaches the clients with no change here.
#: ``Ack`` and ``ErrorFrame`` arrive bare only when they are about no message in the outbox.
FrameEvent = ServerFrame | Unknown | InvalidFrame
Event = StateEvent | OutboxEvent | FrameEvent | TokenEvent

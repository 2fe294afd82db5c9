"""Direct conversations between two users: how a client names one (``@bob``), the room the
server keeps it in (``+dm+alice+bob``), each user's inbox room (``+inbox+bob``) and the
``dm`` notice frame, and the room that carries the notices between nodes (``+dms``).
Plain functions, no I/O.

The server's own rooms start with :data:`~chatctl.protocol.rules.RESERVED_PREFIX`, which no
room name a client supplies may start with (:func:`~chatctl.protocol.rules.valid_room`): a
client reaches a conversation only as ``@USER``, which the server maps to the pair of the
authenticated user and ``USER``. The users' names are percent-encoded in the internal name
(``+`` is encoded, so the pair is unambiguous), which keeps it free of the braces, colons
and spaces the brokers' keys and the logs must not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, unquote

from chatctl.protocol.codec import ENCODER, dumps
from chatctl.protocol.rules import RESERVED_PREFIX, user_problem, valid_room

#: what a client puts before a user name to name the conversation with that user
CONVERSATION_MARK = "@"
#: the internal rooms of conversations and inboxes
DM_PREFIX = RESERVED_PREFIX + "dm+"
INBOX_PREFIX = RESERVED_PREFIX + "inbox+"
#: the one room every node listens to for the notices of all users (server/direct.py)
NOTICES_ROOM = RESERVED_PREFIX + "dms"


def is_conversation(name: str) -> bool:
    """True when a client-supplied ``name`` asks for a conversation (``@bob``)."""
    return name.startswith(CONVERSATION_MARK)


def conversation_peer(name: str) -> str:
    """``bob`` for ``@bob``; ``ValueError`` saying why when ``bob`` is not a valid user name."""
    peer = name.removeprefix(CONVERSATION_MARK)
    problem = user_problem(peer)
    if problem is not None:
        raise ValueError(f"invalid user name for a direct message: {problem}")
    return peer


def conversation_name(peer: str) -> str:
    """How a user names the conversation with ``peer``: ``@peer``."""
    return CONVERSATION_MARK + peer


def _enc(user: str) -> str:
    return quote(user, safe="")


def dm_room(a: str, b: str) -> str:
    """The internal room of the conversation between ``a`` and ``b`` (either order)."""
    first, second = sorted((a, b))
    return f"{DM_PREFIX}{_enc(first)}+{_enc(second)}"


def dm_users(room: str) -> tuple[str, str] | None:
    """The two users of a conversation's internal room, or None for any other name."""
    if not room.startswith(DM_PREFIX):
        return None
    first, plus, second = room[len(DM_PREFIX) :].partition("+")
    if not plus or not first or not second or "+" in second:
        return None
    users = (unquote(first), unquote(second))
    if any(user_problem(u) is not None for u in users) or dm_room(*users) != room:
        return None
    return users


def dm_peer(room: str, me: str) -> str | None:
    """The other user of conversation ``room`` for ``me`` (``me`` for a note to oneself);
    None when ``room`` is not a conversation of ``me``."""
    users = dm_users(room)
    if users is None or me not in users:
        return None
    return users[1] if users[0] == me else users[0]


def inbox_room(user: str) -> str:
    """The internal room where ``user`` is told of direct messages (server/inbox.py)."""
    return INBOX_PREFIX + _enc(user)


def valid_stored_room(room: str) -> bool:
    """A name a broker may store: a client's room name, or one of the server's own."""
    if valid_room(room) or room == NOTICES_ROOM:
        return True
    if room.startswith(INBOX_PREFIX):
        user = unquote(room[len(INBOX_PREFIX) :])
        return user_problem(user) is None and inbox_room(user) == room
    return dm_users(room) is not None


@dataclass(frozen=True)
class DmNotice:
    """Tells a user, on every connection of theirs, that ``user`` wrote to them: ``room`` is
    how they name the conversation (``@user``), ``unread`` how many of its messages they have
    not read (0: they have read it, on some connection). Sent after the welcome too, for each
    conversation with unread messages."""

    TYPE: ClassVar[str] = "dm"

    user: str
    room: str
    unread: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "user": self.user, "room": self.room, "unread": self.unread}

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DmNotice:
        unread = d.get("unread", 0)
        if not isinstance(unread, int) or isinstance(unread, bool) or unread < 0:
            raise TypeError("unread is not a count")
        user = str(d["user"])
        return cls(user, str(d.get("room") or conversation_name(user)), unread)


def relabel(frame: str, room: str, label: str) -> str:
    """``frame`` (a frame's JSON text, or several) with every ``room`` field naming the
    conversation's internal ``room`` naming it ``label`` (``@bob``) instead: a client is
    never sent an internal name. Only a field can match: inside a JSON string a quote is
    escaped."""
    if room == label:
        return frame
    return frame.replace(f'"room":{ENCODER.encode(room)}', f'"room":{ENCODER.encode(label)}')

"""What a verified token says: its user, the rooms it may read and write, the rooms it may only
read, the rooms it moderates (``mod``), whether it may administer the server, its id and when
it was issued and expires (and whether it allows direct messages: :func:`dms_allowed`).

:class:`Claims` is what :meth:`~chatctl.tokens.verify.Verifier.verify` returns and what the
server keeps for each connection (:meth:`Claims.slim`: its ``raw`` is then :data:`NO_RAW`).

Rooms: ``rooms`` (absent: every room) may be read and written; ``read_rooms`` only read. A
room that matches both is read-only: ``rooms: ["*"], read_rooms: ["announcements"]`` writes
everywhere but in ``announcements``. ``chatctl token create --read-room`` without ``--room``
writes ``rooms: []``, so that such a token reads its read-only rooms and nothing else.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from chatctl.errors import PermissionDenied

#: the ``raw`` of claims kept without their payload: one empty mapping for all of them
NO_RAW: Mapping[str, Any] = MappingProxyType({})

#: The furthest ``exp`` a token may have, in seconds from now (ten years).
MAX_TOKEN_LIFETIME = 10 * 365 * 86400


def _matches(room: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(room, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)  # a server keeps one per connection: no __dict__
class Claims:
    user: str
    #: globs of the rooms it reads and writes (None: every room)
    rooms: tuple[str, ...] | None
    exp: float | None
    #: the whole decoded payload (empty in the claims a server keeps: see NO_RAW)
    raw: Mapping[str, Any]
    #: globs of the rooms it may only read (``read_rooms``)
    read_rooms: tuple[str, ...] = ()
    #: the token's id (``jti``), what a revocation names
    jti: str | None = None
    #: when it was issued (``iat``), what a revocation of a user's tokens compares
    iat: float | None = None
    #: ``admin: true``: may use the server's administration routes (``POST /api/revoke``)
    admin: bool = False
    #: globs of the rooms where the user is a moderator (the ``mod`` claim; ``*``: every
    #: room): kick, mute, ban and delete others' messages there (docs/protocol.md)
    mod_rooms: tuple[str, ...] = ()

    def allows(self, room: str) -> bool:
        """Whether the token may join (read) ``room``."""
        if self.rooms is None or _matches(room, self.rooms):
            return True
        return bool(self.read_rooms) and _matches(room, self.read_rooms)

    def writes(self, room: str) -> bool:
        """Whether the token may send messages to ``room``."""
        if self.read_rooms and _matches(room, self.read_rooms):
            return False
        return self.rooms is None or _matches(room, self.rooms)

    def moderates(self, room: str) -> bool:
        """Whether the token is a moderator's in ``room``; never in a direct conversation
        (``+dm+…``, ``+inbox+…``: internal names no glob is meant to reach)."""
        return bool(self.mod_rooms) and not room.startswith("+") and _matches(room, self.mod_rooms)

    def check_room(self, room: str) -> None:
        if not self.allows(room):
            raise PermissionDenied(f"token for {self.user} does not allow room {room}")

    def check_write(self, room: str) -> None:
        if not self.writes(room):
            raise PermissionDenied(f"token for {self.user} only reads room {room}")

    def slim(self) -> Claims:
        """These claims without the decoded payload: what a server keeps per connection."""
        return self if self.raw is NO_RAW else dataclasses.replace(self, raw=NO_RAW)


def dms_allowed(raw: Mapping[str, Any]) -> bool:
    """False when a token's payload forbids direct messages (``"dms": false``)."""
    return raw.get("dms") is not False

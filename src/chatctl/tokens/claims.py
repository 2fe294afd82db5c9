"""What a verified token says: its user, the rooms it allows, when it expires (and whether it
allows direct messages: :func:`dms_allowed`).

:class:`Claims` is what :meth:`~chatctl.tokens.verify.Verifier.verify` returns and what the
server keeps for each connection (its ``raw`` is then :data:`NO_RAW`).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)  # a server keeps one per connection: no __dict__
class Claims:
    user: str
    rooms: tuple[str, ...] | None
    exp: float | None
    #: the whole decoded payload (empty in the claims a server keeps: see NO_RAW)
    raw: Mapping[str, Any]

    def allows(self, room: str) -> bool:
        if self.rooms is None:
            return True
        return any(fnmatch.fnmatchcase(room, pattern) for pattern in self.rooms)

    def check_room(self, room: str) -> None:
        if not self.allows(room):
            raise PermissionDenied(f"token for {self.user} does not allow room {room}")


def dms_allowed(raw: Mapping[str, Any]) -> bool:
    """False when a token's payload forbids direct messages (``"dms": false``)."""
    return raw.get("dms") is not False

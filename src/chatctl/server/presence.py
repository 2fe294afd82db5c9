"""Presence ticks of a room: how long a tick lasts for the room's size, and the frame that
tells a tick's held changes (``presence`` for one, ``presence_batch`` for more, minus a
user's own join). The hub (:mod:`chatctl.server.hub`) opens and ends the ticks."""

from __future__ import annotations

from chatctl.protocol import Presence, PresenceBatch, PresenceEvent
from chatctl.server.members import RoomMembers

#: Shortest presence tick: at most one presence frame per room per tick (a quiet room's first
#: change goes out at once and opens a tick).
PRESENCE_TICK = 0.1
#: Seconds of presence tick per member of the room (0.5 ms: 1 s for 2,000 members)...
PRESENCE_TICK_PER_MEMBER = 0.0005
#: ...up to this many seconds.
MAX_PRESENCE_TICK = 2.0
#: Seconds after a welcome or a ``who`` answer during which a connection is told the last
#: state of every user a tick touched, not only the tick's net changes: longer than the
#: pub/sub delay between a broker's user list and the presence events it already reflects.
FRESH_SECONDS = 1.0


def presence_tick(members: int) -> float:
    """Seconds between two presence frames of a room of ``members`` local connections."""
    return min(MAX_PRESENCE_TICK, max(PRESENCE_TICK, members * PRESENCE_TICK_PER_MEMBER))


def held_event(
    members: RoomMembers, changes: dict[str, PresenceEvent]
) -> Presence | PresenceBatch | None:
    """One frame for a tick's ``changes``: ``presence`` for one, ``presence_batch`` for more."""
    if not changes:
        return None
    if len(changes) == 1:
        [(user, change)] = changes.items()
        return Presence(members.name, user, change, members.presence_ts)
    joins = tuple(u for u, change in changes.items() if change == "join")
    leaves = tuple(u for u, change in changes.items() if change == "leave")
    return PresenceBatch(members.name, joins, leaves, members.presence_ts)


def frame_for(user: str, event: Presence | PresenceBatch) -> str | None:
    """The frame of ``event`` minus ``user``'s own join, which the user's welcome already
    told; None when nothing is left."""
    if isinstance(event, Presence):
        return None if (event.user, event.event) == (user, "join") else event.frame
    return event.frame_without_join(user)

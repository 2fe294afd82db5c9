"""The history of one fault schedule: every send, ack, refusal, welcome, delivery,
connection and fault, in the order the checker's clients saw them. No I/O: the runner
appends, :mod:`chatctl.bench.chaos.check` reads.

Message identity is the text: the runner makes every text unique (``SENDER#SEQ``), so a
text stored under two ids of one epoch is a duplicate, whatever ``client_id`` it had.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Send:
    """``sender`` sent (or re-sent) ``text`` to ``room``; ``client_id`` when the runner knows it
    (``chatctl send`` picks its own)."""

    sender: str
    room: str
    text: str
    seq: int
    client_id: str | None = None
    kind: str = "send"


@dataclass(frozen=True)
class Ack:
    """The server acknowledged ``text`` (``client_id``) as stored under ``id``. ``epoch`` is
    the epoch of the sender's connection when the runner knows it."""

    sender: str
    room: str
    text: str | None
    client_id: str
    id: int
    duplicate: bool = False
    epoch: str | None = None
    kind: str = "ack"


@dataclass(frozen=True)
class Refusal:
    """An ``error`` frame for a message: ``code``, ``blocked_by`` when it was held back, and
    ``stored`` as the frame said (``"unknown"``: maybe stored)."""

    sender: str
    room: str
    client_id: str | None
    code: str
    blocked_by: str | None = None
    text: str | None = None
    stored: str | None = None
    kind: str = "refusal"


@dataclass(frozen=True)
class Welcome:
    """Connection ``conn`` of ``receiver`` was welcomed. ``asked_since``/``asked_epoch``: what
    it asked to resume from (``None``: a fresh join); ``recovered`` and ``more`` as the welcome
    said (``more``: its history was cut to fit the pending-output bound, the rest is kept)."""

    receiver: str
    conn: int
    room: str
    epoch: str
    last_id: int
    asked_since: int | None = None
    asked_epoch: str | None = None
    recovered: bool | None = None
    more: bool = False
    kind: str = "welcome"


@dataclass(frozen=True)
class Paged:
    """Connection ``conn`` of ``receiver``, welcomed with ``more``, paged back with
    ``history`` requests: ``reached`` is the oldest id it then held after ``since``
    (``since + 1``: every message), ``epoch`` and ``more`` those of the last page. Recorded
    once the paging ends, before the deliveries of the resume (the pages' messages, then the
    welcome's history, then the live ones, in id order); a connection that ends while paging
    records neither."""

    receiver: str
    conn: int
    since: int
    reached: int
    epoch: str
    more: bool
    kind: str = "paged"


@dataclass(frozen=True)
class Delivery:
    """A ``message`` frame connection ``conn`` of ``receiver`` got (``history``: in its
    welcome)."""

    receiver: str
    conn: int
    room: str
    id: int
    epoch: str
    text: str
    user: str
    client_id: str | None = None
    history: bool = False
    kind: str = "delivery"


@dataclass(frozen=True)
class Connecting:
    """``receiver`` starts opening connection ``conn`` (again after a failed attempt). Its
    welcome, whenever it arrives, may tell the room as it was from here on: a welcome
    written just before a node died can reach the client after the fault was recorded."""

    receiver: str
    conn: int
    kind: str = "connecting"


@dataclass(frozen=True)
class Disconnect:
    """Connection ``conn`` of ``receiver`` ended (``why``: a close code or a fault)."""

    receiver: str
    conn: int
    why: str = ""
    kind: str = "disconnect"


@dataclass(frozen=True)
class Fault:
    """The runner applied a fault (``name``: node_kill, redis_restart, cut…) to ``target``;
    ``loses_history``: this fault may make a room's history lost (a memory node restart)."""

    name: str
    target: str
    loses_history: bool = False
    kind: str = "fault"


@dataclass(frozen=True)
class End:
    """Every fault healed, every sender done: connections still open now have had time to
    receive every stored message (``caught_up``: the runner waited until they did or gave
    up)."""

    kind: str = "end"


Event = Send | Ack | Refusal | Connecting | Welcome | Paged | Delivery | Disconnect | Fault | End


@dataclass
class History:
    """Events in the order observed; ``durable``: the broker keeps every acked message across
    every fault of this schedule (SQLite, Redis with AOF), so an epoch change or a
    ``recovered: false`` is a violation."""

    broker: str
    durable: bool
    seed: int
    events: list[Event] = field(default_factory=list)

    def add(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events) - 1

    def dump(self, indices: list[int] | None = None) -> list[str]:
        """Events as ``#INDEX {json}`` lines (all, or those at ``indices``)."""
        chosen = range(len(self.events)) if indices is None else sorted(set(indices))
        return [f"#{i} {json.dumps(asdict(self.events[i]), ensure_ascii=False)}" for i in chosen]


__all__ = [
    "Ack",
    "Connecting",
    "Delivery",
    "Disconnect",
    "End",
    "Event",
    "Fault",
    "History",
    "Paged",
    "Refusal",
    "Send",
    "Welcome",
]

"""The units of work the SQLite broker's loop hands to its writer, and what comes back."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatctl.broker.base import PublishDone
from chatctl.protocol import Message, MessageKind
from chatctl.protocol.moderation import Moderation


@dataclass(eq=False, slots=True)
class Op:
    """One unit of work for the writer; ``future`` (a :class:`Publish` has a callback
    instead) is resolved on the loop after COMMIT."""

    future: asyncio.Future[Any] | None = field(default=None, repr=False)
    result: Any = None


@dataclass(eq=False, slots=True)
class Load(Op):
    """Read (or create) a room: id, epoch, counter, its kept history and dedup records."""

    name: str = ""
    history_size: int = 0
    horizon: float = 0.0
    dedup_horizon: float = 0.0
    now: float = 0.0


@dataclass(eq=False, slots=True)
class Evict(Op):
    """The loop no longer holds the room in memory: retention may delete it again."""

    rid: int = 0


@dataclass(eq=False, slots=True)
class Publish(Op):
    """One message to store; ``done`` is called with the outcome."""

    done: PublishDone | None = None
    #: why it was not stored (for the :class:`Reply` of a repeat made while in flight)
    error: Exception | None = None
    room: str = ""
    rid: int = 0
    user: str = ""
    text: str = ""
    kind: MessageKind = "text"
    client_id: str | None = None
    #: the message's time, and when its client id was first seen (the dedup window's clock,
    #: as it is read back from the row after a restart)
    ts: float = 0.0
    display: str | None = None
    moderation: Moderation | None = None


@dataclass(eq=False, slots=True)
class Reply(Op):
    """A repeated client id, answered without the database, but queued like a publish so
    that its answer comes in line with those of the publishes queued before it: with the
    ``original`` already stored, or with the outcome of the publish it ``follows``."""

    done: PublishDone | None = None
    original: Message | None = None
    follows: Publish | None = None
    epoch: str | None = None


@dataclass(eq=False, slots=True)
class Sweep(Op):
    """Retention: messages before ``horizon`` (None: keep), idle rooms, old dedup records.
    ``result`` is True when there is more to delete (the loop sweeps again at once)."""

    horizon: float | None = None
    dedup_horizon: float = 0.0
    #: messages a room keeps (older ones are trimmed once out of the dedup window)
    history_size: int = 1
    #: the broker's clock now, and how often retention walks every room (a new walk over the
    #: rooms starts at most this often; one under way goes on at once)
    now: float = 0.0
    every: float = 0.0


@dataclass(eq=False, slots=True)
class Call(Op):
    """Run ``fn(connection)`` in the writer's transaction (maintenance, tests)."""

    fn: Callable[[sqlite3.Connection], Any] = lambda db: None


@dataclass(eq=False, slots=True)
class Resume:
    """Queued by the loop once it has failed everything submitted before it saw the failure
    that began refusal episode ``episode``: the writer tries writes again after it."""

    episode: int


@dataclass(frozen=True)
class Failure:
    """Why the writer failed a batch, as reported to ``done``."""

    error: Exception
    #: a fault of the database (full disk, I/O error) rather than a bug: the client may retry
    unavailable: bool
    #: this failure began refusal episode N: the loop fails everything it has in flight and
    #: answers with ``Resume(N)`` (None: a refusal within an episode, or not a fault)
    episode: int | None = None


Item = Op | Resume

"""Moderation and deletion: the ``moderate`` and ``delete`` frames a client sends, the
:class:`Moderation` record a room's announcement carries, and durations.

A moderator (a token whose ``mod`` claim matches the room) sends ``moderate`` with an
``action``: ``kick`` (close the user's connections to the room: 4003), ``mute`` (refuse their
messages in the room, ``muted``, for ``duration``), ``unmute``, ``ban`` (refuse their
connections to the room, 403 before the upgrade, and close the live ones: 4004, for
``duration`` or until ``unban``) and ``unban``. Anyone sends ``delete`` for a message of their
own; a moderator for any message of the room. Each action that is carried out is stored in
the room as a message of ``kind`` ``"moderation"`` whose ``moderation`` field is a
:class:`Moderation` and whose text says what happened, so every member (on every node, and a
client resuming later) learns of it in order, and a ``client_id`` on the request is acked
with that message's id. A deleted message stays in the history as a tombstone: its id, room,
user and time, ``deleted: true`` and no text.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from chatctl.protocol.codec import dumps
from chatctl.protocol.errors import ErrorCode, ProtocolError
from chatctl.protocol.rules import MAX_MESSAGE_CHARS, describe_char, user_problem

#: What a ``moderate`` frame asks for.
ModerateAction = Literal["kick", "mute", "unmute", "ban", "unban"]
#: What a moderation announcement reports: one of those, or a ``delete``.
Action = Literal["kick", "mute", "unmute", "ban", "unban", "delete"]
MODERATE_ACTIONS: tuple[str, ...] = get_args(ModerateAction)
ACTIONS: tuple[str, ...] = get_args(Action)
#: The actions that leave a lasting state (a sanction) in the broker.
Sanction = Literal["mute", "ban"]

#: Longest reason, in characters.
MAX_REASON_CHARS = 300
#: Longest mute or ban with a duration: a year (a ban without one lasts until ``unban``).
MAX_DURATION = 366 * 86400.0
DURATION_RULE = (
    "a number of seconds, or a number with a unit: 30s, 10m, 2h, 1d, 1w (or several: 1h30m); "
    "at most 366d"
)

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_DURATION_RE = re.compile(r"(?:(\d{1,9})([smhdw]))+")
_PART_RE = re.compile(r"(\d{1,9})([smhdw])")


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90"``, ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1w"`` or
    ``"1h30m"``: more than 0 and at most :data:`MAX_DURATION`. ``ValueError`` otherwise, whose
    text is a whole sentence for the user."""
    seconds: float
    if isinstance(value, bool):
        raise ValueError(f"a duration is {DURATION_RULE}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isascii() and text.isdigit() and len(text) <= 9:
            seconds = float(text)
        elif _DURATION_RE.fullmatch(text):
            seconds = sum(float(n) * _UNITS[u] for n, u in _PART_RE.findall(text))
        else:
            raise ValueError(f"{value[:40]!r} is not a duration: {DURATION_RULE}")
    else:
        raise ValueError(f"a duration is {DURATION_RULE}")
    if not 0 < seconds <= MAX_DURATION or seconds != seconds:
        raise ValueError("a duration is more than 0 seconds and at most 366d")
    return seconds


def format_duration(seconds: float) -> str:
    """``5400`` as ``1h30m``, ``45`` as ``45s``: the largest units first, no zero parts."""
    left = round(seconds)
    if left <= 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def reason_problem(reason: str) -> str | None:
    """Why ``reason`` cannot be a moderation reason (too long, a control character)."""
    if len(reason) > MAX_REASON_CHARS:
        return f"reason is {len(reason)} characters; the limit is {MAX_REASON_CHARS}"
    for char in reason:
        if ord(char) < 32 or 0x7F <= ord(char) < 0xA0:
            return f"reason contains {describe_char(char)}"
    return None


def _reason_of(d: dict[str, Any], client_id: str | None) -> str | None:
    reason = d.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, "reason must be a string", client_id=client_id)
    reason = reason.strip()
    problem = reason_problem(reason)
    if problem is not None:
        raise ProtocolError(ErrorCode.INVALID_FIELD, problem, client_id=client_id)
    return reason or None


def _client_id(d: dict[str, Any]) -> str | None:
    from chatctl.protocol.client import client_id_of  # client.py imports this module

    return client_id_of(d)


@dataclass(frozen=True)
class Moderate:
    """A moderator's request about ``user`` in the connection's room (see the module
    docstring); answered by the room's announcement (and an ``ack`` when it has a
    ``client_id``), or an error: ``forbidden`` without the ``mod`` claim for the room,
    ``invalid_field`` for a bad user name, duration or reason."""

    TYPE: ClassVar[str] = "moderate"

    action: ModerateAction
    user: str
    #: seconds: required for ``mute``, optional for ``ban`` (none: until ``unban``), absent
    #: for the others
    duration: float | None = None
    reason: str | None = None
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.TYPE, "action": self.action, "user": self.user}
        if self.duration is not None:
            d["duration"] = self.duration
        if self.reason is not None:
            d["reason"] = self.reason
        if self.client_id is not None:
            d["client_id"] = self.client_id
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> Moderate:
        client_id = _client_id(d)

        def bad(code: ErrorCode, reason: str) -> ProtocolError:
            return ProtocolError(code, reason, client_id=client_id)

        action = d.get("action")
        if action is None:
            raise bad(ErrorCode.MISSING_FIELD, "missing field: action")
        if action not in MODERATE_ACTIONS:
            raise bad(
                ErrorCode.INVALID_FIELD, f"action must be one of {', '.join(MODERATE_ACTIONS)}"
            )
        user = d.get("user")
        if user is None:
            raise bad(ErrorCode.MISSING_FIELD, "missing field: user")
        if not isinstance(user, str):
            raise bad(ErrorCode.INVALID_FIELD, "user must be a string")
        problem = user_problem(user)
        if problem is not None:
            raise bad(ErrorCode.INVALID_FIELD, f"user: {problem}")
        duration: float | None = None
        raw = d.get("duration")
        if raw is not None:
            if action not in ("mute", "ban"):
                raise bad(ErrorCode.INVALID_FIELD, f"{action} takes no duration")
            try:
                duration = parse_duration(raw)
            except ValueError as exc:
                raise bad(ErrorCode.INVALID_FIELD, f"duration: {exc}") from None
        elif action == "mute":
            raise bad(ErrorCode.MISSING_FIELD, "missing field: duration (a mute needs one)")
        return cls(action, user, duration, _reason_of(d, client_id), client_id)


@dataclass(frozen=True)
class Delete:
    """Delete message ``id`` of the connection's room: one's own, or any as a moderator.
    Answered by the room's announcement (and an ``ack`` when it has a ``client_id``), or an
    error: ``not_found`` (no such message kept, or already deleted), ``forbidden`` (someone
    else's message without the ``mod`` claim)."""

    TYPE: ClassVar[str] = "delete"

    id: int
    reason: str | None = None
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.TYPE, "id": self.id}
        if self.reason is not None:
            d["reason"] = self.reason
        if self.client_id is not None:
            d["client_id"] = self.client_id
        return d

    def frame(self) -> str:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, max_chars: int = MAX_MESSAGE_CHARS) -> Delete:
        client_id = _client_id(d)
        if "id" not in d:
            raise ProtocolError(ErrorCode.MISSING_FIELD, "missing field: id", client_id=client_id)
        value = d["id"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                "id must be a message id (an integer of 1 or more)",
                client_id=client_id,
            )
        return cls(value, _reason_of(d, client_id), client_id)


@dataclass(frozen=True)
class Moderation:
    """What a ``moderation`` message reports: ``action`` on ``target`` (a user; for a
    ``delete``, the author of message ``target_id``), with the moderator's ``reason``, and
    for a ``mute`` or ``ban`` the Unix time it ends (``until``; None: a ban until ``unban``).
    The message's ``user`` is who did it."""

    action: Action
    target: str
    reason: str | None = None
    until: float | None = None
    target_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action": self.action, "target": self.target}
        if self.reason is not None:
            d["reason"] = self.reason
        if self.until is not None:
            d["until"] = self.until
        if self.target_id is not None:
            d["target_id"] = self.target_id
        return d

    @classmethod
    def from_dict(cls, d: object) -> Moderation:
        """From a message's ``moderation`` object; ``ValueError`` if malformed."""
        if not isinstance(d, dict):
            raise ValueError("moderation must be an object")
        action = d.get("action")
        if action not in ACTIONS:
            raise ValueError(f"unknown moderation action {action!r}")
        until, target_id, reason = d.get("until"), d.get("target_id"), d.get("reason")
        return cls(
            action=action,
            target=str(d["target"]),
            reason=None if reason is None else str(reason),
            until=None if until is None else float(until),
            target_id=None if target_id is None else int(target_id),
        )

    def describe(self, by: str, *, now: float | None = None) -> str:
        """The announcement's text: ``alice muted bob for 10m: spam``."""
        action, target = self.action, self.target
        if action == "delete":
            whose = "their own message" if target == by else f"a message of {target}"
            text = f"{by} deleted {whose} (#{self.target_id})"
        elif action == "kick":
            text = f"{by} kicked {target}"
        elif action in ("unmute", "unban"):
            text = f"{by} {'unmuted' if action == 'unmute' else 'unbanned'} {target}"
        else:
            verb = "muted" if action == "mute" else "banned"
            if self.until is None:
                text = f"{by} {verb} {target}"
            else:
                left = self.until - (time.time() if now is None else now)
                text = f"{by} {verb} {target} for {format_duration(max(left, 1.0))}"
        return f"{text}: {self.reason}" if self.reason else text

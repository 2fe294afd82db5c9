"""The moderation commands of the interactive client, as in IRC: ``/kick USER [REASON]``,
``/mute USER DURATION [REASON]``, ``/unmute USER``, ``/ban USER [DURATION] [REASON]``,
``/unban USER`` and ``/delete [ID] [REASON]`` (docs/protocol.md, "Moderation").

What is typed is checked here first, and a mistake (no user, a mute duration that is not a
duration, an id that is not a number) is one line in the window with nothing sent. The
server answers the rest: its announcement in the room (everyone sees it), or an error shown
as ``cannot kick bob: …`` (no ``mod`` claim, no such message, someone else's message).
``/ban``'s second word is its duration only when it reads as one (``/ban bob 1d spam``,
``/ban bob spam``). ``/delete`` alone deletes your last message in the window.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from chatctl.protocol import (
    DURATION_RULE,
    Delete,
    Moderate,
    ModerateAction,
    parse_duration,
    user_problem,
)
from chatctl.protocol.moderation import reason_problem

USAGE: dict[str, str] = {
    "kick": "/kick USER [REASON]",
    "mute": "/mute USER DURATION [REASON]",
    "unmute": "/unmute USER",
    "ban": "/ban USER [DURATION] [REASON]",
    "unban": "/unban USER",
    "delete": "/delete [ID] [REASON]",
}


class ModerationTarget(Protocol):
    """What the moderation commands use of the chat screen (:class:`chatctl.ui.app.ChatUI`)."""

    def error(self, text: str) -> None: ...

    async def moderate(self, frame: Moderate | Delete, what: str) -> None:
        """Send ``frame`` from the window shown; ``what`` (``kick bob``) names it in the
        line an error from the server is shown as."""

    def own_last(self) -> int | None:
        """The id of your last message the window shown holds (not deleted), if any."""


def _reason(words: list[str]) -> str | None:
    reason = " ".join(words).strip()
    if not reason:
        return None
    problem = reason_problem(reason)
    if problem is not None:
        raise ValueError(problem)
    return reason


def parse_moderate(action: ModerateAction, arg: str) -> Moderate:
    """The ``moderate`` frame ``/ACTION ARG`` asks for; ``ValueError`` with the line to
    show when it is not one."""
    words = arg.split()
    if not words:
        raise ValueError(f"usage: {USAGE[action]}")
    user = words[0].removeprefix("@")
    problem = user_problem(user)
    if problem is not None:
        raise ValueError(f"invalid user name {user[:40]!r}: {problem}")
    rest = words[1:]
    duration: float | None = None
    if action == "mute":
        if not rest:
            raise ValueError(f"usage: {USAGE['mute']} (a duration: {DURATION_RULE})")
        duration = parse_duration(rest[0])  # its ValueError says why
        rest = rest[1:]
    elif action == "ban" and rest:
        try:
            duration = parse_duration(rest[0])
        except ValueError:
            if _looks_like_duration(rest[0]):
                raise  # 0s, 400d, 10x-ish mistakes: said, not taken for a reason
        else:
            rest = rest[1:]
    elif action in ("unmute", "unban") and rest:
        raise ValueError(f"usage: {USAGE[action]}")
    return Moderate(action, user, duration, _reason(rest))


def _looks_like_duration(word: str) -> bool:
    """A word meant as a duration: it starts with a digit (``0s``, ``400d``, ``10mins``)."""
    return word[:1].isdigit()


def parse_delete(arg: str, own_last: int | None) -> Delete:
    """The ``delete`` frame ``/delete ARG`` asks for (no id: ``own_last``)."""
    words = arg.split()
    if not words:
        if own_last is None:
            raise ValueError(
                f"usage: {USAGE['delete']} (no message of yours here to delete; "
                "chatctl history --json shows ids)"
            )
        return Delete(own_last)
    text = words[0].removeprefix("#")
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or len(text) > 18:
        raise ValueError(f"{words[0][:40]!r} is not a message id (a number): {USAGE['delete']}")
    return Delete(int(text), _reason(words[1:]))


def describe(frame: Moderate | Delete) -> str:
    """``kick bob``, ``delete #12``: what a request is called in the lines about it."""
    if isinstance(frame, Delete):
        return f"delete #{frame.id}"
    return f"{frame.action} {frame.user}"


def moderation_command(
    action: ModerateAction,
) -> Callable[[ModerationTarget, str], Awaitable[bool]]:
    """The handler of ``/ACTION``."""

    async def run(ui: ModerationTarget, arg: str) -> bool:
        try:
            frame = parse_moderate(action, arg)
        except ValueError as exc:
            ui.error(f"/{action}: {exc}")
            return True
        await ui.moderate(frame, describe(frame))
        return True

    return run


async def delete_command(ui: ModerationTarget, arg: str) -> bool:
    try:
        frame = parse_delete(arg, ui.own_last())
    except ValueError as exc:
        ui.error(f"/delete: {exc}")
        return True
    await ui.moderate(frame, describe(frame))
    return True

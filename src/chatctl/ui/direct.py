"""Direct messages in ``chatctl join``: what the ``dm`` notices of the server say on the
screen (once, although every open window's connection gets them), and the names of
``/msg USER TEXT`` and ``/query USER``. A conversation is a window like a room's, named
``@USER``."""

from __future__ import annotations

from collections.abc import Callable

from chatctl.protocol import DmNotice, conversation_name, conversation_peer


class DmNotices:
    """The unread counts the server last told, by conversation (``@alice``): each is shown
    once (``show``), in the window shown, unless the conversation's window is open
    (``is_open``: it counts what arrives itself)."""

    def __init__(self, *, show: Callable[[str], None], is_open: Callable[[str], bool]) -> None:
        self.unread: dict[str, int] = {}
        self.show, self.is_open = show, is_open

    def take(self, notice: DmNotice) -> None:
        """One notice, from any window's connection (each hears the same): nothing for a
        count already told or a conversation read."""
        known = self.unread.get(notice.room)
        self.unread[notice.room] = notice.unread
        if notice.unread == 0 or known == notice.unread or self.is_open(notice.room):
            return
        count, peer = notice.unread, notice.user
        plural = "message" if count == 1 else "messages"
        self.show(f"{count} unread direct {plural} from {peer}: /query {peer} opens them")


def sent_line(room: str, text: str, number: int) -> str:
    """What ``/msg`` shows where you are when the conversation's window is elsewhere."""
    return f"to {room}: {text}  (window {number}: Alt-{number} or /query {room[1:]})"


def target(user: str) -> str:
    """``@user`` for ``/msg user`` and ``/query user``; ``ValueError`` saying why not (a
    leading ``@`` is taken too)."""
    name = conversation_name(user.removeprefix("@"))
    conversation_peer(name)
    return name

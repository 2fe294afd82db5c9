"""The input line of :mod:`chatctl.ui.app`: the ``PromptSession`` with its completion
(commands, their arguments, user names), key bindings, input history, status line and
style, and the question asked before a multi-line paste is sent."""

from __future__ import annotations

from collections.abc import Callable

from prompt_toolkit import PromptSession

from chatctl.recent import recent_rooms
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.config import input_history
from chatctl.ui.keys import create_key_bindings
from chatctl.ui.style import create_style
from chatctl.ui.toolbar import Status, create_toolbar


def create_session(
    *,
    prompt: Callable[[], str],
    room: Callable[[], str],
    user_names: Callable[[], list[str]],
    on_paste: Callable[[str], None],
    on_window: Callable[[int | str], None],
    on_page_up: Callable[[], None],
    status: Callable[[], Status] | None,
) -> PromptSession[str]:
    """The input line; ``room()`` is the room shown (not offered by ``/join``'s completion);
    ``status`` builds the status line (None: no status line, e.g. ``TERM=dumb``)."""
    completer = ChatCompleter(
        commands.completion_table(),
        user_names,
        {
            "/bell": lambda: ["on", "off"],
            "/help": lambda: [c.name for c in commands.COMMANDS],
            "/join": lambda: [r for r in recent_rooms() if r != room()],
            **dict.fromkeys(("/kick", "/mute", "/unmute", "/ban", "/unban"), user_names),
        },
    )
    return PromptSession(
        message=prompt,
        completer=completer,
        complete_while_typing=False,
        key_bindings=create_key_bindings(
            on_paste=on_paste, on_window=on_window, on_page_up=on_page_up
        ),
        history=input_history(),
        enable_suspend=True,
        erase_when_done=True,
        bottom_toolbar=None if status is None else create_toolbar(status),
        style=create_style(),
    )


async def confirm_paste(text: str) -> bool:
    """Ask whether the multi-line ``text`` is sent as one message (no, unless answered)."""
    lines = text.count("\n") + 1
    try:
        answer = await PromptSession[str](erase_when_done=True).prompt_async(
            f"send this {lines}-line text as one message? [y/N] "
        )
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() in ("y", "yes")

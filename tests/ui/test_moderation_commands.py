"""The moderation commands of ``chatctl join`` without a terminal or a server: what is
typed becomes a ``moderate`` or ``delete`` frame or one line saying what is wrong (nothing
sent), how announcements and deleted messages are drawn, and a window replacing the line of
a message deleted later (the pty tests, test_moderation_pty.py, do it end to end)."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from chatctl.client.settings import ClientSettings
from chatctl.client.stream import RoomStream
from chatctl.protocol import Delete, Message, Moderate, Moderation
from chatctl.tokens.source import fixed_source
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.moderate import parse_delete, parse_moderate
from chatctl.ui.output import LineOutput
from chatctl.ui.render import Renderer
from chatctl.ui.view import RoomView
from chatctl.ui.window import Window


@pytest.mark.parametrize(
    ("action", "arg", "frame"),
    [
        ("kick", "bob", Moderate("kick", "bob")),
        ("kick", "@bob  spam and  eggs ", Moderate("kick", "bob", reason="spam and eggs")),
        ("mute", "bob 10m", Moderate("mute", "bob", 600.0)),
        ("mute", "bob 1h30m flooding", Moderate("mute", "bob", 5400.0, "flooding")),
        ("ban", "bob", Moderate("ban", "bob")),
        ("ban", "bob 1d spam", Moderate("ban", "bob", 86400.0, "spam")),
        ("ban", "bob spam 1d", Moderate("ban", "bob", None, "spam 1d")),
        ("unmute", "bob", Moderate("unmute", "bob")),
        ("unban", "bob", Moderate("unban", "bob")),
    ],
)
def test_commands_become_frames(action: str, arg: str, frame: Moderate) -> None:
    assert parse_moderate(action, arg) == frame  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("action", "arg", "says"),
    [
        ("kick", "", "usage: /kick USER [REASON]"),
        ("mute", "bob", "usage: /mute USER DURATION [REASON]"),
        ("mute", "bob soon", "'soon' is not a duration"),
        ("mute", "bob 0s", "more than 0 seconds"),
        ("mute", "bob 400d", "at most 366d"),
        ("ban", "bob 10x spam", "'10x' is not a duration"),
        ("unban", "bob now", "usage: /unban USER"),
        ("kick", "b\x07b", "invalid user name"),
        ("kick", "bob " + "x" * 301, "reason is 301 characters; the limit is 300"),
    ],
)
def test_mistakes_are_one_line(action: str, arg: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_moderate(action, arg)  # type: ignore[arg-type]
    assert says in str(info.value) and "\n" not in str(info.value)


def test_delete_takes_an_id_or_your_last_message() -> None:
    assert parse_delete("12", None) == Delete(12)
    assert parse_delete("#12 oops typo", None) == Delete(12, "oops typo")
    assert parse_delete("", 7) == Delete(7)
    for arg, says in (("", "no message of yours here"), ("x12", "not a message id"), ("0", "")):
        with pytest.raises(ValueError) as info:
            parse_delete(arg, None)
        assert says in str(info.value)


class Recorder:
    """A :class:`~chatctl.ui.commands.CommandTarget` that records what a command did."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.sent: list[tuple[Moderate | Delete, str]] = []

    def error(self, text: str) -> None:
        self.errors.append(text)

    async def moderate(self, frame: Moderate | Delete, what: str) -> None:
        self.sent.append((frame, what))

    def own_last(self) -> int | None:
        return 41


async def test_dispatch_sends_good_commands_and_nothing_for_bad_ones() -> None:
    ui = Recorder()
    run = commands.dispatch
    assert await run(ui, "/mute bob soon")  # type: ignore[arg-type]
    assert await run(ui, "/delete x")  # type: ignore[arg-type]
    assert ui.sent == [] and len(ui.errors) == 2
    assert ui.errors[0].startswith("/mute: 'soon' is not a duration")
    await run(ui, "/kick bob spam")  # type: ignore[arg-type]
    await run(ui, "/delete")  # type: ignore[arg-type]
    assert ui.sent == [
        (Moderate("kick", "bob", reason="spam"), "kick bob"),
        (Delete(41), "delete #41"),
    ]
    names = {c.name for c in commands.COMMANDS}
    assert {"kick", "mute", "unmute", "ban", "unban", "delete"} <= names


def test_completion_offers_user_names_after_moderation_commands() -> None:
    from chatctl.ui.prompt import create_session

    session = create_session(
        prompt=lambda: "[ops] ",
        room=lambda: "ops",
        user_names=lambda: ["bob", "bea", "carl"],
        on_paste=lambda _: None,
        on_window=lambda _: None,
        on_page_up=lambda: None,
        status=None,
    )
    completer = session.completer
    assert isinstance(completer, ChatCompleter)
    for command in ("/kick", "/mute", "/ban", "/unban", "/unmute"):
        found = completer.get_completions(Document(f"{command} b"), CompleteEvent())
        assert [c.text for c in found] == ["bob", "bea"], command
    assert any(
        c.text == "/mute " for c in completer.get_completions(Document("/mu"), CompleteEvent())
    )


def announcement(action: str, target: str, text: str, **fields: object) -> Message:
    record = Moderation(action, target, **fields)  # type: ignore[arg-type]
    return Message(9, "ops", "alice", text, 100.0, kind="moderation", moderation=record)


def test_announcements_and_tombstones_are_drawn_apart() -> None:
    plain = Renderer(me="carl", color=False)
    line, mention = plain.message(announcement("mute", "bob", "alice muted bob for 10m: spam"))
    assert line.endswith("-!- alice muted bob for 10m: spam") and not mention
    dead = Message(5, "ops", "bob", "", 100.0, deleted=True)
    assert plain.message(dead)[0].endswith("bob: (message deleted)")
    color = Renderer(me="carl", color=True)
    colored = color.message(announcement("kick", "dan", "alice kicked dan"))[0]
    assert "\x1b[" in colored and "-!- " in colored
    tomb = color.message(dead)[0]
    assert "(message deleted)" in tomb and "\x1b[3" in tomb  # italic, grey
    # the one it is about is alerted, as by a mention
    assert Renderer(me="bob", color=False).message(announcement("mute", "bob", "alice muted bob"))[
        1
    ]


def test_a_window_shows_a_deleted_message_as_deleted_and_draws_itself_again() -> None:
    renderer = Renderer(me="carl", color=False)
    settings = ClientSettings("ws://127.0.0.1:9", fixed_source("t", "a test"))
    shown: list[str] = []
    screen = LineOutput(dumb=False, prompt_line=lambda: "")
    screen.write = shown.append  # type: ignore[method-assign,assignment]

    def view(window: Window) -> RoomView:
        return RoomView(
            "ops",
            me="carl",
            renderer=renderer,
            output=window,
            refresh=lambda: None,
            bell=False,
            dumb=False,
        )

    window = Window(
        "ops",
        screen=screen,
        make_view=view,
        make_stream=lambda: RoomStream(settings, "ops"),
        marker=lambda: "--",
    )
    redraws: list[int] = []
    window.redraw = lambda: redraws.append(1)
    window.visible = True
    stream = window.stream
    window.view.event(stream, Message(5, "ops", "bob", "buy cheap pills", 100.0))
    window.view.event(stream, Message(6, "ops", "carl", "no thanks", 101.0))
    assert window.own_last("carl") == 6
    delete = announcement("delete", "bob", "alice deleted a message of bob (#5)", target_id=5)
    window.view.event(stream, delete)
    assert "buy cheap pills" not in "\n".join(window.lines)
    assert any(line.endswith("bob: (message deleted)") for line in window.lines)
    assert window.lines[-1].endswith("-!- alice deleted a message of bob (#5)")
    assert redraws == [1]
    assert any("buy cheap pills" in line for line in shown)  # the terminal keeps what it got
    # a hidden window only changes its lines (drawn when it is shown)
    window.visible = False
    window.view.event(stream, announcement("delete", "carl", "carl deleted", target_id=6))
    assert redraws == [1]
    assert any(line.endswith("carl: (message deleted)") for line in window.lines)
    assert window.own_last("carl") is None
    # an id the window does not hold changes nothing
    before = list(window.lines)
    window.view.event(stream, announcement("delete", "eve", "x", target_id=99))
    assert window.lines[:-1] == before

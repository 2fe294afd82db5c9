"""The completer and the renderer, without a terminal."""

from __future__ import annotations

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from chatctl.client.sanitize import multi_line
from chatctl.protocol import Message, MessageKind
from chatctl.ui import commands
from chatctl.ui.completer import ChatCompleter
from chatctl.ui.render import Renderer, mentions, user_color, want_color


def msg(user: str, text: str, kind: MessageKind = "text") -> Message:
    return Message(1, "ops", user, text, 0.0, kind=kind)


def complete(text: str, users: list[str] | None = None) -> list[str]:
    completer = ChatCompleter(
        commands.completion_table(),
        lambda: users or ["bob", "bea", "carol"],
        {"/bell": lambda: ["on", "off"]},
    )
    doc = Document(text, len(text))
    return [
        c.text for c in completer.get_completions(doc, CompleteEvent(completion_requested=True))
    ]


def test_commands_complete_with_a_space() -> None:
    assert complete("/wh") == ["/who "]
    assert complete("/w") == ["/who ", "/window "]  # /window came with several rooms
    assert complete("/q") == ["/query ", "/quit "]
    assert "/help " in complete("/")
    assert complete("/bell o") == ["on", "off"]
    assert complete("/bell of") == ["off"]


def test_user_names_most_recent_first_and_addressed_at_line_start() -> None:
    assert complete("b") == ["bob: ", "bea: "]
    assert complete("hi B") == ["bob", "bea"]
    assert complete("ping @ca") == ["@carol"]
    assert complete("hello x") == []


def test_renderer_colours_names_stably_and_flags_mentions() -> None:
    r = Renderer(me="alice", color=True)
    line, mention = r.message(msg("bob", "hi alice!"))
    assert mention and "\x1b[" in line
    _, mention = r.message(msg("alice", "I am alice"))
    assert not mention  # your own message never rings
    assert user_color("bob") == user_color("bob")
    assert user_color("bob", {"bob": "red"}) == "red"


def test_no_color_output_is_plain_and_safe() -> None:
    r = Renderer(me="alice", color=False)
    line, _ = r.message(msg("bob", "x\x1b]0;pwned\x07y"))
    assert (
        "\x1b" not in line and "\x07" not in line and line.endswith("bob: xy")
    )  # the OSC removed whole
    action, _ = r.message(msg("bob", "waves", kind="action"))
    assert action.endswith("* bob waves")
    assert r.system("bob joined ops").endswith("-!- bob joined ops")
    assert multi_line("a\tb\nc") == "a    b\nc"


def test_mentions_are_whole_words() -> None:
    assert mentions("hey @alice", "alice")
    assert mentions("ALICE: ping", "alice")
    assert not mentions("malice", "alice")
    assert not mentions("alice-bot says hi", "alice")


def test_want_color_honours_no_color_and_dumb_terminals() -> None:
    assert want_color({}, {"TERM": "xterm"})
    assert not want_color({}, {"TERM": "xterm", "NO_COLOR": "1"})
    assert not want_color({}, {"TERM": "dumb"})
    assert not want_color({"color": False}, {"TERM": "xterm"})


def test_config_styles_override_the_defaults() -> None:
    r = Renderer(me="alice", color=True, colors={"self": "red", "bob": "blue"})
    own, _ = r.message(msg("alice", "hi"))
    assert "\x1b[31malice" in own
    other, _ = r.message(msg("bob", "hi"))
    assert "\x1b[34mbob" in other


def test_bad_join_settings_are_config_errors() -> None:
    from chatctl.client.settings import resolve_settings
    from chatctl.errors import ConfigError
    from chatctl.ui.app import ChatUI

    settings = resolve_settings(env={"CHATCTL_TOKEN": "x.e30.x"}, server="ws://h:1")
    for bad in ({"bell": "off"}, {"history": "10"}, {"colors": "red"}):
        object.__setattr__(settings, "config", {"join": bad})
        with pytest.raises(ConfigError, match=r"\[join\]"):
            ChatUI(settings, "ops")


def test_day_change_lines_between_messages_of_different_days() -> None:
    import time

    from chatctl.client.settings import resolve_settings
    from chatctl.ui.app import ChatUI

    ui = ChatUI(resolve_settings(env={"CHATCTL_TOKEN": "x.e30.x"}, server="ws://h:1"), "ops")
    ui.view.renderer = Renderer(color=False)
    out: list[str] = []

    def write(line: str) -> None:
        out.append(line)

    ui.view.write = write  # type: ignore[method-assign]
    now = time.time()
    for ts in (now - 3 * 86400, now - 3 * 86400 + 1, now):
        ui.view._message(Message(1, "ops", "b", "m", ts), live=False)
    days = [line for line in out if "-!-" in line]
    assert len(out) == 5 and len(days) == 2
    assert days[1].endswith(time.strftime("%A %d %B %Y"))

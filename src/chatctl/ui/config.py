"""The interactive client's own settings: the ``[join]`` table of config.toml, and the input
history kept in ``$XDG_STATE_HOME/chatctl/history`` (as pgcli's ``config.py``).

::

    [join]
    rooms = ["general", "ops"]   # opened at start by a bare `chatctl join` (one window each)
    bell = true            # ring on mentions (/bell toggles it)
    history = 50           # history messages shown on joining (default: the server's)
    color = true           # false: no colour (emphasis kept), as NO_COLOR
    timestamp = "%H:%M"    # strftime format of the time column
    colors = { bob = "blue", mention = "bold white on red" }   # names and styles
    ansi = false           # true: show the colours messages carry (as --ansi)
    highlight = ["deploy", "outage"]   # words that alert as your name does (as --highlight)
    notify_command = "notify-send -a chatctl"   # run with ROOM USER TEXT on each alert
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from chatctl.config import state_dir
from chatctl.errors import ConfigError
from chatctl.ui.notify import check_word, notify_argv

T = TypeVar("T")
D = TypeVar("D")


def _setting(config: Mapping[str, Any], key: str, kind: type[T], default: D) -> T | D:
    """``[join] key`` from config.toml, checked to be a ``kind``."""
    value = config.get(key, default)
    if value is default or (isinstance(value, kind) and not (kind is int and value is True)):
        return value
    raise ConfigError(f"config.toml: [join] {key} must be a {kind.__name__}, not {value!r}")


@dataclass(frozen=True)
class JoinConfig:
    bell: bool = True
    history: int | None = None
    color: bool = True
    timestamp: str = "%H:%M:%S"
    colors: dict[str, str] = field(default_factory=dict)
    rooms: tuple[str, ...] = ()
    ansi: bool = False
    highlight: tuple[str, ...] = ()
    notify_command: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> JoinConfig:
        """Read config.toml's ``[join]`` table; a value of the wrong type is a ConfigError."""
        table: Mapping[str, Any] = config.get("join", {})
        colors = _setting(table, "colors", dict, {})
        rooms = _setting(table, "rooms", list, [])
        if not all(isinstance(r, str) for r in rooms):
            raise ConfigError(f"config.toml: [join] rooms must be a list of room names: {rooms!r}")
        highlight = _setting(table, "highlight", list, [])
        if not all(isinstance(w, str) for w in highlight):
            raise ConfigError(
                f"config.toml: [join] highlight must be a list of words: {highlight!r}"
            )
        try:
            words = tuple(check_word(w) for w in highlight)
        except ValueError as exc:
            raise ConfigError(f"config.toml: [join] highlight: {exc}") from None
        command = _setting(table, "notify_command", str, None)
        notify_argv(command, "config.toml: [join] notify_command")
        return cls(
            bell=_setting(table, "bell", bool, True),
            history=_setting(table, "history", int, None),
            color=_setting(table, "color", bool, True),
            timestamp=_setting(table, "timestamp", str, "%H:%M:%S"),
            colors={str(k): str(v) for k, v in colors.items()},
            rooms=tuple(rooms),
            ansi=_setting(table, "ansi", bool, False),
            highlight=words,
            notify_command=command,
        )

    def given(
        self, *, highlight: list[str] | None = None, notify_command: str | None = None
    ) -> JoinConfig:
        """These settings with the command line's: ``--highlight`` (its words replace the
        file's) and ``--notify-command``; a bad one is a ConfigError naming the flag."""
        words = self.highlight
        if highlight:
            try:
                words = tuple(check_word(w) for w in highlight)
            except ValueError as exc:
                raise ConfigError(f"--highlight: {exc}") from None
        if notify_command is not None:
            notify_argv(notify_command)
        return replace(self, highlight=words, notify_command=notify_command or self.notify_command)


def input_history() -> History:
    """Up/Down history in ``$XDG_STATE_HOME/chatctl/history`` (in memory if unwritable)."""
    path = state_dir() / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))

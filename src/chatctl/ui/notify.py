"""What calls for the user's attention in ``chatctl join``, and what is done about it.

A message *alerts* when someone else wrote it and it names the user or one of their highlight
words (case-insensitive, as a whole word: ``deploy`` in ``Deploy!`` but not in ``deployed``),
or when it arrives in a direct conversation (a window whose name starts with ``@``, as the
server names a DM: ``@bob``). An alert that arrives live counts as a mention (the status
line, the activity bar, the terminal's title), rings the bell (``/bell``), and runs the
``--notify-command`` (``notify_command`` in config.toml's ``[join]``) if one is set.

The command is split once with :func:`shlex.split` and run without a shell, with three more
arguments: the room, the user and the text (sanitised, as shown), e.g.
``notify-send -a chatctl`` runs ``notify-send -a chatctl general bob "alice: look"``. It runs
in the background (asyncio subprocess, stdin and stdout on ``/dev/null``); a failure (not
found, a non-zero exit, too slow) is shown on the status line until a later run succeeds,
and never ends the session.

Highlight words come from ``--highlight`` (or else ``[join] highlight``) and from
``/highlight WORD``, which keeps them in ``$XDG_STATE_HOME/chatctl/highlight`` (chatctl never
rewrites config.toml): one word a line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from chatctl.client.sanitize import multi_line
from chatctl.config import locked, state_dir
from chatctl.errors import ConfigError

#: A highlight word: no white space, at most this long.
MAX_WORD = 64
#: Commands running at once; alerts beyond that are not passed to the command.
MAX_RUNNING = 4
#: Seconds a notify command may run before it is killed (and reported).
NOTIFY_TIMEOUT = 30.0
#: What the status line shows of a failure.
MAX_REASON = 80


def is_direct(room: str) -> bool:
    """A direct conversation: the window is named after the other user (``@bob``)."""
    return room.startswith("@")


def alerts(room: str, user: str, me: str, *, mention: bool) -> bool:
    """Whether a message from ``user`` in ``room`` calls for ``me``'s attention: someone else
    wrote it, and it names them (``mention``: their name or a highlight word) or it is a
    direct message."""
    return user != me and (mention or is_direct(room))


def names(text: str, word: str) -> bool:
    """True when ``text`` has ``word`` as a whole word, in any case (``@alice``, ``alice:``)."""
    if not word:
        return False
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.IGNORECASE) is not None


def check_word(word: str) -> str:
    """``word`` as a highlight word; ValueError saying why it cannot be one."""
    if not word or len(word) > MAX_WORD or any(c.isspace() or not c.isprintable() for c in word):
        raise ValueError(f"{word!r} is not a highlight word: 1-{MAX_WORD} characters, no spaces")
    return word


def highlight_file() -> Path:
    return state_dir() / "highlight"


class Highlights:
    """The highlight words: ``given`` ones (``--highlight`` or config.toml) and the ones
    ``/highlight`` added (kept in :func:`highlight_file`). :attr:`words` is the list the
    renderer reads, updated in place."""

    def __init__(self, given: Iterable[str] = (), path: Path | None = None) -> None:
        self.given = tuple(dict.fromkeys(given))
        self.path = highlight_file() if path is None else path
        self.saved: list[str] = self._load()
        self.words: list[str] = []
        self._update()

    def _load(self) -> list[str]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        out: list[str] = []
        for line in lines:
            with contextlib.suppress(ValueError):
                out.append(check_word(line.strip()))
        return list(dict.fromkeys(out))

    def _update(self) -> None:
        self.words[:] = list(dict.fromkeys((*self.given, *self.saved)))

    def has(self, word: str) -> bool:
        return any(w.lower() == word.lower() for w in self.words)

    def add(self, word: str) -> bool:
        """Add and save ``word``; False when it already was one. ValueError: not a word."""
        word = check_word(word)
        if self.has(word):
            return False
        self._save(add=word)
        return True

    def remove(self, word: str) -> bool:
        """Forget a word ``/highlight`` added; False when it was not one. ValueError: it
        comes from ``--highlight`` or config.toml (remove it there)."""
        if any(w.lower() == word.lower() for w in self.given):
            raise ValueError(f"{word} comes from --highlight or config.toml (remove it there)")
        if not any(w.lower() == word.lower() for w in self.saved):
            return False
        self._save(remove=word)
        return True

    def _save(self, *, add: str | None = None, remove: str | None = None) -> None:
        """Change the saved words (merged with what other clients saved meanwhile)."""
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with locked(path.parent / "highlight.lock"):
                words = [w for w in self._load() if remove is None or w.lower() != remove.lower()]
                if add is not None and not any(w.lower() == add.lower() for w in words):
                    words.append(add)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".highlight.", text=True)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        f.writelines(w + "\n" for w in words)
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            self.saved = words
        except OSError:  # no writable state directory: for this session only
            self.saved = [w for w in self.saved if remove is None or w.lower() != remove.lower()]
            if add is not None:
                self.saved.append(add)
        self._update()


def notify_argv(command: str | None, where: str = "--notify-command") -> list[str] | None:
    """The notify command as an argv list (None when not set); a ConfigError for a command
    :func:`shlex.split` cannot split, or an empty one."""
    if command is None:
        return None
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}: {command!r}") from None
    if not argv:
        raise ConfigError(f"{where}: empty command")
    return argv


class Notifier:
    """Runs the notify command for each alert, in the background; ``changed()`` is called
    when :attr:`failure` (shown on the status line) changes."""

    def __init__(self, argv: list[str] | None, changed: Callable[[], None]) -> None:
        self.argv = argv
        self.changed = changed
        #: why the last run failed ("" once a run succeeds)
        self.failure = ""
        self.tasks: set[asyncio.Task[None]] = set()

    def notify(self, room: str, user: str, text: str) -> None:
        """Run the command for one alert (not waited for)."""
        if self.argv is None:
            return
        if len(self.tasks) >= MAX_RUNNING:
            self._failed(f"{len(self.tasks)} still running: one alert not passed on")
            return
        argv = [*self.argv, room, multi_line(user), multi_line(text)]
        task = asyncio.get_running_loop().create_task(self._run(argv))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, argv: list[str]) -> None:
        name = Path(argv[0]).name  # the status line is short
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # the terminal's signals are the session's, not its
            )
        except OSError as exc:
            self._failed(f"{name}: {exc.strerror or exc}")
            return
        try:
            _, err = await asyncio.wait_for(proc.communicate(), NOTIFY_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            self._failed(f"{name}: killed after {NOTIFY_TIMEOUT:.0f} s")
            return
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        if proc.returncode:
            said = multi_line(err.decode(errors="replace")).strip().splitlines()
            said_last = f": {said[-1]}" if said else ""
            self._failed(f"{name}: exit status {proc.returncode}{said_last}")
        elif self.failure:
            self.failure = ""
            self.changed()

    def _failed(self, reason: str) -> None:
        reason = reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"
        if reason != self.failure:
            self.failure = reason
            self.changed()

    async def close(self) -> None:
        """End the runs still going (the session is over)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class HighlightTarget(Protocol):
    """What ``/highlight`` uses of the chat screen."""

    highlights: Highlights

    def info(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...


async def highlight_command(ui: HighlightTarget, arg: str) -> bool:
    """``/highlight`` lists the words, ``/highlight WORD…`` adds, ``/highlight -WORD``
    removes."""
    words = arg.split()
    if not words:
        listed = ", ".join(ui.highlights.words)
        ui.info(
            f"highlight words: {listed} (and your name)"
            if listed
            else "no highlight words (your name alerts; /highlight WORD adds one)"
        )
        return True
    for word in words:
        if word.startswith("-") and len(word) > 1:
            _remove(ui, word[1:])
            continue
        try:
            added = ui.highlights.add(word)
        except ValueError as exc:
            ui.error(str(exc))
            continue
        ui.info(f"highlighting {word}" if added else f"{word} is already a highlight word")
    return True


async def unhighlight_command(ui: HighlightTarget, arg: str) -> bool:
    """``/unhighlight WORD…``: as ``/highlight -WORD``."""
    if not arg.split():
        ui.error("usage: /unhighlight WORD  (/highlight lists them)")
    for word in arg.split():
        _remove(ui, word)
    return True


def _remove(ui: HighlightTarget, word: str) -> None:
    try:
        removed = ui.highlights.remove(word)
    except ValueError as exc:
        ui.error(f"cannot remove {word}: {exc}")
        return
    ui.info(f"{word} is no longer highlighted" if removed else f"{word} is not a highlight word")

"""Shell completion for real: the generated scripts in bash (an interactive session pressing
Tab, and the completion function called directly), and the recent-rooms list behind ROOM."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from chatctl import recent
from genlib import ROOT, load_app_command
from support.helpers import IN_CI

BASH_SCRIPT = ROOT / "completions" / "chatctl.bash"


@pytest.fixture
def chatctl_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a ``chatctl`` running this checkout's code."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "chatctl"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m chatctl "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def bash_complete(env: dict[str, str], *words: str) -> list[str]:
    """Call the generated completion function as bash would for ``words`` (last: the word
    being completed) and return COMPREPLY."""
    script = (
        f"source {BASH_SCRIPT}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))\n'
        "_chatctl_completion chatctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, "bash", *words],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_subcommands_and_options(chatctl_on_path: dict[str, str]) -> None:
    env = chatctl_on_path
    commands = load_app_command().commands  # type: ignore[attr-defined]
    assert set(bash_complete(env, "chatctl", "")) == set(commands) >= {"serve", "token"}
    assert bash_complete(env, "chatctl", "token", "") == ["create", "inspect", "revoke"]
    assert set(bash_complete(env, "chatctl", "serve", "--redis")) == {
        "--redis-url",
        "--redis-prefix",
        "--redis-wait-replicas",
    }


def test_choices_complete_as_choices_not_file_names(chatctl_on_path: dict[str, str]) -> None:
    env = chatctl_on_path
    assert bash_complete(env, "chatctl", "serve", "--log-format", "") == ["text", "json"]
    assert bash_complete(env, "chatctl", "serve", "--log-level", "w") == ["warning"]


def test_bash_completes_recent_rooms(chatctl_on_path: dict[str, str]) -> None:
    for room in ("general", "ops", "ops-night"):
        recent.remember_room(room)
    env = chatctl_on_path
    words = ["chatctl", "token", "create", "--user", "alice", "--room"]
    assert bash_complete(env, *words, "") == ["ops-night", "ops", "general"]
    assert bash_complete(env, *words, "op") == ["ops-night", "ops"]


def test_tab_in_an_interactive_bash(chatctl_on_path: dict[str, str], tmp_path: Path) -> None:
    """A real interactive bash with the generated script sourced: Tab completes."""
    recent.remember_room("deploys")
    rc = tmp_path / "bashrc"
    settings = ["PS1='$ '", "bind 'set bell-style none'", "bind 'set enable-bracketed-paste off'"]
    rc.write_text("\n".join([f"source {BASH_SCRIPT}", *settings]) + "\n")
    shell = pexpect.spawn(
        "bash",
        ["--noprofile", "--rcfile", str(rc), "-i"],
        env=chatctl_on_path,
        encoding="utf-8",
        timeout=20,
        dimensions=(24, 200),
    )
    try:
        shell.expect_exact("$ ")
        shell.send("echo [$(complete -p chatctl)]\r")
        shell.expect_exact("[complete -o default -F _chatctl_completion chatctl]")
        shell.expect_exact("$ ")
        # Complete a command line with three Tabs, then turn it into an echo to read it back.
        shell.send("chatctl tok\t")
        shell.expect_exact("en ")
        shell.send("cr\t")
        shell.expect_exact("eate ")
        shell.send("--room dep\t")
        shell.expect_exact("loys ")
        shell.send("\x01echo \r")  # Ctrl-A: start of line
        shell.expect("[\r\n]chatctl token create --room deploys\r\n")
        shell.expect_exact("$ ")
    finally:
        shell.close(force=True)


def require_shell(name: str) -> str:
    """zsh and fish: skipped loudly on a user's machine without them, a failure under CI
    (.ci/run installs both)."""
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is not installed: its completion script is not checked here"
        if IN_CI:
            pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
        pytest.skip(message)
    return binary


@pytest.mark.parametrize("how", ["autoload", "source"])
def test_tab_in_an_interactive_zsh(
    chatctl_on_path: dict[str, str], tmp_path: Path, how: str
) -> None:
    """zsh loads share/zsh/site-functions/_chatctl from $fpath (every Tab must complete, the
    first one too), or users source the file after compinit."""
    zsh = require_shell("zsh")
    recent.remember_room("deploys")
    fn = tmp_path / "site-functions"
    fn.mkdir()
    shutil.copy(ROOT / "completions" / "_chatctl", fn / "_chatctl")
    rc = [f"fpath=({fn} $fpath)" if how == "autoload" else "", "autoload -Uz compinit"]
    rc += ["compinit -u -d $ZDOTDIR/.zcompdump", "PS1='%% '", "unsetopt beep"]
    if how == "source":
        rc.append(f"source {fn / '_chatctl'}")
    (tmp_path / ".zshrc").write_text("\n".join(rc) + "\n")
    env = dict(chatctl_on_path, ZDOTDIR=str(tmp_path))
    shell = pexpect.spawn(zsh, ["-i"], env=env, encoding="utf-8", timeout=20, dimensions=(24, 200))
    try:
        shell.expect_exact("% ")
        shell.send("chatctl tok\t")
        shell.expect_exact("token")
        shell.send("cr\t")
        shell.expect_exact("eate")
        shell.send("--room dep\t")
        shell.expect_exact("loys")
        shell.send("\x01echo \r")
        shell.expect(r"[\r\n]chatctl token create --room deploys\s*\r\n")
    finally:
        shell.close(force=True)


def test_fish_completes(chatctl_on_path: dict[str, str]) -> None:
    fish = require_shell("fish")
    recent.remember_room("deploys")
    script = ROOT / "completions" / "chatctl.fish"
    commands = (
        f"source {script}; complete -C 'chatctl tok'; complete -C 'chatctl token create --room dep'"
    )
    result = subprocess.run(
        [fish, "--no-config", "-c", commands],
        env=chatctl_on_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    values = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert values == ["token", "deploys"], result.stdout + result.stderr


def test_every_room_parameter_completes_recent_rooms() -> None:
    """Any ROOM argument or --room option (join, send, token create, ...) completes from the
    recent rooms: wire new ones with ``autocompletion=chatctl.recent.complete_room``."""
    recent.remember_room("general")
    recent.remember_room("ops")
    root: Any = load_app_command()
    found = []

    def walk(command: Any, ctx: Any) -> None:
        for param in command.params:
            if param.name == "room":
                items = param.shell_complete(ctx, "")
                assert [i.value for i in items] == ["ops", "general"], ctx.command_path
                found.append(ctx.command_path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, sub.make_context(name, [], parent=ctx, resilient_parsing=True))

    walk(root, root.make_context("chatctl", [], resilient_parsing=True))
    assert "chatctl token create" in found


# ----------------------------------------------------------------------------- recent rooms


def test_recent_rooms_most_recent_first_without_duplicates(isolated_home: Path) -> None:
    assert recent.recent_rooms() == []
    for room in ("a", "b", "c", "a"):
        recent.remember_room(room)
    assert recent.recent_rooms() == ["a", "c", "b"]
    assert recent.rooms_file() == isolated_home / "state" / "chatctl" / "rooms"
    assert recent.complete_room("b") == ["b"]


def test_recent_rooms_are_bounded_and_ignore_invalid_names() -> None:
    for i in range(recent.MAX_ROOMS + 10):
        recent.remember_room(f"room{i}")
    recent.remember_room("not a room\nx")
    rooms = recent.recent_rooms()
    assert len(rooms) == recent.MAX_ROOMS and rooms[0] == f"room{recent.MAX_ROOMS + 9}"
    recent.rooms_file().write_text("ok\n\n../etc\nok\n  spaced  \n")
    assert recent.recent_rooms() == ["ok", "spaced"]


def test_recent_rooms_never_raise(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = isolated_home / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # state dir cannot be created
    recent.remember_room("ops")
    assert recent.recent_rooms() == [] and recent.complete_room("o") == []


def _remember_many(prefix: str, n: int) -> None:
    for i in range(n):
        recent.remember_room(f"{prefix}{i}")


def test_concurrent_writers_lose_nothing() -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_remember_many, args=(f"w{w}-", 8)) for w in range(5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    rooms = recent.recent_rooms()
    assert sorted(rooms) == sorted(f"w{w}-{i}" for w in range(5) for i in range(8))

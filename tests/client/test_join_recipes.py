"""Every documented ``chatctl join … | jq`` recipe, run as written (README, ``--help``,
docs/clients.md, man/pages.toml) against a real server while users come and go and the
server restarts (issue 25 item 3): ``--json`` prints messages only, so no recipe prints a
``null`` line or a ``user: `` line with no message."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import tomllib
import tty
from pathlib import Path

from genlib import ROOT
from support.client_helpers import client_env, run_cli
from support.helpers import ServeProcess, require_tool, wait_until


def documented_recipes() -> list[str]:
    """Each one-line ``chatctl join … | jq …`` command in the docs, as written."""
    texts = [(ROOT / "README.md").read_text(), (ROOT / "docs" / "clients.md").read_text()]
    lines = [
        line
        for text in texts
        for block in re.findall(r"```sh\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]
    pages = tomllib.loads((ROOT / "man" / "pages.toml").read_text())
    lines += [example["command"] for example in pages["join"]["examples"]]
    helped = run_cli("join", "--help", env=client_env(1, user="")).stdout
    lines += [line.strip() for line in helped.splitlines()]
    found = []
    for line in lines:
        command = re.sub(r"\s+#.*$", "", line.strip())  # a trailing comment
        if command.startswith("chatctl join ") and "| jq" in command and command not in found:
            found.append(command)
    return found


def test_the_docs_have_the_recipes() -> None:
    recipes = documented_recipes()
    assert "chatctl join ops --json | jq -r '.user + \": \" + .message'" in recipes
    assert "chatctl join ops --json | jq -r .message" in recipes  # --help
    assert len(recipes) >= 5, recipes


def room_of(recipe: str) -> str:
    return recipe.split()[2]


class Run:
    """A recipe run by bash with its stdout on a pseudo-terminal, as in a user's terminal (jq
    writes each line at once to a terminal; to a pipe or a file it would buffer them)."""

    def __init__(self, recipe: str, workdir: Path, env: dict[str, str]) -> None:
        self.recipe = recipe
        master, slave = os.openpty()
        tty.setraw(slave)  # no \r added to the lines
        self.proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", recipe],
            cwd=workdir,
            env=env,
            stdout=slave,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: chatctl and jq stopped together
        )
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self.read, args=(master,), daemon=True)
        self.reader.start()

    def read(self, fd: int) -> None:
        try:
            while chunk := os.read(fd, 4096):
                self.chunks.append(chunk)
        except OSError:  # EIO: every writer closed the terminal
            pass
        finally:
            os.close(fd)

    def lines(self) -> list[str]:
        """The lines printed, without jq's colours (a terminal gets them)."""
        text = b"".join(self.chunks).decode()
        return re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)


def check(recipe: str, got: list[str], sent: list[str]) -> bool:
    """True once ``got`` is what ``recipe`` should print for the messages ``sent``."""
    if "presence" in recipe:  # the --events example: carol's joins and leaves
        frames = [json.loads(line) for line in got]
        return len(frames) >= 4 and all(f["type"] == "presence" for f in frames)
    count = re.search(r"--count (\d+)", recipe)
    wanted = sent[: int(count.group(1))] if count else sent
    assert len(got) <= len(wanted), (recipe, got)
    for line, text in zip(got, wanted, strict=False):
        assert line.endswith(text) and "null" not in line, (recipe, got)
    return len(got) == len(wanted)


def test_every_jq_recipe_through_presence_changes_and_a_restart(tmp_path: Path) -> None:
    require_tool("jq", "the documented recipes pipe into it (apt-get install jq)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "chatctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m chatctl "$@"\n')
    (bindir / "chatctl").chmod(0o755)
    (tmp_path / "ops.pos").write_text("0\n")
    recipes = documented_recipes()
    rooms = sorted({room_of(r) for r in recipes})
    srv = ServeProcess().start()
    runs: list[Run] = []
    sent: dict[str, list[str]] = {room: [] for room in rooms}

    def start(recipe: str, user: str) -> None:
        env = client_env(srv.port, user=user)
        env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
        runs.append(Run(recipe, tmp_path, env))

    def connected(users: list[str], times: int) -> bool:
        log = srv.read_log()
        return all(log.count(f"connect user={user} ") >= times for user in users)

    def round_of(n: int) -> None:
        for room in rooms:  # carol comes and goes, then bob says something
            carol = client_env(srv.port, "carol")
            assert run_cli("join", room, "--once", "--history", "0", env=carol).returncode == 0
            text = f"{room} message {n}"
            res = run_cli("send", room, text, env=client_env(srv.port, "bob"))
            assert res.returncode == 0, res.stderr
            sent[room].append(text)

    try:
        followers = [r for r in recipes if "--once" not in r]
        for i, recipe in enumerate(followers):
            start(recipe, f"reader{i}")
        wait_until(lambda: connected([f"reader{i}" for i in range(len(followers))], 1), 30)
        round_of(1)
        srv.stop()
        srv.start()  # the same port and data: the followers reconnect and resume
        live = [f"reader{i}" for i, r in enumerate(followers) if "--count" not in r]
        wait_until(lambda: connected(live, 2), 30)
        round_of(2)
        for recipe in [r for r in recipes if "--once" in r]:
            start(recipe, "latecomer")
        for run in runs:
            wait_until(lambda r=run: check(r.recipe, r.lines(), sent[room_of(r.recipe)]), 30)
            if "--count" in run.recipe or "--once" in run.recipe:  # these end by themselves
                assert run.proc.wait(30) == 0, (run.recipe, run.lines())
    finally:
        for run in runs:
            run.stop()
        srv.stop()

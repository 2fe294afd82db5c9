"""``chatctl join --since ID@EPOCH``: a script's saved position survives a reset room (issue 22
item 2), and README's resume recipe, run as written, handles every message once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from genlib import ROOT
from support.client_helpers import client_env, run_cli, serving


def send_lines(port: int, room: str, *lines: str) -> None:
    env = client_env(port, user="bob")
    res = run_cli("send", room, input="".join(f"{line}\n" for line in lines), env=env)
    assert res.returncode == 0, res.stderr


def messages(stdout: str) -> list[dict[str, object]]:
    frames = [json.loads(line) for line in stdout.splitlines()]
    return [f for f in frames if f["type"] == "message"]


def test_since_id_at_epoch_prints_a_reset_room_from_id_1() -> None:
    """The finding: after the room's history was lost (a --memory server restarted) and five
    new messages came, ``--since 3`` printed new4 and new5, exit 0, no word. With the epoch
    that id came in, join says the room was reset and prints new1-new5."""
    with serving("--memory") as srv:
        send_lines(srv.port, "ops", "old1", "old2", "old3")
        env = client_env(srv.port)
        before = messages(run_cli("join", "ops", "--once", "--json", env=env).stdout)
        assert [m["message"] for m in before] == ["old1", "old2", "old3"]
        old_epoch = before[-1]["epoch"]
        assert all(m["epoch"] == old_epoch for m in before)  # every --json message has it
    with serving("--memory", port=srv.port):
        send_lines(srv.port, "ops", *(f"new{i}" for i in range(1, 6)))
        res = run_cli("join", "ops", "--since", f"3@{old_epoch}", "--once", "--json", env=env)
        bare = run_cli("join", "ops", "--since", "3", "--once", "--json", env=env)
        new_epoch = messages(res.stdout)[0]["epoch"]
        same = run_cli("join", "ops", "--since", f"4@{new_epoch}", "--once", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert [(m["id"], m["message"]) for m in messages(res.stdout)] == [
        (i, f"new{i}") for i in range(1, 6)
    ]
    assert new_epoch != old_epoch
    assert res.stderr == (
        "chatctl: missed messages: ops lost its history on the server and its ids start again "
        "from 1; messages after #3 sent before that are gone\n"
    )
    # without the epoch the server cannot tell (the documented limit of a bare id)
    assert [m["message"] for m in messages(bare.stdout)] == ["new4", "new5"]
    # the same epoch: a plain resume, nothing said
    assert same.returncode == 0 and same.stderr == ""
    assert [m["message"] for m in messages(same.stdout)] == ["new5"]


def test_bad_since_values_are_usage_errors() -> None:
    env = client_env(1)
    for value, why in [
        ("x", "expected ID or ID@EPOCH"),
        ("-1", "expected ID or ID@EPOCH"),
        ("3@", "the epoch is 1-64 characters"),
        ("3@a/b", "the epoch is 1-64 characters"),
    ]:
        res = run_cli("join", "ops", "--since", value, "--once", env=env)
        assert res.returncode == 2, (value, res.stderr)
        assert res.stderr.startswith(f"chatctl: --since {value!r}: {why}"), res.stderr
        assert res.stderr.count("\n") == 1


def resume_recipe() -> str:
    """README's resume recipe: the sh block that saves ``ID@EPOCH`` in ops.pos."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    (recipe,) = [b for b in blocks if "ops.pos" in b]
    return str(recipe)


def run_recipe(port: int, workdir: Path) -> subprocess.CompletedProcess[str]:
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "chatctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m chatctl "$@"\n')
    (bindir / "chatctl").chmod(0o755)
    env = client_env(port)
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", resume_recipe()],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_readme_resume_recipe_handles_every_message_once(tmp_path: Path) -> None:
    with serving("--memory") as srv:
        send_lines(srv.port, "ops", "old1", "old2", "old3")
        first = run_recipe(srv.port, tmp_path)
        again = run_recipe(srv.port, tmp_path)  # nothing new: nothing handled
        send_lines(srv.port, "ops", "old4")
        third = run_recipe(srv.port, tmp_path)
    saved = (tmp_path / "ops.pos").read_text().strip()
    with serving("--memory", port=srv.port):  # the room's history is lost: a new epoch
        send_lines(srv.port, "ops", "new1", "new2", "new3", "new4", "new5", "new6")
        after_reset = run_recipe(srv.port, tmp_path)
    for run in (first, again, third, after_reset):
        assert run.returncode == 0, run.stderr
    assert first.stdout == "handling: old1\nhandling: old2\nhandling: old3\n"
    assert again.stdout == "" and again.stderr == ""
    assert third.stdout == "handling: old4\n"
    assert re.fullmatch(r"4@[A-Za-z0-9._-]+", saved)
    assert after_reset.stdout == "".join(f"handling: new{i}\n" for i in range(1, 7))
    assert "missed messages: ops lost its history" in after_reset.stderr
    pos = (tmp_path / "ops.pos").read_text().strip()
    assert pos.startswith("6@") and pos != saved.replace("4@", "6@")  # the new epoch

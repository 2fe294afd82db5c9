"""Every command's --help: a one-line summary, examples that render one per line, the
environment variables it reads and, for commands that run work, its exit statuses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from gen_man import epilog_section
from genlib import ROOT, load_app_command


def all_commands() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []

    def walk(command: Any, path: str) -> None:
        out.append((path, command))
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if not sub.hidden:
                walk(sub, f"{path} {name}")

    walk(load_app_command(), "chatctl")
    return out


COMMANDS = all_commands()


def help_text(path: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    env.update(COLUMNS="80", NO_COLOR="1", TERM="dumb")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "chatctl", *path.split()[1:], "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def envvars(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        env = getattr(param, "envvar", None)
        names.update([env] if isinstance(env, str) else env or [])
    return names


def examples(epilog: str) -> list[str]:
    section = epilog_section(epilog, "Examples")
    return [ln.strip() for ln in section.splitlines()[1:] if ln.strip()]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_help_has_summary_examples_and_environment(path: str, command: Any) -> None:
    text = help_text(path)
    lines = [ln.strip(" │") for ln in text.splitlines()]
    summary = (command.help or "").strip().splitlines()[0] if command.help else ""
    assert summary and summary.split(".")[0] in " ".join(lines), f"{path}: no one-line summary"
    epilog = command.epilog or ""
    assert "Examples:" in text and examples(epilog), f"{path}: no examples in --help"
    # each example is on a line of its own in the rendered help (not re-wrapped or joined)
    for example in examples(epilog):
        assert example in lines, f"{path}: example {example!r} does not render on one line"
        assert "chatctl" in example, f"{path}: {example!r} is not a chatctl command line"
    needed = envvars(command)
    if needed:
        assert "Environment:" in text, f"{path}: reads {sorted(needed)} but --help says nothing"
    environment = epilog_section(epilog, "Environment")
    for name in needed:
        assert re.search(rf"\b{name}\b", environment), f"{path}: {name} not under Environment"


@pytest.mark.parametrize(
    ("path", "command"),
    [(p, c) for p, c in COMMANDS if not getattr(c, "commands", None)],
    ids=[p for p, c in COMMANDS if not getattr(c, "commands", None)],
)
def test_every_command_that_runs_states_its_exit_statuses(path: str, command: Any) -> None:
    text = help_text(path)
    assert "Exit status:" in text, f"{path}: --help does not state its exit statuses"
    assert re.search(r"Exit status:.*\b0\b", " ".join(text.split())), path

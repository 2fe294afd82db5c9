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


# ----------------------------------------------------------------------------- metavars

#: typer's own value markers: ``<str>``, ``<int range>``, ``<list[str]>``, ``[x>=0]``, ``{room}``
TYPER_MARKERS = re.compile(
    r"<(?:list\[)?(?:str|int|float|bool|path|file|directory|datetime|uuid)(?: range)?\]?>"
    r"|\[[\d.]*<?=?x[<>]=?[\d.]*\]|\{[a-z_]+\}"
)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_help_names_values_as_man_pages_do(path: str, command: Any) -> None:
    """ROOM, N, SECONDS, FILE, URL instead of typer's <str>, <int range> [x>=0] and {room}."""
    text = help_text(path)
    assert not TYPER_MARKERS.findall(text), f"{path}: {TYPER_MARKERS.findall(text)}"
    assert "<bool>" not in text


def test_join_and_send_help_read_like_a_man_page() -> None:
    join = help_text("chatctl join")
    assert "Usage: chatctl join [OPTIONS] [ROOM]..." in join  # rooms: config.toml's by default
    rows = {" ".join(ln.strip(" │").split()[:2]) for ln in join.splitlines()}
    assert {"--since ID[@EPOCH]", "--timeout SECONDS", "--token-file FILE", "--json One"} <= rows
    assert re.search(r"--server\s+-s\s+URL", join)
    assert "Usage: chatctl send [OPTIONS] ROOM [TEXT]..." in help_text("chatctl send")
    serve = help_text("chatctl serve")
    assert re.search(r"--log-format\s+text\|json", serve)
    assert re.search(r"--drain-timeout\s+SECONDS", serve)


def test_typer_methods_the_metavars_override_still_exist() -> None:
    from chatctl.cli.metavars import OVERRIDDEN

    for cls, names in OVERRIDDEN.items():
        for name in names:
            assert callable(getattr(cls, name, None)), f"typer's {cls.__name__}.{name} is gone"


def test_no_install_completion_options_compete_with_the_shipped_scripts() -> None:
    text = help_text("chatctl")
    assert "--install-completion" not in text and "--show-completion" not in text

"""Every ``--flag`` README.md and docs/ name is one of chatctl's options (of any command,
hidden ones too), or a flag of another tool they show, listed here: a misnamed option
(``--max-pending-bytes`` for ``serve --max-pending``) fails."""

from __future__ import annotations

import re
from typing import Any

from genlib import ROOT, load_app_command

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")

#: flags of the other tools the docs show (not chatctl's)
OTHER_TOOLS = {
    "--help": "every command (click)",
    "--traceback": "chatctl itself, taken before click parses (cli/__init__.py)",
    "--appendonly": "redis-server",
    "--bind": "redis-server",
    "--daemonize": "redis-server",
    "--save": "redis-server",
    "--cluster": "redis-cli",
    "--check": "ruff format, scripts/generate.py",
    "--dist": "pytest-xdist",
    "--output": "df",
    "--unbuffered": "jq",
    "--now": "systemctl",
    "--gil": "py-spy",
    "--threads": "py-spy",
    "--base": "bench/compare.py",
    "--knee-rate": "bench/compare.py",
    "--knee-target": "bench/compare.py",
    "--pin": "bench/compare.py",
    "--out": "bench/compare.py",
    "--repeat": "bench/compare.py",
    "--targets": "bench/compare.py",
    "--waves": "bench/durability.py",
    "--messages": "bench/redis_memory.py",
    "--users": "bench/redis_memory.py",
    "--client-ids": "bench/redis_memory.py",
    "--node-max-bytes": "bench/redis_memory.py",
    "--seconds": "bench/redis_latency.py",
}


def chatctl_options() -> set[str]:
    options: set[str] = set()

    def walk(command: Any) -> None:
        for param in command.params:
            options.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(load_app_command())
    return options


def named_flags() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for flag in FLAG.findall(doc.read_text()):
            found.setdefault(flag, set()).add(str(doc.relative_to(ROOT)))
    return found


def test_every_flag_the_docs_name_exists() -> None:
    known = chatctl_options()
    assert {"--max-message", "--max-pending", "--user-rate-limit"} <= known  # serve's
    unknown = {
        flag: sorted(where)
        for flag, where in named_flags().items()
        if flag not in known and flag not in OTHER_TOOLS
    }
    assert unknown == {}, "not an option of chatctl (nor a tool's in OTHER_TOOLS)"


def test_the_other_tools_flags_are_still_named() -> None:
    # so that the list stays short: a flag the docs no longer name leaves it
    stale = set(OTHER_TOOLS) - set(named_flags())
    assert stale == set()

"""README.md tells the truth: CI runs exactly its test command, and its set-up works."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = readme_blocks()[1].strip()
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, f"{test_command!r} is not a line of .ci/run"


def test_readme_first_command_installs_and_serves() -> None:
    assert readme_blocks()[0].strip() == "pip install . && chatctl serve"


def test_ci_installs_redis_server_when_missing() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "command -v redis-server" in ci and "apt-get install -y" in ci

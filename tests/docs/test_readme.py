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


def test_ci_checks_lint_and_types_as_the_readme_says_before_the_tests() -> None:
    development = readme_blocks_of("Development")[0].splitlines()
    assert development[0] == readme_blocks()[1].strip()  # the same test command
    lint = development[1]
    assert lint.startswith("ruff check ") and lint.endswith("&& mypy")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    for check in lint.split(" && "):
        # a line of its own: `set -e` does not stop at a failure inside an && list
        assert check in ci, f"{check!r} is not a line of .ci/run"
        assert ci.index(check) < ci.index(development[0])
        assert f"entry: {check}\n" in hooks, f"pre-commit does not run {check!r}"


def readme_blocks_of(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.S)


def test_readme_first_command_installs_and_serves() -> None:
    assert readme_blocks()[0].strip() == "pip install . && chatctl serve"


def test_ci_installs_redis_server_when_missing() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "command -v redis-server" in ci and "apt-get install -y" in ci

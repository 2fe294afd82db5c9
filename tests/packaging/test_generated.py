"""Generated files (completions/, man/*.1) are fresh, render cleanly, and the generator refuses
hand-written text that disagrees with the CLI."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import gen_completions
import gen_docs
import gen_man
from genlib import ROOT, load_app_command
from support.helpers import IN_CI

MAN_PAGES = sorted((ROOT / "man").glob("*.1"))


def require(binary: str, package: str) -> str:
    """The path of ``binary``; skip loudly without it, but fail under CI."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (apt-get install {package}): cannot check man pages"
        if IN_CI:
            pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
        pytest.skip(message)
    return path


# ----------------------------------------------------------------------------- staleness


def test_completions_are_fresh() -> None:
    assert gen_completions.main(["--check"]) == 0, "run: python scripts/generate.py"


def test_man_pages_are_fresh() -> None:
    assert gen_man.main(["--check"]) == 0, "run: python scripts/generate.py"


def test_configuration_doc_serve_settings_are_fresh() -> None:
    """docs/configuration.md's serve-settings tables are the declarations' (gen_docs)."""
    assert gen_docs.main(["--check"]) == 0, "run: python scripts/generate.py"
    text = gen_docs.DOC.read_text()
    for flag in ("--broker", "--redis-url", "--memory", "--data-dir", "--fsync", "--redis-prefix"):
        assert f"| `{flag}` |" in text


def test_generate_check_runs_as_a_script() -> None:
    """The command the README tells contributors to run, in check mode."""
    result = subprocess.run(
        [sys.executable, "scripts/generate.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_mode_reports_a_stale_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "man"
    out.mkdir()
    for page in MAN_PAGES:
        (out / page.name).write_text(page.read_text())
    (out / "chatctl.1").write_text("stale\n")
    (out / "chatctl-gone.1").write_text("a page for a removed command\n")
    monkeypatch.setattr(gen_man, "OUT", out)
    monkeypatch.setattr(gen_man, "ROOT", tmp_path)
    monkeypatch.setattr("genlib.ROOT", tmp_path)
    assert gen_man.main(["--check"]) == 1
    assert gen_man.main([]) == 0
    assert not (out / "chatctl-gone.1").exists()
    assert gen_man.main(["--check"]) == 0


def test_one_page_per_top_level_command() -> None:
    commands = load_app_command().commands  # type: ignore[attr-defined]
    expected = {"chatctl.1", *(f"chatctl-{name}.1" for name in commands)}
    assert {p.name for p in MAN_PAGES} == expected


# ----------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders_without_groff_warnings(page: Path) -> None:
    groff = require("groff", "groff-base")
    result = subprocess.run(
        [groff, "-man", "-ww", "-z", str(page)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_renders_with_man(page: Path) -> None:
    man = require("man", "man-db")
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C"}
    result = subprocess.run(
        [man, "-l", str(page)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = result.stdout
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{section}\n" in text, f"{page.name}: no {section} section"
    assert page.stem in text.splitlines()[0].lower()


def test_serve_page_documents_every_option_and_its_default() -> None:
    text = (ROOT / "man" / "chatctl-serve.1").read_text()
    serve = load_app_command().commands["serve"]  # type: ignore[attr-defined]
    for param in serve.params:
        if getattr(param, "hidden", False):  # test-only knobs stay out of the manual
            continue
        for flag in param.opts:
            assert gen_man.esc(flag) in text
    assert "Default: 8000." in text and "Environment: CHATCTL_REDIS_URL." in text


# ----------------------------------------------------------------------------- the rules


def pages() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "man" / "pages.toml").read_text())
    return copy.deepcopy(data)


def fails(data: dict[str, Any], match: str) -> None:
    with pytest.raises(gen_man.DataError, match=match):
        gen_man.generate(data)


def test_a_page_for_a_command_that_does_not_exist_fails() -> None:
    data = pages()
    data["frobnicate"] = {"description": "Frobnicates."}
    fails(data, r"\[frobnicate\] is a page for a command chatctl does not have")


def test_a_command_without_a_page_fails() -> None:
    data = pages()
    del data["token"]
    fails(data, "'chatctl token' has no page")


def test_naming_a_command_that_does_not_exist_fails() -> None:
    data = pages()
    data["serve"]["description"] += "\n\nSee `chatctl frobnicate` too."
    fails(data, "names 'chatctl frobnicate'")


def test_naming_a_flag_that_does_not_exist_fails() -> None:
    data = pages()
    data["token"]["examples"].append({"text": "x", "command": "chatctl token create --nope"})
    fails(data, "mentions --nope")


def test_an_unknown_exit_status_fails() -> None:
    data = pages()
    data["serve"]["exit_status"]["42"] = "never"
    fails(data, "42 is not in chatctl.status")


def test_an_undocumented_environment_variable_fails() -> None:
    data = pages()
    del data["serve"]["environment"]["CHATCTL_SECRET"]  # named by --help, not an option's
    fails(data, r"\[serve\] does not describe CHATCTL_SECRET")


def test_an_options_variable_is_described_by_its_setting() -> None:
    """A flag's variable needs no hand-written text: its declaration's help is used."""
    data = pages()
    del data["serve"]["environment"]["CHATCTL_REDIS_URL"]
    serve = gen_man.generate(data)[gen_man.OUT / "chatctl-serve.1"]
    assert "As \\fB\\-\\-redis\\-url\\fR: Share rooms with other nodes" in serve


def test_pending_pages_and_options_are_dropped_while_absent() -> None:
    data = pages()
    data["serve"]["pending_options"].append("--frob")
    data["serve"]["examples"].append({"text": "later", "command": "chatctl serve --frob"})
    data["serve"]["description"] += "\n\nWith `--frob` it frobs."
    data["later"] = {"pending": True, "description": "Later.", "see_also": ["chatctl(1)"]}
    data["serve"]["see_also"].append("chatctl-later(1)")
    outputs = gen_man.generate(data)
    serve = outputs[gen_man.OUT / "chatctl-serve.1"]
    assert "frob" not in serve and "chatctl\\-later" not in serve
    assert gen_man.OUT / "chatctl-later.1" not in outputs


def test_pending_material_for_existing_commands_is_rendered() -> None:
    """After the merge, pages marked pending appear without editing pages.toml."""
    data = pages()
    data["serve"]["pending"] = True
    outputs = gen_man.generate(data)
    assert "Run the chat server" in outputs[gen_man.OUT / "chatctl-serve.1"]

"""The wheel installs completions and man pages where shells and man(1) look for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pexpect
import pytest

from genlib import ROOT
from support.helpers import IN_CI

pytestmark = pytest.mark.slow

#: what a build or a check leaves in a checkout, not copied into the tree the wheel is built from
BUILD_LITTER = (".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # pip builds in the source tree (build/, src/*.egg-info): a copy keeps two builds at once
    # (pytest-xdist workers, a developer's pip install) from sharing those directories
    source = tmp_path_factory.mktemp("source") / "chatctl"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*BUILD_LITTER))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("chatctl-*.whl")
    return zipfile.ZipFile(built)


def data_files(wheel: zipfile.ZipFile) -> dict[str, bytes]:
    out = {}
    for name in wheel.namelist():
        _, sep, rest = name.partition(".data/data/")
        if sep:
            out[rest] = wheel.read(name)
    return out


def test_completions_are_installed_in_the_standard_places(wheel: zipfile.ZipFile) -> None:
    files = data_files(wheel)
    completions = ROOT / "completions"
    expected = {
        "share/bash-completion/completions/chatctl": completions / "chatctl.bash",
        "share/zsh/site-functions/_chatctl": completions / "_chatctl",
        "share/fish/vendor_completions.d/chatctl.fish": completions / "chatctl.fish",
    }
    for installed, source in expected.items():
        assert files.get(installed) == source.read_bytes(), installed


def test_every_man_page_is_installed(wheel: zipfile.ZipFile) -> None:
    files = data_files(wheel)
    pages: list[Path] = sorted((ROOT / "man").glob("*.1"))
    assert pages
    for page in pages:
        assert files.get(f"share/man/man1/{page.name}") == page.read_bytes(), page.name
    assert not [f for f in files if f.startswith("share/man/") and not f.endswith(".1")]


def test_bash_completion_loads_the_installed_file(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    """bash-completion finds share/bash-completion/completions/chatctl under a prefix in
    XDG_DATA_DIRS by itself, on the first Tab (no `source` in any rc file)."""
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.exists():
        message = "bash-completion is not installed (apt-get install bash-completion)"
        if IN_CI:
            pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
        pytest.skip(message)
    prefix = tmp_path / "prefix"
    for name, data in data_files(wheel).items():
        (prefix / name).parent.mkdir(parents=True, exist_ok=True)
        (prefix / name).write_bytes(data)
    (prefix / "bin").mkdir()
    (prefix / "bin" / "chatctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m chatctl "$@"\n')
    (prefix / "bin" / "chatctl").chmod(0o755)
    rc = tmp_path / "bashrc"
    rc.write_text(
        f"source {loader}\nPS1='$ '\n"
        "bind 'set bell-style none'\nbind 'set enable-bracketed-paste off'\n"
    )
    env = dict(os.environ)
    env["PATH"] = f"{prefix / 'bin'}{os.pathsep}{env['PATH']}"
    env["XDG_DATA_DIRS"] = f"{prefix / 'share'}:/usr/local/share:/usr/share"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    shell = pexpect.spawn(
        "bash",
        ["--noprofile", "--rcfile", str(rc), "-i"],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(24, 200),
    )
    try:
        shell.expect_exact("$ ")
        shell.send("chatctl tok\t")
        shell.expect_exact("en ")
        shell.send("ins\t")
        shell.expect_exact("pect ")
        shell.send("\x01echo \r")
        shell.expect(r"[\r\n]chatctl token inspect\s*\r\n")
    finally:
        shell.close(force=True)


def test_the_web_page_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    """``chatctl serve`` answers ``/`` from these files (importlib.resources)."""
    web = ROOT / "src" / "chatctl" / "web"
    for name in ("index.html", "app.js", "render.js", "outbox.js", "style.css", "icon.svg"):
        assert wheel.read(f"chatctl/web/{name}") == (web / name).read_bytes(), name

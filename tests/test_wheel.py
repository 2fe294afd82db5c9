"""The wheel installs completions and man pages where shells and man(1) look for them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from genlib import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
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

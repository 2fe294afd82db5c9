"""docs/deploy.md's runnable parts work: the key commands and the Python token issuer produce
tokens `chatctl serve --public-key` accepts, and the systemd unit passes systemd-analyze."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genlib import ROOT

DOC = (ROOT / "docs" / "deploy.md").read_text()
ISSUING = DOC.split("\n## Issuing tokens from another service\n", 1)[1].split("\n## ", 1)[0]


def block(lang: str, text: str = DOC, index: int = 0) -> str:
    blocks: list[str] = re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)
    return blocks[index]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def chatctl(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCTL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "chatctl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_token_issued_as_documented_verifies(tmp_path: Path, algorithm: str) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    keygen = block("sh", ISSUING, 0).splitlines()
    ec, rsa, public = keygen[0], keygen[1].split("# or RS256: ")[1], keygen[2]
    for command in (ec if algorithm == "ES256" else rsa, public):
        result = run("bash", "-c", command.split("  #")[0], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    issuer = block("python", ISSUING).replace("/etc/myapp/issuer-private.pem", "issuer-private.pem")
    issuer = issuer.replace('algorithm="ES256"', f'algorithm="{algorithm}"')
    (tmp_path / "issuer.py").write_text(issuer)
    result = run(sys.executable, "issuer.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    # the inspect command of the doc, with the key path of this test
    check = block("sh", ISSUING, 2)
    assert "--issuer https://app.example.com --audience chatctl" in " ".join(check.split())
    inspected = chatctl(
        "token",
        "inspect",
        "--json",
        "--public-key",
        str(tmp_path / "issuer-public.pem"),
        "--issuer",
        "https://app.example.com",
        "--audience",
        "chatctl",
        token,
    )
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    assert '"sub": "alice"' in inspected.stdout and "support-*" in inspected.stdout
    wrong_audience = chatctl(
        "token",
        "inspect",
        "--public-key",
        str(tmp_path / "issuer-public.pem"),
        "--audience",
        "other",
        token,
    )
    assert wrong_audience.returncode == 3


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit is not checked")
    unit = block("ini")
    assert "Environment=CHATCTL_SECRET_FILE=%d/secret" in unit
    exec_start = "/opt/chatctl/bin/chatctl"
    assert exec_start in unit
    wrapper = tmp_path / "chatctl"
    wrapper.write_text("#!/bin/sh\n")
    wrapper.chmod(0o755)
    (tmp_path / "chatctl.service").write_text(unit.replace(exec_start, str(wrapper)))
    manpath = tmp_path / "man"
    shutil.copytree(ROOT / "man", manpath / "man1")  # Documentation=man:chatctl-serve(1)
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / "chatctl.service")],
        capture_output=True,
        text=True,
        env={**os.environ, "MANPATH": str(manpath)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr

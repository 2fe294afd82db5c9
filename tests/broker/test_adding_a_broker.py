"""Adding a broker with one option is its module and its registry entry: the conformance
suite, ``chatctl serve --broker`` and its flags pick it up with nothing else written
(tests/support/broker_plugin_example.py is that module and entry)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chatctl.broker.registry import create_broker, registered
from chatctl.server.options import all_settings
from support.broker_plugin_example import ENTRY, LabelledMemoryBroker
from support.helpers import chatctl_env

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent


def _env() -> dict[str, str]:
    path = [str(ROOT / "src"), str(TESTS), os.environ.get("PYTHONPATH", "")]
    return chatctl_env(PYTHONPATH=os.pathsep.join(filter(None, path)))


def test_its_entry_gives_the_broker_its_option_and_a_flag() -> None:
    assert "label" not in {s.name for s in all_settings()}
    with registered(ENTRY):
        assert "label" in {s.name for s in all_settings()}
        broker = create_broker("labelled:", history_size=5, label="blue", prefix="ignored")
        assert isinstance(broker, LabelledMemoryBroker) and broker.label == "blue"
    assert "label" not in {s.name for s in all_settings()}


def test_the_conformance_suite_runs_on_it() -> None:
    plugin = ["-p", "support.broker_plugin_example", "-p", "no:cacheprovider", "-k", "labelled"]
    suite = str(TESTS / "broker" / "test_conformance.py")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugin, suite],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert " passed" in last and "failed" not in last, last
    assert int(last.split(" passed")[0].split()[-1]) >= 10, last


def test_chatctl_serve_takes_it_and_its_flag() -> None:
    code = (
        "import sys, support.broker_plugin_example as p; p.BROKERS.append(p.ENTRY); "
        "from chatctl.cli import main; sys.argv[0] = 'chatctl'; main()"
    )
    run = [sys.executable, "-c", code, "serve"]
    help_text = subprocess.run(
        [*run, "--help"], capture_output=True, text=True, env=_env(), timeout=60, check=True
    ).stdout
    assert "--label" in help_text and "A label the broker keeps." in help_text
    bad = subprocess.run(
        [*run, "--broker", "labelled:", "--memory"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr

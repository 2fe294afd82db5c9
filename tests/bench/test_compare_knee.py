"""bench/compare.py --at-knee against real servers (chatctl serve --memory and the reference
relay), with the scenario's sizes cut down by the flags compare.py passes to every bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--procs", "1", "--clients", "3", "--duration", "0.5", "--drain", "0.5"]


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compare.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
    )


def test_every_target_runs_at_the_fraction_of_the_knee_found_that_round(tmp_path: Path) -> None:
    out = tmp_path / "knee.json"
    proc = compare(
        *("rooms", "--at-knee", "0.5", "--repeat", "1", "--json", "--out", str(out)),
        *("--targets", "chatctl-memory,reference", "--rooms", "2", "--max-steps", "2"),
        *SMALL,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == result
    (knee_run,) = [r for r in result["runs"] if r["kind"] == "knee"]
    assert knee_run["target"] == "reference"
    knee = knee_run["result"]["knee"]
    assert knee is not None and len(knee_run["result"]["steps"]) == 2
    at = [r for r in result["runs"] if r["kind"] == "at-knee"]
    assert [r["target"] for r in at] == ["chatctl-memory", "reference"]
    for r in at:
        assert r["knee"]["rate"] == knee["rate"]  # the knee is recorded with every run
        (step,) = r["result"]["steps"]
        assert step["rate"] == round(knee["rate"] * 0.5, 2)
        assert step["lost"] == 0 and step["delivered"] == step["expected"] > 0
        assert r["headline"]["p99_ms"] == step["latency_ms"]["p99"]
    (chatctl,) = [r for r in at if r["target"] == "chatctl-memory"]
    assert chatctl["headline"]["lag_samples"] > 0  # chatctl's /metrics; the relay has none
    summary = result["summary"]["rooms"]
    assert summary["knees"] == [at[0]["knee"]] and summary["knees"][0]["target"] == "reference"
    assert summary["median"]["reference"]["lost"]["median"] == 0
    p99 = summary["median"]["chatctl-memory"]["p99_ms"]["median"]
    ratio = summary["ratio_to_base"]["chatctl-memory"]["p99_ms"]
    assert ratio == round(p99 / summary["median"]["reference"]["p99_ms"]["median"], 3)
    assert "rooms at 0.5 of the knee of reference" in proc.stderr


def test_a_given_knee_rate_skips_the_search() -> None:
    proc = compare(
        *("fanout", "--at-knee", "0.6", "--knee-rate", "fanout=20", "--repeat", "1"),
        *("--targets", "reference", *SMALL),
    )
    assert proc.returncode == 0, proc.stderr
    assert "#1 knee of reference" not in proc.stdout  # no saturation run
    assert "fanout@0.6 #1 reference" in proc.stdout and '"rate": 12.0' in proc.stdout
    assert "knee rate per sender by round 20 (given)" in proc.stdout


def test_at_knee_takes_only_the_scenarios_with_a_knee() -> None:
    proc = compare("idle", "--at-knee", "0.6")
    assert proc.returncode == 2 and "--at-knee runs the scenarios" in proc.stderr


def test_a_search_whose_first_step_fails_starts_again_from_half_the_rate() -> None:
    # no loopback delivery has a p99 under 0.1 ms: every search's only step fails the bound
    proc = compare(
        *("rooms", "--at-knee", "0.5", "--repeat", "1", "--json", "--targets", "reference"),
        *("--rooms", "1", "--max-steps", "1", "--p99-bound", "0.1", *SMALL),
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    searches = [r for r in result["runs"] if r["kind"] == "knee"]
    assert [r["attempt"] for r in searches] == [0, 1, 2]
    assert [r["result"]["steps"][0]["rate"] for r in searches] == [5.0, 2.5, 1.25]
    assert all(r["result"]["knee"] is None for r in searches)
    assert not [r for r in result["runs"] if r["kind"] == "at-knee"]  # the round is skipped
    assert result["summary"]["rooms"]["knees"] == []
    assert "no knee found: round 1 skipped" in proc.stderr

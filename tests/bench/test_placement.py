"""Whether the bench's load shares CPUs with the server it measures (``compare.py --pin``
keeps them apart): the warning about competing for cores is given only when they do."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chatctl.bench.runner import cpu_placement


def test_a_server_on_the_same_cpus_shares_them() -> None:
    placement = cpu_placement(os.getpid())
    assert placement["shares_cpus_with_server"] is True
    assert placement["cpus"] == len(os.sched_getaffinity(0))


def test_without_a_pid_sharing_is_assumed() -> None:
    assert cpu_placement(None)["shares_cpus_with_server"] is True


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to keep apart")
def test_a_server_pinned_elsewhere_does_not_share() -> None:
    mine = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = mine[0], mine[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}),
    )
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {load_cpu})
        placement = cpu_placement(proc.pid)
    finally:
        os.sched_setaffinity(0, before)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    assert placement == {"cpus": 1, "shares_cpus_with_server": False}

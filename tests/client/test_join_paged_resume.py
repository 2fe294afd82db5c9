"""``chatctl join --since`` when the server cuts the resume's history to fit its bound on
pending output (``--max-pending``): the welcome says ``more``, join pages the rest back with
``history`` requests and prints every message after ``since`` once, in order, with no
"missed messages" notice: nothing was missed."""

from __future__ import annotations

import json

from support.client_helpers import client_env, run_cli, serving

#: a line of about 2,000 bytes as a frame: 60 of them are over 100,000 bytes
BODY = "x" * 2000


def test_join_pages_a_resume_cut_to_fit_max_pending() -> None:
    with serving("--memory", "--max-pending", "32768", "--rate-limit", "0") as srv:
        lines = "".join(f"m{i} {BODY}\n" for i in range(1, 61))
        sent = run_cli("send", "ops", input=lines, env=client_env(srv.port, user="bob"))
        assert sent.returncode == 0, sent.stderr
        env = client_env(srv.port)
        res = run_cli("join", "ops", "--since", "5", "--once", "--json", env=env)
    assert res.returncode == 0, res.stderr
    frames = [json.loads(line) for line in res.stdout.splitlines()]
    got = [(f["id"], f["message"].split()[0]) for f in frames if f["type"] == "message"]
    assert got == [(i, f"m{i}") for i in range(6, 61)]
    assert "missed" not in res.stderr, res.stderr

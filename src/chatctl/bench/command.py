"""``chatctl bench``: turn flags into :class:`~chatctl.bench.options.BenchOptions`, run, print."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from chatctl.bench.options import BenchOptions
from chatctl.bench.processes import run_loop
from chatctl.bench.report import print_rich, print_text, to_json
from chatctl.bench.runner import run_bench
from chatctl.config import resolve_secret
from chatctl.errors import UsageError


def bench_secret(token: str | None, secret_file: Path | None) -> bytes | None:
    """The secret to mint one token per bench user with, unless a token was given."""
    if token:
        return None
    source = resolve_secret(secret_file)
    return None if source is None else source.secret


def run(opts: BenchOptions, *, json_output: bool) -> dict[str, Any]:
    for server in opts.servers:
        if not server.startswith(("ws://", "wss://")):
            raise UsageError(f"--server must be a ws:// or wss:// URL, not {server!r}")
    result: dict[str, Any]
    live = not json_output and sys.stderr.isatty()
    if live:
        from chatctl.bench.report import LiveProgress

        with LiveProgress() as progress:
            result = run_loop(run_bench(opts, progress))
    else:
        result = run_loop(run_bench(opts))
    if json_output:
        print(to_json(result))
    elif sys.stdout.isatty():
        print_rich(result)
    else:
        print_text(result)
    return result


__all__ = ["bench_secret", "run"]

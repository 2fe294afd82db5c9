"""Diff two reports of bench/mem_probe.py by source line: the bytes per connection the second
server holds more (or less) than the first, largest differences first.

    python bench/mem_diff.py reference.txt chatctl.txt --connections 1000

Paths are shortened so that the same line of the same library matches in both (whichever
checkout or virtualenv each server ran from). tracemalloc names the line that first
allocated a block: an object taken from a free list (dicts, floats, frames) is named after
the line that allocated it for a previous owner, so read single lines with care; the totals
are exact.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_LINE = re.compile(r"\s+(-?[\d.]+) KiB\s+(-?\d+) blocks\s+(.*)$")
_TOTAL = re.compile(r"mem_probe: (-?[\d.]+) KiB more")
_SHORTEN = [
    (re.compile(r"^.*/site-packages/"), "site-packages/"),
    (re.compile(r"^.*/lib/python3\.\d+/"), ""),
    (re.compile(r"^/.*?/chatctl/"), "chatctl/"),
    (re.compile(r"^.*/bench/"), "bench/"),
]


def load(path: Path) -> tuple[float, dict[str, tuple[float, int]]]:
    """The last report in ``path``: its total KiB and, by line, (KiB, blocks)."""
    total = 0.0
    lines: dict[str, tuple[float, int]] = {}
    for text in path.read_text(errors="replace").splitlines():
        if m := _TOTAL.match(text):
            total, lines = float(m.group(1)), {}
        elif m := _LINE.match(text):
            where = m.group(3)
            for pattern, short in _SHORTEN:
                where = pattern.sub(short, where)
            lines[where] = (float(m.group(1)), int(m.group(2)))
    return total, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--min-bytes", type=float, default=8.0)
    args = parser.parse_args()
    n = args.connections
    total_a, a = load(args.first)
    total_b, b = load(args.second)
    print(
        f"bytes per connection: {args.first.name} {total_a * 1024 / n:.0f}, "
        f"{args.second.name} {total_b * 1024 / n:.0f}, "
        f"difference {(total_b - total_a) * 1024 / n:+.0f}"
    )
    print(f"{'diff':>7} {'first':>7} {'second':>7}  blocks first/second  line")
    rows = []
    for where in a.keys() | b.keys():
        (ka, na), (kb, nb) = a.get(where, (0.0, 0)), b.get(where, (0.0, 0))
        rows.append(((kb - ka) * 1024 / n, ka * 1024 / n, kb * 1024 / n, na, nb, where))
    rows.sort(key=lambda r: -abs(r[0]))
    for diff, first, second, na, nb, where in rows[: args.top]:
        if abs(diff) >= args.min_bytes:
            print(f"{diff:+7.0f} {first:7.0f} {second:7.0f}  {na:6d} {nb:6d}  {where}")


if __name__ == "__main__":
    main()

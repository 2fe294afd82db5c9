"""Summarise a py-spy collapsed-stack profile (``py-spy record -f raw``): the functions with
the largest inclusive and self shares of the samples.

    py-spy record -p PID -d 8 -r 250 -f raw -o profile.txt
    python bench/profile_summary.py profile.txt [TOP]
"""

from __future__ import annotations

import sys
from collections import Counter


def frame_name(frame: str) -> str:
    """``func (path/file.py:line)`` -> ``func file.py``."""
    func, _, where = frame.partition(" (")
    file = where.rsplit("/", 1)[-1].split(":", 1)[0] if where else ""
    return f"{func} {file}".strip()


def main(path: str, top: int = 30) -> None:
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = [frame_name(fr) for fr in stack.split(";")]
            for name in set(frames):
                inclusive[name] += n
            self_[frames[-1]] += n
    print(f"total samples {total}")
    print("--- inclusive")
    for name, n in inclusive.most_common(top):
        print(f"{100 * n / total:5.1f}% {name}")
    print("--- self")
    for name, n in self_.most_common(top):
        print(f"{100 * n / total:5.1f}% {name}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)

"""What the generators share: the repository root, the CLI's click tree, and write-or-check.

Every generator builds ``{path: text}`` for the files it owns and hands it to
:func:`write_or_check`, which either writes them (deleting owned files it no longer
produces) or, with ``--check``, only reports what is stale and returns 1.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def load_app_command() -> object:
    """The click command tree of *this checkout's* chatctl (not an installed copy)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    import chatctl

    here = Path(chatctl.__file__).resolve()
    if not here.is_relative_to(SRC):
        raise SystemExit(f"generator imported chatctl from {here}, not from {SRC}")
    import typer.main

    from chatctl.cli import app

    return typer.main.get_command(app)


def write_or_check(
    outputs: dict[Path, str], *, owned: Iterable[Path], check: bool, name: str
) -> int:
    """Write ``outputs`` (or compare them, with ``check``); ``owned`` files not in
    ``outputs`` are deleted (or reported). Returns the exit status: 0 fresh, 1 stale."""
    stale: list[str] = []
    for path, text in sorted(outputs.items()):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        rel = path.relative_to(ROOT)
        if check:
            if current is None:
                stale.append(f"{rel}: missing")
            else:
                diff = difflib.unified_diff(
                    current.splitlines(),
                    text.splitlines(),
                    f"{rel} (checked in)",
                    f"{rel} (generated)",
                    lineterm="",
                    n=1,
                )
                stale.append(f"{rel}: stale\n" + "\n".join(list(diff)[:40]))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"{name}: wrote {rel}", file=sys.stderr)
    for path in sorted(set(owned) - set(outputs)):
        rel = path.relative_to(ROOT)
        if check:
            stale.append(f"{rel}: no longer generated (delete it)")
        else:
            path.unlink()
            print(f"{name}: deleted {rel}", file=sys.stderr)
    if stale:
        print(f"{name}: out of date; run: python scripts/generate.py", file=sys.stderr)
        for line in stale:
            print(line, file=sys.stderr)
        return 1
    return 0

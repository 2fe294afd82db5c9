"""``python -m chatctl`` runs the command-line interface."""

from __future__ import annotations

from chatctl.cli import main

if __name__ == "__main__":
    main()

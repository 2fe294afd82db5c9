"""Regenerate every file that comes from the CLI: shell completions, man pages and the
serve-settings tables of docs/configuration.md.

    python scripts/generate.py            # write completions/* and man/*.1
    python scripts/generate.py --check    # exit 1 if any checked-in file is stale

Run it after changing a command, an option, a help text or man/pages.toml, and commit the
output. tests/packaging/test_generated.py runs the --check mode.
"""

from __future__ import annotations

import sys

import gen_completions
import gen_docs
import gen_man


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    statuses = [gen_completions.main(args), gen_man.main(args), gen_docs.main(args)]
    return max(statuses)


if __name__ == "__main__":
    sys.exit(main())

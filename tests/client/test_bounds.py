"""``--since``/``--until`` of ``chatctl history``: every form, with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatctl.client.bounds import Bound, parse_bound
from chatctl.errors import UsageError

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "bound"),
    [
        ("0", Bound(id=0)),
        ("1200", Bound(id=1200)),
        ("1200@5f2c9a1e", Bound(id=1200, epoch="5f2c9a1e")),
        ("90s", Bound(ts=NOW - 90)),
        ("15m", Bound(ts=NOW - 900)),
        ("1h", Bound(ts=NOW - 3600)),
        ("2d", Bound(ts=NOW - 2 * 86400)),
        ("1w", Bound(ts=NOW - 7 * 86400)),
        ("1h30m", Bound(ts=NOW - 5400)),
        ("2026-12-05T14:00:00Z", Bound(ts=datetime(2026, 12, 5, 14, tzinfo=UTC).timestamp())),
        ("2026-12-05 15:00+01:00", Bound(ts=datetime(2026, 12, 5, 14, tzinfo=UTC).timestamp())),
        ("2026-12-05", Bound(ts=datetime(2026, 12, 5).timestamp())),  # local midnight
    ],
)
def test_forms(value: str, bound: Bound) -> None:
    assert parse_bound("--since", value, now=NOW) == bound


@pytest.mark.parametrize("value", ["", "-1", "1.5", "h", "1y", "1@", "1@a b", "soon", "٣"])
def test_other_values_are_usage_errors_naming_the_flag(value: str) -> None:
    with pytest.raises(UsageError, match=f"^--until {value!r}: "):
        parse_bound("--until", value, now=NOW)

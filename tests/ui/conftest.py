"""Fixtures of the ui tests: a ``chatctl serve`` per module, and the terminals a test opens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.client_helpers import redis_url as redis_url
from support.client_helpers import serving
from support.helpers import ServeProcess
from support.vt_screen import Term


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    """One real ``chatctl serve`` (memory broker, free port) for a test module."""
    with serving() as server:
        yield server


@pytest.fixture
def terms() -> Iterator[list[Term]]:
    """Terminals a test opens (support.vt_screen.open_term); any still running at the end
    are killed."""
    opened: list[Term] = []
    yield opened
    for term in opened:
        term.close()

"""A real headless Chromium for the web page tests: the system's ``chromium`` package driven
by playwright's Python package (which downloads nothing here: it is given the executable).

One browser per test module; each test gets fresh contexts (no shared storage). Skipped
loudly where Chromium or playwright is missing, and failed instead under CI (.ci/run
installs Chromium).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from support.helpers import IN_CI

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: This machine has no network: nothing in the browser may try to reach one.
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
    pytest.skip(message)


def chromium_path() -> str:
    path = os.environ.get("CHATCTL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        _missing("Chromium is not installed: the web page tests need it (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Any]:
    """``open_page(url, allow_errors=(), **context_options)``: a page in a fresh context
    whose console errors (but those containing a string of ``allow_errors``) and uncaught
    exceptions fail the test."""
    contexts = []
    problems: list[str] = []

    def opener(
        url: str | None = None, *, allow_errors: tuple[str, ...] = (), **options: Any
    ) -> Page:
        allowed = (*EXPECTED_CONSOLE_ERRORS, *allow_errors)
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: problems.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error" and not any(a in msg.text for a in allowed)
                else None
            ),
        )
        if url is not None:
            page.goto(url)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert not problems, problems


#: Chromium logs a failed WebSocket handshake and the page's probe of it (what a server
#: restart or a refused token looks like); the page handles both.
EXPECTED_CONSOLE_ERRORS = ("WebSocket connection to", "Failed to load resource")

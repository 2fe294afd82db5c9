"""Helpers of the web page tests: join links and what a page shows."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

from support.helpers import make_token

if TYPE_CHECKING:
    from playwright.sync_api import Page


def link(port: int, user: str, room: str = "general", *, host: str = "127.0.0.1") -> str:
    """The join link ``chatctl token create --link`` prints, for a test token."""
    return f"http://{host}:{port}/#" + urlencode({"token": make_token(user), "room": room})


def wait_online(page: Page, user: str) -> None:
    page.locator("#status[data-state=online]").wait_for()
    assert page.locator("#status").text_content() == f"connected as {user}"


def say(page: Page, text: str) -> None:
    """Type ``text`` into the composer and press Enter (Shift+Enter for its newlines)."""
    box = page.locator("#input")
    first, *rest = text.split("\n")
    box.type(first)
    for part in rest:
        box.press("Shift+Enter")
        box.type(part)
    box.press("Enter")


def shown(page: Page) -> list[tuple[str, str]]:
    """(user, text) of each acknowledged message line of the open room, in order."""
    rows = page.locator(".room .log .msg").evaluate_all(
        "els => els.map(e => [e.dataset.user, e.querySelector('.text').textContent])"
    )
    return [(u, t) for u, t in rows]


def wait_shown(page: Page, user: str, text: str) -> None:
    """Until a message line from ``user`` with exactly ``text`` is in the log."""
    page.wait_for_function(
        """([user, text]) => [...document.querySelectorAll('.room .log .msg')].some(
               e => e.dataset.user === user && e.querySelector('.text').textContent === text)""",
        arg=[user, text],
    )

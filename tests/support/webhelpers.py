"""Helpers of the web page tests: join links and what a page shows."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from websockets.sync.client import connect

from support.helpers import make_token, ws_url

if TYPE_CHECKING:
    from playwright.sync_api import Page


def link(
    port: int,
    user: str,
    room: str = "general",
    *,
    host: str = "127.0.0.1",
    rooms: list[str] | None = None,
    ttl: float = 3600,
) -> str:
    """The join link ``chatctl token create --link`` prints, for a test token (allowing
    ``rooms`` only when given, valid for ``ttl`` seconds)."""
    token = make_token(user, rooms=rooms, ttl=ttl)
    return f"http://{host}:{port}/#" + urlencode({"token": token, "room": room})


def in_view(page: Page, selector: str) -> bool:
    """Whether the first element matching ``selector`` is inside the visible part of #chat."""
    return bool(
        page.evaluate(
            """sel => {
                const e = document.querySelector(sel), c = document.getElementById('chat');
                if (!e) return false;
                const r = e.getBoundingClientRect(), v = c.getBoundingClientRect();
                return r.bottom > v.top && r.top < v.bottom;
            }""",
            selector,
        )
    )


def badges(page: Page, room: str) -> tuple[str, str]:
    """(unread, mentions) badge texts of ``room`` in the sidebar ("" when not shown)."""
    item = page.locator(f"#rooms li[data-room='{room}']")
    item.wait_for()
    unread = item.locator(".badge.unread")
    mention = item.locator(".badge.mentions")
    return (
        unread.text_content() or "" if unread.count() else "",
        mention.text_content() or "" if mention.count() else "",
    )


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


def post_raw(port: int, room: str, user: str, texts: list[str]) -> None:
    """Post ``texts`` exactly as given (a plain websockets client, acks awaited; client ids
    unique to this call, so a second call is not taken for a re-send)."""
    batch = secrets.token_hex(4)
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    with connect(ws_url(port, room, presence=0, receive=0), additional_headers=headers) as ws:
        assert json.loads(ws.recv(10))["type"] == "welcome"
        for i, text in enumerate(texts):
            ws.send(json.dumps({"message": text, "client_id": f"raw-{batch}-{i}"}))
            while json.loads(ws.recv(10))["type"] != "ack":
                pass


#: Where the README's screenshots are written when asked:
#: CHATCTL_SCREENSHOT_DIR=docs python3 -m pytest tests/web
SCREENSHOT_DIR = os.environ.get("CHATCTL_SCREENSHOT_DIR")


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    target = Path(SCREENSHOT_DIR) / name if SCREENSHOT_DIR else tmp_path / name
    page.screenshot(path=str(target))
    assert target.read_bytes().startswith(b"\x89PNG")

"""Moderation on the web page (issue 26, part 4), in the system's Chromium against a real
``chatctl serve``: an announcement is drawn apart, a deleted message is marked deleted when
its deletion is announced (and served as a tombstone to a page opened later), the page's
own /delete and /mute, and a kicked page that shows who and why and stops reconnecting."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from websockets.sync.client import connect

from support.client_helpers import serving
from support.helpers import ServeProcess, make_token, wait_until, ws_url
from support.webhelpers import link, post_raw, say, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def as_alice(port: int, room: str, frame: dict[str, Any]) -> None:
    """Send ``frame`` as alice, a moderator of every room; wait for its ack."""
    headers = {"Authorization": f"Bearer {make_token('alice', mod_rooms=['*'])}"}
    with connect(ws_url(port, room, presence=0, receive=0), additional_headers=headers) as ws:
        assert json.loads(ws.recv(10))["type"] == "welcome"
        ws.send(json.dumps({**frame, "client_id": "m-" + secrets.token_hex(4)}))
        while (answer := json.loads(ws.recv(10)))["type"] != "ack":
            assert answer["type"] != "error", answer


def message_id(page: Page, user: str, text: str) -> int:
    return int(
        page.locator(".room .log .msg", has_text=text)
        .and_(page.locator(f".room .log .msg[data-user='{user}']"))
        .get_attribute("data-id")
        or 0
    )


def users(port: int, room: str) -> list[str]:
    headers = {"Authorization": f"Bearer {make_token('watcher')}"}
    with connect(ws_url(port, room, presence=0, receive=0), additional_headers=headers) as ws:
        welcome: dict[str, Any] = json.loads(ws.recv(10))
        return list(welcome["users"])


def test_announcements_and_deleted_messages(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(link(srv.port, "bob", "modweb"))
    wait_online(page, "bob")
    post_raw(srv.port, "modweb", "carol", ["buy cheap pills"])
    wait_shown(page, "carol", "buy cheap pills")
    spam = message_id(page, "carol", "buy cheap pills")

    as_alice(srv.port, "modweb", {"type": "delete", "id": spam, "reason": "spam"})
    note = page.locator(".msg.moderation", has_text=f"alice deleted a message of carol (#{spam})")
    note.wait_for()
    assert note.locator(".user").text_content() == "-!-"
    dead = page.locator(f".msg[data-id='{spam}']")
    page.wait_for_function(
        "id => document.querySelector(`.msg[data-id='${id}']`).classList.contains('deleted')",
        arg=spam,
    )
    assert dead.locator(".text").text_content() == "message deleted"
    assert "buy cheap pills" not in (page.locator(".room .log").text_content() or "")

    # the page's own commands: a bad duration is a note, nothing sent; /delete of one's own
    say(page, "/mute carol soon")
    page.locator("#note", has_text="/mute: a duration is").wait_for()
    assert page.locator("#input").input_value() == "/mute carol soon"  # left to be fixed
    page.locator("#input").fill("")
    say(page, "oops")
    wait_shown(page, "bob", "oops")
    mine = message_id(page, "bob", "oops")
    say(page, f"/delete {mine}")
    page.locator(".msg.moderation", has_text=f"bob deleted their own message (#{mine})").wait_for()
    page.wait_for_function(
        "id => document.querySelector(`.msg[data-id='${id}']`).classList.contains('deleted')",
        arg=mine,
    )
    # a non-moderator's /kick: the server's refusal is shown
    say(page, "/kick carol")
    page.locator(".notice.error", has_text="server: ").wait_for()

    later = open_page(link(srv.port, "dan", "modweb"))  # served the tombstones
    wait_online(later, "dan")
    later.locator(f".msg.deleted[data-id='{spam}']", has_text="message deleted").wait_for()
    assert "buy cheap pills" not in (later.locator(".room .log").text_content() or "")


def test_a_kicked_page_shows_who_and_why_and_does_not_reconnect(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(link(srv.port, "bob", "modkick"))
    wait_online(page, "bob")
    as_alice(
        srv.port, "modkick", {"type": "moderate", "action": "kick", "user": "bob", "reason": "spam"}
    )
    page.locator(".notice.error", has_text="kicked by alice: spam").wait_for()
    page.locator("#status[data-state=failed]").wait_for()
    page.locator(".msg.moderation", has_text="alice kicked bob: spam").wait_for()
    # it stays out: the status does not move on to reconnecting, and bob is not back
    post_raw(srv.port, "modkick", "carol", ["after the kick"])
    assert page.locator("#status").get_attribute("data-state") == "failed"
    wait_until(lambda: "bob" not in users(srv.port, "modkick"))
    assert page.locator(".msg", has_text="after the kick").count() == 0

"""Several rooms open in one page, each with its own connection: unread and mention badges in
the sidebar, the mentions in the tab title, a read marker and the scroll position per room,
and a /join the token does not allow, which leaves the page where it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.client_helpers import serving
from support.helpers import ServeProcess, wait_until
from support.webhelpers import (
    badges,
    in_view,
    link,
    post_raw,
    say,
    screenshot,
    wait_online,
    wait_shown,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def join(page: Page, room: str, user: str) -> None:
    say(page, f"/join {room}")
    page.locator("#title", has_text=f"#{room}").wait_for()
    wait_online(page, user)


def scroll_top(page: Page) -> float:
    return float(page.evaluate("document.getElementById('chat').scrollTop"))


def at_bottom(page: Page) -> bool:
    return bool(
        page.evaluate(
            "(c => c.scrollHeight - c.scrollTop - c.clientHeight < 40)"
            "(document.getElementById('chat'))"
        )
    )


def test_other_rooms_count_unread_messages_and_mentions(
    srv: ServeProcess, open_page: Opener, tmp_path: Path
) -> None:
    page = open_page(link(srv.port, "carol", "news"), viewport={"width": 900, "height": 560})
    wait_online(page, "carol")
    join(page, "ops", "carol")
    join(page, "chitchat", "carol")
    assert page.title() == "#chitchat \u2014 chatctl"
    post_raw(srv.port, "ops", "bot", ["deploy 41 done", "deploy 42 started"])
    wait_until(lambda: badges(page, "ops") == ("2", ""))

    # news stays connected while chitchat is shown: its messages are counted as they come
    post_raw(srv.port, "news", "dan", ["hi all", "carol, look at this", "@carol again"])
    wait_until(lambda: badges(page, "news") == ("3", "@2"))
    assert page.title() == "(2) #chitchat \u2014 chatctl"
    assert badges(page, "chitchat") == ("", "")
    post_raw(srv.port, "chitchat", "dan", ["here too, carol?"])  # the room shown counts nothing
    wait_shown(page, "dan", "here too, carol?")
    assert badges(page, "chitchat") == ("", "")
    assert page.title() == "(2) #chitchat \u2014 chatctl"
    screenshot(page, "web-rooms.png", tmp_path)

    # shown: read, and the new ones start under a "new messages" line
    page.get_by_role("button", name="#news").click()
    page.locator("#title", has_text="#news").wait_for()
    assert badges(page, "news") == ("", "")
    assert page.title() == "#news \u2014 chatctl"
    marker = page.locator(".room .log .marker")
    assert marker.text_content() == "new messages"
    after = page.locator(".room .log .marker + li")
    assert after.locator(".text").text_content() == "hi all"


def test_going_back_to_a_room_lands_at_the_read_marker_without_a_replay(
    srv: ServeProcess, open_page: Opener
) -> None:
    post_raw(srv.port, "long", "eve", [f"old line {i}" for i in range(60)])
    page = open_page(link(srv.port, "finn", "long"), viewport={"width": 800, "height": 480})
    wait_online(page, "finn")
    wait_shown(page, "eve", "old line 59")
    wait_until(lambda: at_bottom(page) and scroll_top(page) > 0)  # opens at the newest
    join(page, "short", "finn")

    post_raw(srv.port, "long", "eve", ["new 1", "new 2", "new 3"])
    wait_until(lambda: badges(page, "long") == ("3", ""))
    page.get_by_role("button", name="#long").click()
    page.locator("#title", has_text="#long").wait_for()
    assert scroll_top(page) > 0
    assert in_view(page, ".room .log .marker") and in_view(page, ".msg[data-id='61']")
    ids = page.locator(".room .log .msg").evaluate_all("els => els.map(e => e.dataset.id)")
    assert ids == [str(i) for i in range(1, 64)]  # nothing replayed, nothing missing

    # scrolled up a bit, away and back: the same place, and no marker when nothing is new
    page.evaluate("document.getElementById('chat').scrollTop = 300")
    join(page, "short", "finn")
    page.get_by_role("button", name="#long").click()
    page.locator("#title", has_text="#long").wait_for()
    assert scroll_top(page) == 300
    assert page.locator(".room .log .marker").count() == 0


def test_a_join_the_token_does_not_allow_leaves_the_page_where_it_was(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(link(srv.port, "gina", "allowed", rooms=["allowed"]))
    wait_online(page, "gina")
    say(page, "/join secret")
    error = page.locator(".room .notice.error", has_text="cannot join #secret")
    error.wait_for()
    assert in_view(page, ".room .notice.error")
    assert page.locator("#title").text_content() == "#allowed"
    assert page.locator("#status").text_content() == "connected as gina"
    assert page.locator("#input").get_attribute("placeholder") == "Message #allowed"
    assert page.locator("#rooms li").all_text_contents() == ["#allowed"]
    say(page, "still here")
    wait_shown(page, "gina", "still here")

    page.reload()  # the refused room is not reopened
    wait_online(page, "gina")
    assert page.locator("#title").text_content() == "#allowed"
    assert page.locator("#rooms li").all_text_contents() == ["#allowed"]
    assert page.locator(".notice.error").count() == 0


def test_scrolling_to_the_top_loads_older_messages_in_place(
    srv: ServeProcess, open_page: Opener
) -> None:
    post_raw(srv.port, "archive", "hal", [f"entry {i}" for i in range(1, 181)])
    page = open_page(link(srv.port, "ida", "archive"), viewport={"width": 800, "height": 480})
    wait_online(page, "ida")
    wait_shown(page, "hal", "entry 180")
    first = page.locator(".room .log .msg").first
    assert first.get_attribute("data-id") == "81"  # the welcome's 100

    # at the top: the 50 before arrive above, and entry 81 stays where it was on screen
    where = """() => {
        const e = document.querySelector(".msg[data-id='81']"), c = document.getElementById("chat");
        return e.getBoundingClientRect().top - c.getBoundingClientRect().top;
    }"""
    at_top = page.evaluate(where) + scroll_top(page)  # where entry 81 is shown at scrollTop 0
    page.evaluate("document.getElementById('chat').scrollTop = 0")
    page.locator(".msg[data-id='31']").wait_for(state="attached")
    assert abs(page.evaluate(where) - at_top) < 2
    assert scroll_top(page) > 1000

    page.evaluate("document.getElementById('chat').scrollTop = 0")
    page.locator(".msg[data-id='1']").wait_for(state="attached")
    ids = page.locator(".room .log .msg").evaluate_all("els => els.map(e => e.dataset.id)")
    assert ids == [str(i) for i in range(1, 181)]


def test_a_reload_keeps_what_was_read_in_each_room(
    srv: ServeProcess, open_page: Opener, tmp_path: Path
) -> None:
    post_raw(srv.port, "diary", "jo", ["monday", "tuesday"])
    page = open_page(link(srv.port, "kim", "diary"), viewport={"width": 900, "height": 420})
    wait_online(page, "kim")
    wait_shown(page, "jo", "tuesday")
    join(page, "lounge", "kim")
    post_raw(srv.port, "diary", "jo", ["wednesday", "kim: thursday"])
    wait_until(lambda: badges(page, "diary") == ("2", "@1"))

    page.reload()  # both rooms open again; what was not read is still unread
    wait_online(page, "kim")
    assert page.locator("#title").text_content() == "#lounge"
    wait_until(lambda: badges(page, "diary") == ("2", "@1"))
    assert page.title() == "(1) #lounge \u2014 chatctl"
    page.get_by_role("button", name="#diary").click()
    page.locator(".room .log .marker + li .text", has_text="wednesday").wait_for()
    screenshot(page, "web-read-marker.png", tmp_path)

    say(page, "/part")  # closed: gone from the list, and not reopened by a reload
    page.locator("#title", has_text="#lounge").wait_for()
    assert page.locator("#rooms li").all_text_contents() == ["#lounge"]
    page.reload()
    wait_online(page, "kim")
    assert page.locator("#rooms li").all_text_contents() == ["#lounge"]

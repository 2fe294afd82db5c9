"""The message box and what a room shows: links, the length counter, a paste's trailing
newline, Tab completion, Up recall, times on join and leave lines, an empty room, and the
header and box on a 320 px wide screen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from support.client_helpers import serving
from support.helpers import ServeProcess
from support.webhelpers import link, post_raw, say, shown, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def test_urls_become_links_and_the_rest_stays_text(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(link(srv.port, "lena", "links"))
    wait_online(page, "lena")
    text = (
        "see https://example.com/a?b=1&c=%20d#top, (or http://x.test/p_(q)). "
        "javascript:alert(1) ftp://files.test <b>bold</b> https://e.test/<img src=x>"
    )
    post_raw(srv.port, "links", "max", [text])
    wait_shown(page, "max", text)  # the text as sent, character for character
    anchors = page.locator(".msg .text a")
    assert anchors.evaluate_all(
        "as => as.map(a => [a.getAttribute('href'), a.textContent, a.target, a.rel])"
    ) == [
        ["https://example.com/a?b=1&c=%20d#top", "https://example.com/a?b=1&c=%20d#top",
         "_blank", "noopener noreferrer"],
        ["http://x.test/p_(q)", "http://x.test/p_(q)", "_blank", "noopener noreferrer"],
        ["https://e.test/", "https://e.test/", "_blank", "noopener noreferrer"],
    ]  # fmt: skip
    assert page.locator(".msg .text b, .msg .text img").count() == 0


def test_the_box_counts_near_the_limit_and_a_too_long_message_stays_in_it(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(link(srv.port, "nora", "counts"), viewport={"width": 800, "height": 500})
    wait_online(page, "nora")
    box = page.locator("#input")
    counter = page.locator("#counter")
    box.fill("y" * 100)
    assert counter.is_hidden()
    box.fill("y" * 7300)  # from 90 % of the server's 8000 on
    assert counter.text_content() == "7,300 / 8,000"
    box.fill("y" * 8001)
    assert counter.text_content() == "8,001 / 8,000"
    assert "over" in (counter.get_attribute("class") or "")
    box.press("Enter")
    note = page.locator("#note")
    assert note.text_content() == "That message is 8,001 characters; the limit is 8,000."
    box_y = page.locator("#composer").bounding_box()
    assert note.is_visible() and box_y is not None and box_y["y"] + box_y["height"] <= 500
    assert box.input_value() == "y" * 8001  # not emptied
    assert page.locator(".outbox li").count() == 0


def test_a_paste_s_trailing_newlines_are_not_sent(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(link(srv.port, "olly", "paste"))
    wait_online(page, "olly")
    page.locator("#input").fill("pasted line\n\n")
    page.locator("#send").click()
    page.locator("#input").fill("two\nlines\n")
    page.locator("#send").click()
    wait_shown(page, "olly", "two\nlines")
    assert shown(page) == [("olly", "pasted line"), ("olly", "two\nlines")]


def test_tab_completes_names_and_up_recalls_the_last_message(
    srv: ServeProcess, open_page: Opener
) -> None:
    post_raw(srv.port, "names", "rosalind", ["hello"])
    page = open_page(link(srv.port, "quentin", "names"))
    wait_online(page, "quentin")
    wait_shown(page, "rosalind", "hello")
    box = page.locator("#input")
    box.type("ros")
    box.press("Tab")
    assert box.input_value() == "rosalind: "
    box.type("see @qu")
    box.press("Tab")
    assert box.input_value() == "rosalind: see @quentin "
    box.type("here")
    box.press("Enter")
    wait_shown(page, "quentin", "rosalind: see @quentin here")
    assert box.input_value() == ""
    box.press("ArrowUp")
    assert box.input_value() == "rosalind: see @quentin here"
    box.press("ArrowUp")  # only into an empty box: Up moves in a text otherwise
    assert box.input_value() == "rosalind: see @quentin here"


def test_an_empty_room_says_so_and_joins_and_leaves_have_a_time(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(link(srv.port, "sara", "quiet"))
    wait_online(page, "sara")
    empty = page.locator(".room .log .empty")
    assert empty.text_content() == "No messages in #quiet yet: say hello!"
    other = open_page(link(srv.port, "tom", "quiet"))
    wait_online(other, "tom")
    event = page.locator(".room .log .event").last
    event.locator(".what", has_text="\u2192 tom joined").wait_for()
    assert event.locator("time").get_attribute("datetime")
    assert len(event.locator("time").text_content() or "") >= 4  # "07:42" or "7:42 AM"
    say(page, "first words")
    wait_shown(page, "sara", "first words")
    assert empty.count() == 0


def test_a_320_px_screen_shows_sign_out_and_send_whole(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(
        link(srv.port, "ursula-with-a-long-name", "a-room-with-a-long-name"),
        viewport={"width": 320, "height": 600},
    )
    wait_online(page, "ursula-with-a-long-name")
    for selector in ("#leave", "#send", "#menu"):
        fits = page.evaluate(
            """sel => {
                const e = document.querySelector(sel), r = e.getBoundingClientRect();
                return r.left >= 0 && r.right <= 320 && e.scrollWidth <= e.clientWidth
                    && r.width > 0;
            }""",
            selector,
        )
        assert fits, selector
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_say_sends_a_text_that_starts_with_a_slash(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(link(srv.port, "uma", "slashes"))
    wait_online(page, "uma")
    say(page, "/say /help is a command")
    wait_shown(page, "uma", "/help is a command")

"""Direct messages in the web page (issue 26, part 1): "message bob" from the user list opens
the conversation, both pages talk in it (each names it by the other), a dm notice on a page
that does not have it open offers to open it, and a third user sees none of it. Real
``chatctl serve``, real headless Chromium, tokens for one room only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from support.client_helpers import client_env, run_cli, serving
from support.helpers import ServeProcess
from support.webhelpers import link, say, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def history(port: int, user: str, peer: str) -> list[tuple[str, str]]:
    res = run_cli("history", f"@{peer}", "--json", env=client_env(port, user))
    return [(m["user"], m["message"]) for m in map(json.loads, res.stdout.splitlines())]


def test_message_bob_from_the_user_list(srv: ServeProcess, open_page: Opener) -> None:
    alice = open_page(link(srv.port, "alice", "lobby", rooms=["lobby"]))
    wait_online(alice, "alice")
    bob = open_page(link(srv.port, "bob", "lobby", rooms=["lobby"]))
    wait_online(bob, "bob")
    alice.get_by_role("button", name="message bob").wait_for()
    assert alice.locator("#users li.me button").count() == 0  # not yourself

    alice.get_by_role("button", name="message bob").click()
    alice.locator("#title", has_text="@bob").wait_for()
    wait_online(alice, "alice")
    assert alice.title() == "@bob \u2014 chatctl"
    assert alice.locator("#input").get_attribute("placeholder") == "Message @bob"
    say(alice, "psst, bob")
    wait_shown(alice, "alice", "psst, bob")

    # bob, in #lobby, is told once (every open room's connection hears it) and opens it
    notice = bob.locator(".room .notice.dm", has_text="1 unread direct message from alice")
    notice.wait_for()
    assert bob.locator(".room .notice.dm").count() == 1
    notice.get_by_role("button", name="open @alice").click()
    bob.locator("#title", has_text="@alice").wait_for()
    wait_shown(bob, "alice", "psst, bob")
    say(bob, "hi alice")
    wait_shown(alice, "bob", "hi alice")  # live in alice's open conversation
    names = bob.locator("#rooms li .name").all_text_contents()
    assert names == ["#lobby", "@alice"]

    # /query from the web page too, and a third user reads nothing of it
    say(alice, "/join lobby")
    alice.locator("#title", has_text="#lobby").wait_for()
    say(alice, "/query bob")
    alice.locator("#title", has_text="@bob").wait_for()
    say(alice, "and one more")
    wait_shown(bob, "alice", "and one more")
    assert history(srv.port, "alice", "bob") == [
        ("alice", "psst, bob"),
        ("bob", "hi alice"),
        ("alice", "and one more"),
    ]
    assert history(srv.port, "carol", "bob") == []


def test_a_bad_user_name_stays_in_the_box(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(link(srv.port, "dora", "lobby"))
    wait_online(page, "dora")
    say(page, "/query \u200b")
    page.locator("#note", has_text="invalid user name").wait_for()
    assert page.locator("#title").text_content() == "#lobby"
    assert page.locator("#input").input_value() == "/query \u200b"

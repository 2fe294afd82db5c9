"""The web page in a real headless Chromium against a real ``chatctl serve`` process: pages
chat with each other and with ``chatctl join`` / ``chatctl send``, the join link, text that
stays text, the CSP, the Origin check and a phone-sized screen."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pexpect
import pytest
from websockets.sync.client import connect

from support.client_helpers import client_env, run_cli, serving
from support.helpers import ServeProcess, chatctl_env, free_port, make_token, wait_until, ws_url
from support.webhelpers import link, post_raw, say, screenshot, shown, wait_online, wait_shown

if TYPE_CHECKING:
    from playwright.sync_api import Page

Opener = Callable[..., "Page"]


@pytest.fixture(scope="module")
def srv() -> Iterator[ServeProcess]:
    with serving() as server:
        yield server


def join_terminal(port: int, room: str, user: str) -> pexpect.spawn:
    env = client_env(port, user, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "chatctl", "join", room],
        env=env,
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 160),
    )
    child.expect(f"joined {room} as {user}")
    return child


def test_two_pages_chat_with_each_other_and_the_terminal_clients(
    srv: ServeProcess, open_page: Opener, tmp_path: Path
) -> None:
    alice = open_page(link(srv.port, "alice", "lobby"), viewport={"width": 900, "height": 560})
    wait_online(alice, "alice")
    bob = open_page(link(srv.port, "bob", "lobby"))
    wait_online(bob, "bob")
    alice.locator("#users li", has_text="bob").wait_for()
    assert alice.locator(".event .what").last.text_content() == "\u2192 bob joined"

    carol = join_terminal(srv.port, "lobby", "carol")
    bob.locator("#users li", has_text="carol").wait_for()

    say(alice, "hello from a browser\nwith a second line")
    wait_shown(bob, "alice", "hello from a browser\nwith a second line")
    carol.expect("hello from a browser")

    carol.send("hi browsers, @alice\r")
    wait_shown(alice, "carol", "hi browsers, @alice")
    wait_shown(bob, "carol", "hi browsers, @alice")
    # a mention of alice is highlighted on her page only
    assert alice.locator(".msg.mention").count() == 1
    assert bob.locator(".msg.mention").count() == 0

    res = run_cli("send", "lobby", "a script says hi", env=client_env(srv.port, "dave"))
    assert res.returncode == 0, res.stderr
    wait_shown(alice, "dave", "a script says hi")

    say(bob, "/me waves")
    wait_shown(alice, "bob", "waves")
    assert alice.locator(".msg.action .user").last.text_content() == "* bob"
    carol.expect(r"\* bob waves")

    expected = [
        ("alice", "hello from a browser\nwith a second line"),
        ("carol", "hi browsers, @alice"),
        ("dave", "a script says hi"),
        ("bob", "waves"),
    ]
    wait_until(lambda: shown(bob) == expected)
    assert shown(alice) == expected
    # dave only sent (presence=0): never listed; carol is, until she quits
    assert alice.locator("#users li").all_text_contents() == ["alice", "bob", "carol"]
    screenshot(alice, "web-client.png", tmp_path)

    carol.send("/quit\r")
    carol.expect(pexpect.EOF)
    alice.locator(".event", has_text="\u2190 carol left").wait_for()
    wait_until(lambda: alice.locator("#users li").all_text_contents() == ["alice", "bob"])

    # switching rooms, and back: what was said meanwhile arrives, once
    say(alice, "/join side")
    alice.locator("#title", has_text="#side").wait_for()
    wait_online(alice, "alice")
    say(bob, "while alice was away")
    say(alice, "in the side room")
    wait_shown(alice, "alice", "in the side room")
    alice.get_by_role("button", name="#lobby").click()
    wait_shown(alice, "bob", "while alice was away")
    assert shown(alice) == [*expected, ("bob", "while alice was away")]


def test_the_link_from_token_create_opens_the_room(srv: ServeProcess, open_page: Opener) -> None:
    env = chatctl_env(CHATCTL_SERVER=f"ws://127.0.0.1:{srv.port}")
    res = run_cli("token", "create", "--user", "erin", "--room", "ops", "--link", env=env)
    assert res.returncode == 0, res.stderr
    url = res.stdout.strip()
    base = f"http://127.0.0.1:{srv.port}/"
    assert url.startswith(base + "#token=") and url.endswith("&room=ops"), url
    token = parse_qs(urlsplit(url).fragment)["token"][0]

    page = open_page(url)
    wait_online(page, "erin")
    assert page.locator("#title").text_content() == "#ops"
    assert page.url == base  # the token left the address bar
    assert page.evaluate("sessionStorage.getItem('chatctl.token')") == token
    say(page, "opened by link")
    wait_shown(page, "erin", "opened by link")
    page.reload()  # the tab keeps its session
    wait_online(page, "erin")
    wait_shown(page, "erin", "opened by link")

    # a room the token does not allow: the server's reason, shown in the room still open
    say(page, "/join elsewhere")
    page.locator(".notice.error", has_text="elsewhere").wait_for()
    assert page.locator("#status").get_attribute("data-state") == "online"
    assert page.locator("#title").text_content() == "#ops"
    assert token not in srv.read_log()  # ?token= is redacted from the server's logs
    assert "?token=[redacted]" in srv.read_log() or "token=" not in srv.read_log()


def test_without_a_token_the_page_asks_for_one(srv: ServeProcess, open_page: Opener) -> None:
    page = open_page(f"http://127.0.0.1:{srv.port}/")
    page.locator("#login").wait_for()
    page.fill("#login-token", "not-a-token")
    page.fill("#login-room", "desk")
    page.click("#login button[type=submit]")
    page.locator("#login-error", has_text="token").wait_for()  # the 401's reason
    assert page.locator("#login").is_visible()
    page.fill("#login-token", make_token("ivan"))
    page.fill("#login-room", "desk")
    page.click("#login button[type=submit]")
    wait_online(page, "ivan")
    assert page.locator("#login").is_hidden()
    assert page.locator("#title").text_content() == "#desk"


def test_markup_and_control_characters_are_shown_as_text(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(link(srv.port, "judy", "xss"))
    wait_online(page, "judy")
    evil = [
        '<img src=x onerror="window.__pwned = 1">',
        "<script>window.__pwned = 2</script><b>bold?</b>",
        "abc \u202edcba <i>x</i>",
        "bell\x07 esc\x1b[31mred\x1b[0m",
        "after the override",
    ]
    post_raw(srv.port, "xss", "mallory", evil)
    say(page, "<u>mine too</u>")
    wait_shown(page, "judy", "<u>mine too</u>")
    visible = [
        *evil[:3],
        "bell\u2407 escred",  # escape sequences removed whole, other controls as pictures
        "after the override",
        "<u>mine too</u>",
    ]
    assert [t for _, t in shown(page)] == visible
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#chat img, #chat script, #chat b, #chat i, #chat u").count() == 0
    # U+202E (right-to-left override) reorders its own message only: the name still comes
    # before the text on that line, and the next line is laid out as usual.
    rows = page.locator(".log .msg")
    for i in (2, 3):
        user = rows.nth(i).locator(".user").bounding_box()
        text = rows.nth(i).locator(".text").bounding_box()
        assert user is not None and text is not None
        assert user["x"] < text["x"], i


def test_the_page_is_served_with_a_strict_content_security_policy(
    srv: ServeProcess, open_page: Opener
) -> None:
    page = open_page(allow_errors=("violates the following Content Security Policy",))
    response = page.goto(link(srv.port, "kim", "csp"))
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ):
        assert directive in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    wait_online(page, "kim")  # the page runs (and connects) under its own policy
    violations = page.evaluate(
        """() => new Promise(resolve => {
            const seen = [];
            document.addEventListener(
                'securitypolicyviolation', e => seen.push(e.violatedDirective));
            const s = document.createElement('script');
            s.textContent = 'window.__inline = 1';
            document.body.append(s);
            setTimeout(() => resolve(seen), 200);
        })"""
    )
    assert violations == ["script-src-elem"]
    assert page.evaluate("window.__inline") is None


class _OtherSite(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another site</title><p>hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_page_from_another_origin_is_still_refused(srv: ServeProcess, open_page: Opener) -> None:
    other = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _OtherSite)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        page = open_page(f"http://127.0.0.1:{other.server_address[1]}/")
        outcome = page.evaluate(
            """url => new Promise(resolve => {
                const ws = new WebSocket(url);
                ws.onopen = () => resolve('open');
                ws.onclose = e => resolve('closed ' + e.code);
            })""",
            ws_url(srv.port, "general", token=make_token("leo")),
        )
    finally:
        other.shutdown()
        other.server_close()
    assert outcome == "closed 1006"  # the handshake never completed
    wait_until(lambda: "rejected 403 Forbidden" in srv.read_log())
    assert "origin not allowed" in srv.read_log()


def test_a_phone_sized_screen_is_usable(
    srv: ServeProcess, open_page: Opener, tmp_path: Path
) -> None:
    page = open_page(
        link(srv.port, "mia", "phone"),
        viewport={"width": 390, "height": 700},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        color_scheme="dark",
    )
    wait_online(page, "mia")
    # dark by system preference
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    post_raw(srv.port, "phone", "nina", ["a long line " * 12, "short"])
    say(page, "typed on a phone")
    wait_shown(page, "mia", "typed on a phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.locator("#input").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 700 and box["width"] > 200
    assert page.locator("#users").is_hidden()  # the side panel folds away...
    page.locator("#menu").tap()
    page.locator("#users li", has_text="mia").wait_for()  # ...and opens from the menu
    page.locator("#menu").tap()
    page.locator("#users").wait_for(state="hidden")
    screenshot(page, "web-client-phone.png", tmp_path)


def test_a_refused_message_shows_the_server_s_reason(open_page: Opener) -> None:
    with serving("--max-message", "100") as strict:
        page = open_page(
            link(strict.port, "olga", "limits"), viewport={"width": 800, "height": 400}
        )
        wait_online(page, "olga")
        post_raw(strict.port, "limits", "pat", [f"line {i}" for i in range(40)])
        wait_shown(page, "pat", "line 39")
        page.locator("#input").fill("x" * 150)  # the page knows 8000, this server says 100
        page.locator("#input").press("Enter")
        note = page.locator("#note")
        note.wait_for()
        assert note.text_content() == "message is 150 characters; the limit is 100"
        assert note.is_visible() and note.bounding_box()["y"] < 400  # type: ignore[index]
        assert page.locator("#input").input_value() == "x" * 150  # back in the box
        assert page.locator(".outbox li").count() == 0
        # the page learnt the limit: the counter says so, and it refuses before sending
        assert page.locator("#counter").text_content() == "150 / 100"
        page.locator("#input").press("Enter")
        assert page.locator("#input").input_value() == "x" * 150
        assert note.text_content() == "That message is 150 characters; the limit is 100."
        page.locator("#input").fill("shorter")
        page.locator("#input").press("Enter")  # the connection lives on
        wait_shown(page, "olga", "shorter")
        assert note.is_hidden() and page.locator("#input").input_value() == ""


def test_rate_limited_messages_are_retried_in_order(open_page: Opener) -> None:
    with serving("--rate-limit", "1", "--rate-burst", "1") as tight:
        page = open_page(link(tight.port, "pia", "busy"))
        wait_online(page, "pia")
        box = page.locator("#input")
        for i in range(5):  # filled, not typed key by key: faster than the bucket refills
            box.fill(f"burst {i}")
            box.press("Enter")
        page.locator(".msg .state", has_text="retrying in").first.wait_for()
        wait_shown(page, "pia", "burst 4")
        page.wait_for_function("() => !document.querySelector('.pending, .outbox li')")
        assert shown(page) == [("pia", f"burst {i}") for i in range(5)]


def test_a_message_over_the_server_s_frame_limit_is_not_resent(open_page: Opener) -> None:
    with serving("--max-frame", "2048") as small:
        page = open_page(link(small.port, "quinn", "big"))
        wait_online(page, "quinn")
        page.locator("#input").fill("y" * 3000)
        page.locator("#input").press("Enter")  # the server closes with 1009
        failed = page.locator(".outbox .msg.failed")
        failed.wait_for()
        assert failed.locator(".state").text_content() == "not sent: too large for this server"
        wait_online(page, "quinn")  # reconnected, and the big one is not sent again
        say(page, "small enough")
        wait_shown(page, "quinn", "small enough")
        assert shown(page) == [("quinn", "small enough")]
        assert small.read_log().count("disconnect user=quinn") == 1  # closed once only


def test_a_join_storm_reaches_the_page_in_batches(srv: ServeProcess, open_page: Opener) -> None:
    """Users joining together arrive as presence_batch frames; the page lists every one."""
    alice = open_page(link(srv.port, "alice", "crowd"))
    wait_online(alice, "alice")
    users = [f"u{i:02d}" for i in range(20)]
    with contextlib.ExitStack() as stack:
        observer = stack.enter_context(
            connect(
                ws_url(srv.port, "crowd"),
                additional_headers={"Authorization": f"Bearer {make_token('o')}"},
            )
        )
        assert json.loads(observer.recv(10))["type"] == "welcome"
        opened = threading.Barrier(len(users))

        def join(user: str) -> None:
            headers = {"Authorization": f"Bearer {make_token(user)}"}
            opened.wait(10)  # all at once
            stack.enter_context(connect(ws_url(srv.port, "crowd"), additional_headers=headers))

        threads = [threading.Thread(target=join, args=(u,)) for u in users]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        joined: set[str] = set()
        batches = 0
        while len(joined) < len(users):
            frame = json.loads(observer.recv(10))
            if frame["type"] == "presence_batch":
                batches += 1
                joined.update(frame["joins"])
            elif frame["type"] == "presence" and frame["event"] == "join":
                joined.add(frame["user"])
        assert joined == set(users) and batches >= 1
        expected = sorted(["alice", "o", *users])
        wait_until(lambda: alice.locator("#users li").all_text_contents() == expected)
        assert alice.locator("#count").text_content() == f"({len(expected)})"


def test_a_webhook_s_display_name_shows_with_its_user(srv: ServeProcess, open_page: Opener) -> None:
    from chatctl.tokens.mint import mint
    from support.curl import curl_path
    from support.helpers import SECRET

    def post(display: bool, text: str) -> None:
        hook = mint(SECRET, "ci", ttl=3600, hook="hooked", display=display)
        body = json.dumps({"text": text, "username": "Grafana"})
        url = f"http://127.0.0.1:{srv.port}/hooks/{hook}"
        done = subprocess.run([curl_path(), "-sf", "-H", "Content-Type: application/json",
                               "-d", body, url], capture_output=True, timeout=20)  # fmt: skip
        assert done.returncode == 0, done.stderr

    def names(page: Page) -> list[str]:
        return page.locator(".room .log .msg .user").all_text_contents()

    page = open_page(link(srv.port, "kate", "hooked"))
    wait_online(page, "kate")
    post(True, "disk full")
    post(False, "no name")
    wait_shown(page, "ci", "no name")
    assert names(page) == ["Grafana (via ci)", "ci"]
    page.reload()  # from the welcome's history now
    wait_shown(page, "ci", "no name")
    assert names(page) == ["Grafana (via ci)", "ci"]

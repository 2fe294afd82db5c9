"""Moderation in ``chatctl join`` on a terminal (issue 26, part 4): real ptys replayed in
pyte against a real ``chatctl serve``. alice holds a token with the ``mod`` claim; bob and
carol do not. A kick shows in bob's window with who and why, and his window stays parted (no
reconnect: what he types is not sent) while his other room goes on; a mute refuses his
message with when it ends; a deleted message turns into a tombstone on the others' screens;
a non-moderator's /kick and a /mute with no duration get one line each and send nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from support.client_helpers import client_env, run_cli
from support.helpers import ServeProcess, make_token
from support.vt_screen import Term, open_term

pytest.importorskip("pyte")


def moderator(terms: list[Term], port: int, *rooms: str) -> Term:
    """alice, a moderator of every room."""
    token = make_token("alice", mod_rooms=["*"])
    return open_term(terms, port, *rooms, user="", CHATCTL_TOKEN=token)


def gone(term: Term, text: str) -> Callable[[], bool]:
    return lambda: text not in term.text()


def history(port: int, room: str) -> list[dict[str, object]]:
    res = run_cli("history", room, "--json", env=client_env(port, "carol"))
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines()]


def test_kick_shows_who_and_why_and_the_window_stays_parted(
    srv: ServeProcess, terms: list[Term]
) -> None:
    alice = moderator(terms, srv.port, "mod-kick")
    bob = open_term(terms, srv.port, "mod-kick", "mod-other", user="bob")
    alice.wait_for("bob joined mod-kick")

    alice.send("/kick bob spam\r")
    alice.wait_for("-!- alice kicked bob: spam")
    bob.wait_for("kicked from mod-kick by alice: spam (/join mod-kick joins again)")
    bob.wait_until(lambda: "parted (kicked from mod-kick by alice: spam)" in bob.bottom(), "parted")
    alice.wait_for("bob left mod-kick")

    bob.send("anyone there?\r")
    bob.wait_for(
        "not in mod-kick (kicked from mod-kick by alice: spam): /join mod-kick joins again"
    )
    bob.send("\x1b2")  # Alt-2: his other room goes on
    bob.wait_until(lambda: bob.prompt_row() == "[mod-other]", "the other window")
    bob.send("still here\r")
    bob.wait_for("bob: still here")
    texts = [m["message"] for m in history(srv.port, "mod-kick")]
    assert "anyone there?" not in texts and texts == ["alice kicked bob: spam"]
    assert "bob" not in alice.text().split("bob left mod-kick")[-1]  # he did not come back


def test_mute_refuses_messages_and_bad_input_sends_nothing(
    srv: ServeProcess, terms: list[Term]
) -> None:
    alice = moderator(terms, srv.port, "mod-mute")
    bob = open_term(terms, srv.port, "mod-mute", user="bob")
    alice.wait_for("bob joined mod-mute")

    alice.send("/mute bob soon\r")
    alice.wait_for("/mute: 'soon' is not a duration: a number of seconds, or a number with a unit")
    bob.send("/kick alice\r")
    bob.wait_for("cannot kick alice: ")
    assert "moderat" in bob.text().split("cannot kick alice: ")[1].lower()
    assert history(srv.port, "mod-mute") == []  # neither was carried out

    alice.send("/mute bob 1h flooding\r")
    bob.wait_for("-!- alice muted bob for 1h: flooding")
    bob.send("can I talk?\r")
    bob.wait_for("not sent: muted in mod-mute by alice until ")
    alice.send("/unmute bob\r")
    bob.wait_for("-!- alice unmuted bob")
    bob.send("thanks\r")
    alice.wait_for("bob: thanks")
    assert "can I talk?" not in alice.text()


def test_delete_turns_a_message_into_a_tombstone_for_everyone(
    srv: ServeProcess, terms: list[Term]
) -> None:
    alice = moderator(terms, srv.port, "mod-del")
    bob = open_term(terms, srv.port, "mod-del", user="bob")
    carol = open_term(terms, srv.port, "mod-del", user="carol")
    carol.send("hello all\r")
    bob.send("oops wrong window\r")
    alice.wait_for("bob: oops wrong window")
    carol.wait_for("bob: oops wrong window")
    oops = next(
        m["id"] for m in history(srv.port, "mod-del") if m["message"] == "oops wrong window"
    )
    hello = next(m["id"] for m in history(srv.port, "mod-del") if m["message"] == "hello all")

    bob.send(f"/delete {hello}\r")  # not his
    bob.wait_for(f"cannot delete #{hello}: ")
    bob.send("/delete 99999\r")
    bob.wait_for("cannot delete #99999: no message #99999 in mod-del")
    bob.send(f"/delete {oops}\r")
    for term in (alice, carol, bob):
        term.wait_for(f"-!- bob deleted their own message (#{oops})")
        term.wait_for("bob: (message deleted)")
        term.wait_until(gone(term, "oops wrong window"), "the line redrawn")
    assert "carol: hello all" in alice.text()
    # and a client joining later is served the tombstone
    dave = open_term(terms, srv.port, "mod-del", user="dave")
    dave.wait_for("bob: (message deleted)")
    assert "oops wrong window" not in dave.text()


def test_ban_parts_the_window_and_join_is_refused_until_unban(
    srv: ServeProcess, terms: list[Term]
) -> None:
    alice = moderator(terms, srv.port, "mod-ban")
    bob = open_term(terms, srv.port, "mod-ban", user="bob")
    alice.wait_for("bob joined mod-ban")

    alice.send("/ban bob 1h flood\r")
    alice.wait_for("-!- alice banned bob for 1h: flood")
    bob.wait_for("-!- banned from mod-ban by alice until ")
    assert "/join mod-ban tries" in bob.text()  # (the rest of the line wraps)
    bob.wait_until(lambda: "parted (banned from mod-ban by alice" in bob.bottom(), "parted")

    bob.send("/join mod-ban\r")  # refused before the upgrade, with the reason: no loop
    bob.wait_until(lambda: bob.text().count("-!- banned from mod-ban by alice") == 2, "refused")
    bob.wait_until(lambda: "parted (banned from mod-ban by alice" in bob.bottom(), "parted")
    assert bob.child.isalive()

    alice.send("/unban bob\r")
    alice.wait_for("-!- alice unbanned bob")
    bob.send("/join mod-ban\r")
    bob.wait_until(lambda: "connected" in bob.bottom(), "joined again")
    alice.wait_until(lambda: alice.text().count("bob joined mod-ban") == 2, "bob back")

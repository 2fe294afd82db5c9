"""A webhook's Slack ``username`` as a display name: shown as ``NAME (via USER)`` by ``chatctl
join`` and kept in ``--json`` frames and history, across a restart of a real ``chatctl
serve`` on SQLite, only when the token allows it (``--allow-display-name``)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from chatctl.server import ChatServer
from chatctl.tokens.mint import mint
from support.client_helpers import client_env, run_cli
from support.curl import CurlResult, curl
from support.helpers import IN_CI, SECRET, ServeProcess, chatctl_env, client, make_token, recv_type

#: Slack's documented incoming-webhook payload with a sender name
SLACK = {"text": "disk full on db-1", "username": "Grafana"}


def _hook_path(port: int, *flags: str) -> str:
    """The path of a webhook URL that ``chatctl token create`` printed."""
    made = run_cli(
        "token", "create", "--user", "hooks", "--room", "alerts", "--webhook", *flags,
        "--server", f"ws://127.0.0.1:{port}", env=chatctl_env(),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return urlsplit(made.stdout.strip()).path


async def _post(port: int, path: str, payload: object) -> CurlResult:
    return await curl(port, path, "-H", "Content-Type: application/json", "-d", json.dumps(payload))


def _read(port: int, *flags: str) -> list[str]:
    res = run_cli("join", "alerts", "--since", "0", "--once", *flags, env=client_env(port, "bob"))
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


async def test_a_slack_username_shows_with_its_user_and_survives_a_restart() -> None:
    serve = await asyncio.to_thread(ServeProcess().start)
    again = ServeProcess(port=serve.port, data_dir=serve.data_dir)
    port = serve.port
    try:
        allowed = await asyncio.to_thread(_hook_path, port, "--allow-display-name")
        plain = await asyncio.to_thread(_hook_path, port)
        assert (await _post(port, allowed, SLACK)).status == 201
        assert (await _post(port, plain, SLACK)).status == 201
        for server in (serve, again):
            if server is again:
                assert await asyncio.to_thread(serve.stop) == 0
                await asyncio.to_thread(again.start)
            frames = [json.loads(x) for x in await asyncio.to_thread(_read, port, "--json")]
            assert [(f["user"], f.get("display"), f["message"]) for f in frames] == [
                ("hooks", "Grafana", "disk full on db-1"),
                ("hooks", None, "disk full on db-1"),  # its token allows no display name
            ]
            lines = await asyncio.to_thread(_read, port)
            assert [line.split(" ", 1)[1] for line in lines] == [
                "Grafana (via hooks): disk full on db-1",
                "hooks: disk full on db-1",
            ]
        history = await curl(port, "/rooms/alerts/messages", token=make_token("bob"))
        assert [m.get("display") for m in history.json()["messages"]] == ["Grafana", None]
    finally:
        serve.stop()
        if again.proc is not None:
            again.stop()


async def test_a_display_name_is_cleaned_and_never_hides_the_user(server: ChatServer) -> None:
    hook = "/hooks/" + mint(SECRET, "hooks", ttl=3600, hook="alerts", display=True)
    names = {
        "  Build\tBot  ": "Build Bot",  # whitespace runs become one space
        "alice (via root)": "alice via root",  # no brackets to fake a "(via USER)"
        "evil\u202egnp\u200b\x1b[31m": "evilgnp31m",  # no bidi, control, ZWSP, bracket
        "x" * 100: "x" * 32,  # capped
        "()": None,  # nothing left: no display name
        42: None,  # not a string
    }
    for name in names:
        answer = await _post(server.port, hook, {"text": "hi", "username": name})
        assert answer.status == 201
    got = await curl(server.port, "/rooms/alerts/messages", token=make_token("bob"))
    messages = got.json()["messages"]
    assert [m.get("display") for m in messages] == list(names.values())
    assert {m["user"] for m in messages} == {"hooks"}


async def test_only_an_allowed_webhook_sets_a_display_name(server: ChatServer) -> None:
    """A WebSocket frame or an API post that carries ``display`` posts as its user alone."""
    alice = make_token("alice")
    async with client(server.port, "alerts", "alice") as ws:
        await recv_type(ws, "welcome")
        await ws.send(json.dumps({"message": "ws", "display": "bob", "client_id": "c1"}))
        assert "display" not in await recv_type(ws, "message")
        body = json.dumps({"message": "api", "display": "bob"})
        await curl(server.port, "/rooms/alerts/messages", "-H", "Content-Type: application/json",
                   "-d", body, token=alice)  # fmt: skip
        assert "display" not in await recv_type(ws, "message")


async def test_the_http_api_answers_on_uvloop() -> None:
    """With uvloop installed (the [fast] extra, and the test extra), ``chatctl serve`` runs on
    it, and the HTTP API sharing the port answers there too: uvloop's transports are not
    ``asyncio.Transport`` instances, and a check for one closed every HTTP request unanswered
    (curl: "Empty reply from server") while WebSocket clients worked."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        message = "uvloop is not installed: pip install -e '.[test]' installs it"
        if IN_CI:
            pytest.fail(message + " -- CI must not pass by skipping", pytrace=False)
        pytest.skip(message)
    serve = await asyncio.to_thread(ServeProcess().start)
    try:
        assert "event loop: uvloop" in serve.read_log()
        hook = await asyncio.to_thread(_hook_path, serve.port)
        posted = await _post(serve.port, hook, {"text": "deploy finished"})
        assert posted.status == 201, posted.body
        health = await curl(serve.port, "/healthz")
        assert health.status == 200
        frames = [json.loads(x) for x in await asyncio.to_thread(_read, serve.port, "--json")]
        assert [(f["user"], f["message"]) for f in frames] == [("hooks", "deploy finished")]
    finally:
        serve.stop()

"""POST /hooks/{token}: incoming webhooks in the formats tools already send, with curl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatctl.server import ChatServer
from chatctl.tokens.mint import mint
from support.curl import curl
from support.helpers import SECRET, chatctl_env, client, make_server, make_token, recv_type

#: Slack's documented incoming-webhook examples (api.slack.com/messaging/webhooks)
SLACK_TEXT = {"text": "Hello, world."}
SLACK_BLOCKS = {
    "text": "Danny Torrence left a 1 star review for your property.",
    "blocks": [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Danny Torrence left the following review"},
        }
    ],
}
#: what Alertmanager's slack_configs receiver posts (its default templates)
ALERTMANAGER_SLACK = {
    "channel": "#alerts",
    "username": "Alertmanager",
    "attachments": [
        {
            "title": "[FIRING:1] HighLatency (api prod)",
            "title_link": "http://alertmanager:9093/#/alerts?receiver=chatctl",
            "text": "",
            "fallback": "[FIRING:1] HighLatency (api prod) | http://alertmanager:9093",
            "color": "danger",
            "mrkdwn_in": ["fallback", "pretext", "text"],
        }
    ],
}
#: Alertmanager's own webhook_config payload (version 4), abridged
ALERTMANAGER_WEBHOOK = {
    "version": "4",
    "groupKey": '{}:{alertname="HighLatency"}',
    "status": "firing",
    "receiver": "chatctl",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighLatency", "severity": "page"},
            "annotations": {"summary": "p99 latency over 500ms"},
            "startsAt": "2026-12-06T07:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
        }
    ],
}

#: what tools written for Slack post: links, mentions and escapes in Slack's text format
GRAFANA_LINK = {
    "username": "Grafana",
    "text": "Disk full on <https://grafana.example/d/abc?var-host=host-1&amp;from=now-1h|host-1>"
    " &amp; rising",
}
CI_CHANNEL = {"text": "<!channel> deploy done <https://ci.example/run/42>"}
ATTACHMENT_LINK = {
    "attachments": [
        {
            "title": "[FIRING:1] HighLatency",
            "fallback": "[FIRING:1] HighLatency | <http://alertmanager:9093/#/alerts|alerts>",
        }
    ],
    "blocks": [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "<!subteam^S0614TZR7|@oncall>: <@U024BE7LH> in <#C0123|ops>,"
                " <mailto:sre@example.com>",
            },
        }
    ],
}
LONE_BRACKET = {"text": "p99 < 500ms for <3 minutes; a<b && b>c"}


def hook_path(room: str = "alerts", user: str = "grafana") -> str:
    return "/hooks/" + mint(SECRET, user, ttl=3600, hook=room)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (SLACK_TEXT, "Hello, world."),
        (SLACK_BLOCKS, "Danny Torrence left a 1 star review for your property."),
        (ALERTMANAGER_SLACK, "[FIRING:1] HighLatency (api prod) | http://alertmanager:9093"),
        (ALERTMANAGER_WEBHOOK, "[FIRING] HighLatency: p99 latency over 500ms"),
    ],
)
async def test_webhook_payloads_post_unchanged(
    server: ChatServer, payload: dict[str, object], expected: str
) -> None:
    async with client(server.port, "alerts", "bob") as bob:
        await recv_type(bob, "welcome")
        body = json.dumps(payload)
        answer = await curl(
            server.port, hook_path(), "-H", "Content-Type: application/json", "-d", body
        )
        assert answer.status == 201, answer.body
        msg = await recv_type(bob, "message")
        assert (msg["user"], msg["message"]) == ("grafana", expected)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            GRAFANA_LINK,
            "Disk full on host-1 (https://grafana.example/d/abc?var-host=host-1&from=now-1h)"
            " & rising",
        ),
        (CI_CHANNEL, "@channel deploy done https://ci.example/run/42"),
        (
            ATTACHMENT_LINK,
            "[FIRING:1] HighLatency | alerts (http://alertmanager:9093/#/alerts)\n"
            "@oncall: @U024BE7LH in #ops, sre@example.com",
        ),
        (LONE_BRACKET, LONE_BRACKET["text"]),
    ],
)
async def test_slack_links_and_mentions_show_as_slack_shows_them(
    server: ChatServer, payload: dict[str, object], expected: str
) -> None:
    """A reader of the room sees ``label (URL)``, ``@channel`` and ``&``, not Slack's
    brackets and entities; what is not Slack's format comes as it was sent."""
    async with client(server.port, "alerts", "bob") as bob:
        await recv_type(bob, "welcome")
        body = json.dumps(payload)
        answer = await curl(
            server.port, hook_path(), "-H", "Content-Type: application/json", "-d", body
        )
        assert answer.status == 201, answer.body
        msg = await recv_type(bob, "message")
        assert (msg["user"], msg["message"]) == ("grafana", expected)
        history = await curl(server.port, "/rooms/alerts/messages", token=make_token("bob"))
        assert [m["message"] for m in history.json()["messages"]] == [expected]


async def test_only_slack_json_is_converted(server: ChatServer) -> None:
    """A plain-text body and the protocol's ``{"message": …}`` are chatctl's own: taken as
    sent, brackets and entities too."""
    raw = "<https://ci.example/run/42|run 42> &amp; <!here>"
    async with client(server.port, "alerts", "bob") as bob:
        await recv_type(bob, "welcome")
        plain = await curl(server.port, hook_path(), "-d", raw)
        assert plain.status == 201, plain.body
        body = json.dumps({"message": raw})
        own = await curl(
            server.port, hook_path(), "-H", "Content-Type: application/json", "-d", body
        )
        assert own.status == 201, own.body
        assert [(await recv_type(bob, "message"))["message"] for _ in range(2)] == [raw, raw]


async def test_the_message_rules_check_the_converted_text() -> None:
    """The length limit counts what the room receives; a text that is blank is refused."""
    srv = make_server(max_message_chars=20)
    async with srv:
        async with client(srv.port, "alerts", "bob") as bob:
            await recv_type(bob, "welcome")
            escaped = json.dumps({"text": "&lt;" + "&amp;" * 15 + "&gt;"})  # 83 characters
            args = ("-H", "Content-Type: application/json", "-d")
            answer = await curl(srv.port, hook_path(), *args, escaped)
            assert answer.status == 201, answer.body
            assert (await recv_type(bob, "message"))["message"] == "<" + "&" * 15 + ">"
        # "run 42 (https://ci.example/run/42)": 34 characters, as many as sent
        link = json.dumps({"text": "<https://ci.example/run/42|run 42>"})
        long = await curl(srv.port, hook_path(), *args, link)
        assert long.status == 413 and long.json()["code"] == "message_too_long"
        blank = await curl(srv.port, hook_path(), *args, json.dumps({"text": " ", "blocks": []}))
        assert blank.status == 400 and blank.json()["code"] == "invalid_field"


async def test_plain_text_webhook(server: ChatServer) -> None:
    answer = await curl(server.port, hook_path(), "-d", "disk full on db-1")
    assert answer.status == 201 and answer.json()["room"] == "alerts"


async def test_a_webhook_token_writes_its_room_only(server: ChatServer) -> None:
    path = hook_path()
    token = path.removeprefix("/hooks/")
    read = await curl(server.port, "/rooms/alerts/messages", token=token)
    assert read.status == 403
    post = await curl(server.port, "/rooms/alerts/messages", "-d", "x", token=token)
    assert post.status == 403
    refused = await curl(server.port, "/rooms/alerts/events?token=" + token)
    assert refused.status == 403
    with pytest.raises(Exception, match="403"):
        async with client(server.port, "alerts", "grafana", token=token):
            pass
    plain = await curl(server.port, "/hooks/" + make_token("alice"), "-d", "x")
    assert plain.status == 403  # an ordinary token is not a webhook
    forged = await curl(server.port, "/hooks/not-a-token", "-d", "x")
    assert forged.status == 401
    assert (await curl(server.port, path)).status == 405


def test_token_create_webhook_prints_the_url() -> None:
    env = chatctl_env(CHATCTL_SERVER="wss://chat.example:8443")
    run = [sys.executable, "-m", "chatctl", "token", "create", "--user", "ci", "--webhook"]
    done = subprocess.run([*run, "--room", "alerts"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("https://chat.example:8443/hooks/eyJ")
    glob = subprocess.run([*run, "--room", "al*"], env=env, capture_output=True, text=True)
    assert glob.returncode == 2 and "exactly one --room" in glob.stderr


def test_a_webhook_url_is_redacted_in_logs() -> None:
    from chatctl.log import redact

    line = "POST http://host:8000/hooks/abc.def-ghi?x=1 failed"
    assert redact(line) == "POST http://host:8000/hooks/[redacted]?x=1 failed"
    assert "eyJ" not in redact("http://h/hooks/" + hook_path().removeprefix("/hooks/"))


async def test_a_revoked_webhook_is_refused(tmp_path: Path) -> None:
    import jwt

    path = hook_path()
    jti = jwt.decode(path.removeprefix("/hooks/"), options={"verify_signature": False})["jti"]
    revoked = tmp_path / "revoked"
    revoked.write_text("# revoked webhook URLs\n")
    srv = make_server(revoked_tokens=revoked)
    async with srv:
        assert (await curl(srv.port, path, "-d", "before")).status == 201
        revoked.write_text(f"{jti}  # the leaked one\n")
        assert srv.reload_key() is False  # no key to reload here; the list is read again
        refused = await curl(srv.port, path, "-d", "after")
        assert refused.status == 401 and refused.json()["reason"] == "token revoked"
        assert (await curl(srv.port, hook_path(), "-d", "another")).status == 201

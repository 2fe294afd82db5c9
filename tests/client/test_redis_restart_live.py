"""Issue 11 items 1 and 2 end to end, real processes only: a redis-server without persistence,
``chatctl serve --redis-url``, a ``chatctl join --json`` receiver and a pipelined
``chatctl send``."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from support.client_helpers import client_env, run_cli
from support.helpers import RedisServer, ServeProcess
from support.watched import Watched


def write_lines(sender: Watched, total: int) -> None:
    """Ten lines every 10 ms, like a busy log piped into ``chatctl send``."""
    for start in range(0, total, 10):
        sender.write("".join(f"line-{i}\n" for i in range(start, min(total, start + 10))))
        time.sleep(0.01)


def acks(proc: Watched) -> list[dict[str, object]]:
    return [json.loads(line) for line in proc.out if line.startswith("{")]


def test_live_receiver_misses_nothing_acked_after_a_redis_restart() -> None:
    """Redis restarts empty mid-stream: the room's ids restart under a new epoch. Before the
    fix the receiver resumed with only the 20 most recent messages of the new epoch (missing
    102-500 acked lines) and got some twice."""
    redis = RedisServer(persistent=False).start()
    node = ServeProcess("--redis-url", redis.url, "--history", "10000").start()
    env = client_env(node.port)
    receiver = Watched("join", "stream", "--json", env=client_env(node.port, "reader"))
    sender = Watched("send", "stream", "--json", "--timeout", "60", env=env, stdin=True)
    total = 3000
    writer = threading.Thread(target=write_lines, args=(sender, total), daemon=True)
    try:
        # the receiver is live once it prints a message sent after it started
        assert run_cli("send", "stream", "ready", env=env).returncode == 0
        receiver.wait_for(lambda: any('"ready"' in line for line in receiver.out), 30, "ready")
        writer.start()
        sender.wait_for(lambda: len(sender.out) >= 800, 30, "acks before the restart")
        redis.stop()
        down = time.time()  # every message stored from now on is in the new epoch
        redis.start()
        writer.join(30)
        sender.close_stdin()
        assert sender.wait(90) == 0, sender.err
        lines = {"ready"} | {f"line-{i}" for i in range(total)}

        def texts() -> list[str]:
            return [json.loads(line).get("message") for line in receiver.out]

        receiver.wait_for(lambda: f"line-{total - 1}" in texts(), 30, "the last line")
    finally:
        sender.stop()
        receiver.stop()
        node.stop()
        redis.cleanup()

    # which line each ack is for: client ids are <prefix>-<line number from 1>
    new_epoch = {
        f"line-{int(str(a['client_id']).rsplit('-', 1)[1]) - 1}"
        for a in acks(sender)
        if float(str(a["ts"])) > down
    }
    assert len(new_epoch) > 1000, len(new_epoch)  # most of the stream went to the new epoch
    received = Counter(
        f["message"] for f in map(json.loads, receiver.out) if f["type"] == "message"
    )
    assert set(received) <= lines
    assert not (missing := sorted(new_epoch - set(received))), f"{len(missing)} missed"
    assert not (twice := sorted(t for t, n in received.items() if n > 1)), f"twice: {twice[:9]}"
    notices = [line for line in receiver.err if "missed messages" in line]
    assert len(notices) == 1, receiver.err
    # the loss is the store's, and the server kept every message of the new epoch
    assert "stream lost its history on the server and its ids start again from 1" in notices[0]
    assert "no longer keeps" not in notices[0]


def test_send_timeout_is_a_deadline_during_a_redis_outage() -> None:
    """Connected, Redis stopped: every message gets broker_unavailable and is retried. Before
    the fix each retry reset the clock and --timeout 3 never fired."""
    redis = RedisServer(persistent=False).start()
    node = ServeProcess("--redis-url", redis.url).start()
    sender = Watched(
        "send", "ops", "--json", "--timeout", "3", env=client_env(node.port), stdin=True
    )
    try:
        sender.write("before the outage\n")
        sender.wait_for(lambda: len(sender.out) == 1, 20, "the first ack")
        redis.stop()
        started = time.monotonic()
        sender.write("during the outage\n")
        status = sender.wait(30)
        took = time.monotonic() - started
    finally:
        sender.stop()
        node.stop()
        redis.cleanup()
    assert status == 5, sender.err
    assert 2.5 <= took < 6, took
    assert len(sender.err) == 1, sender.err
    assert sender.err[0].startswith("chatctl: timed out: 1 of 2 messages not acked within 3 s")
    assert "broker_unavailable" in sender.err[0]

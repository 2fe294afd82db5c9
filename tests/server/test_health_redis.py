"""/healthz and /metrics follow the Redis broker: 503 while Redis is down, 200 once the
broker has recovered. Runs once the Redis broker (chatctl.broker.redis) is merged."""

from __future__ import annotations

import asyncio

import pytest

from support.harden_helpers import http_get
from support.helpers import RedisServer, ServeProcess

pytest.importorskip("chatctl.broker.redis", reason="the Redis broker is not merged yet")
pytestmark = [pytest.mark.redis]


async def wait_health(port: int, status: int, timeout: float = 15) -> bytes:
    async with asyncio.timeout(timeout):
        while True:
            got, _, body = await http_get(port, "/healthz")
            if got == status:
                return body
            await asyncio.sleep(0.1)


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_healthz_follows_redis(redis_server: RedisServer) -> None:
    proc = ServeProcess("--redis-url", redis_server.url).start()
    try:
        await wait_health(proc.port, 200)
        redis_server.stop()
        assert b"broker unavailable" in await wait_health(proc.port, 503)
        body = (await http_get(proc.port, "/metrics"))[2].decode()
        assert metric(body, "chatctl_broker_up") == 0
        redis_server.start()
        await wait_health(proc.port, 200)
        body = (await http_get(proc.port, "/metrics"))[2].decode()
        assert metric(body, "chatctl_broker_up") == 1
        reconnects = metric(body, "chatctl_broker_reconnects_total")
        if reconnects is None:
            pytest.skip("RedisBroker has no `reconnects` attribute yet (see server/metrics.py)")
        assert reconnects >= 1
    finally:
        assert proc.stop() == 0

"""The order gate (chatctl.server.order) and the per-user share of the rate limits, unit."""

from __future__ import annotations

from chatctl.protocol import ErrorCode, RateLimit
from chatctl.server.limits import ConnectionSettings, Limits, RateSettings
from chatctl.server.order import GRACE, OrderGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_open_gate_lets_every_message_through() -> None:
    gate = OrderGate(clock=FakeClock())
    assert gate.blocked("a") is None and gate.blocked(None) is None


def test_after_a_refusal_later_messages_wait_for_the_refused_one() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    gate.refuse("m5", ErrorCode.BROKER_UNAVAILABLE, 1.0)
    clock.now += 0.25
    error = gate.blocked("m6")
    assert error is not None
    assert (error.code, error.client_id, error.blocked_by) == (
        ErrorCode.BROKER_UNAVAILABLE,
        "m6",
        "m5",
    )
    assert error.retry_after == 0.75
    assert '"blocked_by":"m5"' in error.frame()
    clock.now += 10  # time alone does not open it: only m5 does
    assert gate.blocked("m7") is not None
    assert gate.blocked(None) is not None
    assert gate.blocked("m5") is None  # m5 is back: handled as usual
    assert gate.blocked("m6") is None


def test_a_refusal_without_client_id_holds_messages_for_its_retry_after() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    gate.refuse(None, ErrorCode.RATE_LIMITED, 0.5)
    error = gate.blocked("x")
    assert error is not None and error.blocked_by is None and error.code == "rate_limited"
    clock.now += 0.5
    assert gate.blocked(None) is None
    assert gate.blocked("x") is None


def test_blocked_messages_count_as_abuse_only_long_after_the_refusal() -> None:
    clock = FakeClock()
    gate = OrderGate(clock=clock)
    gate.refuse("a", ErrorCode.RATE_LIMITED, 1.0)
    assert not gate.late()
    clock.now += 1.0 + GRACE - 0.01
    assert not gate.late()
    clock.now += 0.02
    assert gate.late()
    gate.blocked("a")
    assert not gate.late()


def test_the_user_budget_is_shared_by_the_users_connections() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=50, user_rate=150, user_burst=50)
    limits = Limits(ConnectionSettings(), rates, clock=FakeClock())
    limits.acquire("alice", "r")
    first = limits.frame_limiter("alice")
    assert first.announced == RateLimit(100, 50)  # alone: the connection limit is tighter
    heard: list[RateLimit] = []
    first.on_change = heard.append
    limits.acquire("alice", "other-room")
    second = limits.frame_limiter("alice")
    assert second.announced == heard[-1] == RateLimit(75, 25)
    limits.acquire("alice", "r")
    assert heard[-1] == RateLimit(50, 16.666)  # rounded down: never more than the budget
    limits.acquire("bob", "r")  # another user changes nothing for alice
    assert len(heard) == 2
    limits.release("alice", "r")
    assert heard[-1] == RateLimit(75, 25)
    limits.drop("alice", second)
    limits.release("alice", "other-room")
    assert heard[-1] == RateLimit(100, 50)
    assert second.announced == RateLimit(75, 25)  # dropped: not told any more


def test_no_per_user_limit_means_no_share_and_no_update() -> None:
    rates = RateSettings(conn_rate=100, conn_burst=50, user_rate=0, user_burst=0)
    limits = Limits(ConnectionSettings(), rates, clock=FakeClock())
    limits.acquire("alice", "r")
    limiter = limits.frame_limiter("alice")
    heard: list[RateLimit] = []
    limiter.on_change = heard.append
    limits.acquire("alice", "r")
    assert heard == [] and limits.advertised("alice") == RateLimit(100, 50)
    unlimited = Limits(ConnectionSettings(), RateSettings(0, 0, 0, 0), clock=FakeClock())
    assert unlimited.advertised("alice") is None

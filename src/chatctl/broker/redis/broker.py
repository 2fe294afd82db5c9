"""The Redis broker: many ``chatctl serve`` processes act as one server through one Redis.

Per room, Redis holds the id counter and the epoch (a HASH), the history (a STREAM whose entry
``0-N`` is message ``N``, trimmed with ``MAXLEN ~``), the de-duplication keys and presence;
the key layout is in :mod:`chatctl.broker.redis.keys` and docs/redis.md. A publish is ONE Lua
script: check the client id, increment, XADD + trim, remember the client id, PUBLISH. It is
acked only once that script returned, so nothing acked is unstored.

Retention: with a history TTL, each publish refreshes the expiry of the room's keys (and the
presence heartbeat does while the room has members), history leaves out older messages, and
an idle room's keys expire by themselves; when it comes back it starts a new epoch.

Connections: a bounded command pool (``max_connections``) plus ONE pub/sub connection
(:class:`~chatctl.broker.redis.live.LiveFeed`), whatever the number of clients and rooms.

Outages: commands fail fast (no blind client-side retries: a retried publish could store
twice) and raise :class:`~chatctl.errors.BrokerUnavailable`; the outage is logged once when
it starts and once when it ends. A publish whose command may have run before it failed (the
connection was lost or timed out after sending it) is resolved instead: its script runs again
with the same client id, which stores it or finds it stored, until Redis answers or
``resolve_for`` seconds pass; then it fails with :class:`~chatctl.errors.BrokerOutcomeUnknown`
(maybe stored), never as "not stored". The live feed reconnects with capped backoff,
re-subscribes and catches every room up from its stream. Presence is a set of per-connection
entries that expire unless their node refreshes them every ``presence_ttl / 4`` seconds, so
the users of a node that dies disappear within about ``presence_ttl`` seconds; any node reaps
expired entries and announces the leaves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
from dataclasses import replace
from typing import Any

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from chatctl.broker.base import DEFAULT_HISTORY_TTL, Deliver, History, PublishResult
from chatctl.broker.redis.errors import (
    UNAVAILABLE,
    NotReplicated,
    _caused_by,
    maybe_sent,
    redact,
    stale_connection,
)
from chatctl.broker.redis.keys import (
    HISTORY,
    JOIN,
    LEAVE,
    PUBLISH,
    REFRESH,
    USERS,
    check_prefix,
    message_from_entry,
    message_from_json,
    room_keys,
)
from chatctl.broker.redis.link import stop_task
from chatctl.broker.redis.live import LiveFeed
from chatctl.broker.redis.moderated import RedisModeration
from chatctl.broker.redis.outage import RedisOutages
from chatctl.broker.redis.presence import RedisPresence
from chatctl.broker.redis.revoked import RedisRevocations
from chatctl.errors import BrokerError, BrokerUnavailable
from chatctl.protocol import DEFAULT_DEDUP_WINDOW, DEFAULT_HISTORY, Message, MessageKind
from chatctl.protocol.moderation import Moderation

log = logging.getLogger("chatctl.broker.redis")


class RedisBroker(RedisOutages, RedisPresence, RedisRevocations, RedisModeration):
    """A :class:`~chatctl.broker.base.Broker` backed by Redis (>= 7), shared by every node."""

    def __init__(
        self,
        url: str,
        *,
        history_size: int = DEFAULT_HISTORY,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        prefix: str = "chatctl",
        presence_ttl: float = 20.0,
        history_ttl: float = DEFAULT_HISTORY_TTL,
        max_connections: int = 8,
        timeout: float = 2.0,
        health_interval: float = 1.0,
        backoff_cap: float = 2.0,
        wait_replicas: int = 0,
        resolve_for: float | None = None,
    ) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        if presence_ttl <= 0:
            raise ValueError("presence_ttl must be positive")
        if wait_replicas < 0:
            raise ValueError("wait_replicas must not be negative")
        if history_ttl < 0:
            raise ValueError("history_ttl must be 0 (never) or positive")
        self.url = url
        self.history_size = history_size
        self.dedup_window = dedup_window
        self.prefix = check_prefix(prefix)
        self.presence_ttl = presence_ttl
        #: replicas that must have a message before it is acked (WAIT); 0 = do not wait
        self.wait_replicas = wait_replicas
        self._timeout = timeout
        #: seconds a publish whose reply was lost tries to learn its outcome (default: timeout)
        self.resolve_for = timeout if resolve_for is None else resolve_for
        self.history_ttl = history_ttl
        #: the history TTL as the scripts take it: milliseconds, 0 for never
        self._ttl_ms = round(history_ttl * 1000)
        #: a client id is remembered for the window, but not longer than its room
        window = min(dedup_window, history_ttl) if history_ttl else dedup_window
        self._dedup_ms = max(1, round(window * 1000))
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "health_check_interval": 0,
            # RESP2: pub/sub messages come back from read_response instead of a push handler
            "protocol": 2,
        }
        feed = {"health_interval": health_interval, "backoff_cap": backoff_cap}
        self._redis, self._live = self._connect(url, options, max_connections, feed)
        self._publish = self._script(PUBLISH)
        self._history = self._script(HISTORY)
        self._join = self._script(JOIN)
        self._leave = self._script(LEAVE)
        self._refresh = self._script(REFRESH)
        self._users = self._script(USERS)
        #: room -> {connection id: user} for this node's connections
        self._local: dict[str, dict[str, str]] = {}
        self._pending_leaves: set[tuple[str, str]] = set()
        self._down_since: float | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        self._closing = False
        self._dropping: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ what a cluster changes

    def _connect(
        self, url: str, options: dict[str, Any], max_connections: int, feed: dict[str, Any]
    ) -> tuple[Any, LiveFeed]:
        """The command client (a bounded pool) and the live feed (one pub/sub connection)."""
        self._pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=options["socket_timeout"], **options
        )
        self._pubsub_pool = ConnectionPool.from_url(url, max_connections=1, **options)
        redis = Redis(connection_pool=self._pool)
        conn = self._pubsub_pool.make_connection()  # type: ignore[no-untyped-call]
        live = LiveFeed(
            redis,
            conn,
            prefix=self.prefix,
            on_down=self._went_down,
            on_up=self._came_back,
            **feed,
        )
        return redis, live

    def _script(self, source: str) -> AsyncScript:
        return self._redis.register_script(source)  # type: ignore[no-any-return]

    async def _disconnect(self) -> None:
        await self._redis.aclose()
        await self._pool.disconnect()
        await self._pubsub_pool.disconnect()

    async def _store(self, keys: list[str], args: list[Any]) -> Any:
        """Run the PUBLISH script; with ``wait_replicas``, WAIT on the same connection."""
        if not self.wait_replicas:
            return await self._publish(keys=keys, args=args)
        async with self._redis.pipeline(transaction=False) as pipe:
            await self._publish(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", *self._wait_args())
            reply, replicated = await pipe.execute()
        if reply[0] != 0:
            # A repeat writes nothing, and WAIT counts this connection's writes: write a
            # no-op after the original (HINCRBY by 0) and wait for that one.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(keys[0], "last", 0)
                pipe.execute_command("WAIT", *self._wait_args())
                _, replicated = await pipe.execute()
        self._check_replicated(replicated)
        return reply

    def _wait_args(self) -> tuple[int, int]:
        """WAIT's arguments: the replicas, and half the command timeout (in ms) so that the
        reply comes before the socket gives up."""
        return self.wait_replicas, max(1, round(self._timeout * 500))

    def _check_replicated(self, replicated: int) -> None:
        if int(replicated) < self.wait_replicas:
            # Stored on the master but not confirmed by enough replicas: not acked. The
            # client's retry with the same id is a duplicate that waits for them again.
            raise NotReplicated(
                f"stored but only {replicated} of {self.wait_replicas} replicas confirmed it "
                f"within {self._timeout / 2:g}s"
            )

    async def _run_all(self, calls: list[tuple[AsyncScript, list[str], list[Any]]]) -> None:
        """Run many script calls (the presence heartbeat) in one pipeline."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                await script(keys=keys, args=args, client=pipe)
            if not calls:
                pipe.ping()
            await pipe.execute()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self._redis.ping()
        except UNAVAILABLE as exc:
            if _caused_by(exc, (rx.AuthenticationError, rx.AuthorizationError)):
                raise BrokerError(
                    f"Redis at {redact(self.url)} refused the credentials: {exc}"
                ) from None
            if _caused_by(exc, ssl.SSLCertVerificationError):
                raise BrokerError(
                    f"Redis at {redact(self.url)}: TLS certificate not trusted "
                    f"(add ?ssl_ca_certs=/path/to/ca.pem to the URL): {exc}"
                ) from None
            self._went_down(str(exc))
        await self._live.start(timeout=self._timeout)
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="chatctl-presence")

    async def close(self) -> None:
        self._closing = True
        await stop_task(self._heartbeat)
        await self._live.close()
        await self._disconnect()

    def healthy(self) -> bool:
        return self._down_since is None and self._live.healthy()

    @property
    def reconnects(self) -> int:
        """Times the live feed reconnected to Redis (``chatctl_broker_reconnects`` on /metrics)."""
        return self._live.reconnects

    # ------------------------------------------------------------------ messages

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
        moderation: Moderation | None = None,
    ) -> PublishResult:
        if not self._live.listening(room):
            raise BrokerUnavailable(
                f"Redis unavailable: this node is re-subscribing to room {room} after an outage"
            )
        keys = room_keys(self.prefix, room)
        script_keys = [keys.meta, keys.log, keys.dedup_key(user, client_id)]
        args = [
            secrets.token_hex(4),
            user,
            text,
            kind,
            client_id or "",
            self.history_size,
            self._dedup_ms,
            keys.channel,
            self._ttl_ms,
            display or "",
            "" if moderation is None else json.dumps(moderation.to_dict()),
        ]
        try:
            reply = await self._store_fresh(script_keys, args)
        except rx.RedisError as exc:
            if not maybe_sent(exc):
                raise self._failed(exc) from None
            if not client_id:  # a re-run could store it twice: say we do not know
                raise self._failed(exc, unknown=True) from None
            reply = await self._resolve(script_keys, args, exc)
        self._succeeded()
        epoch = str(reply[2]) if len(reply) > 2 and reply[2] else None
        if reply[0] == 0:
            return PublishResult(message_from_json(room, reply[1]), epoch=epoch)
        repeat = Message(0, room, user, text, 0.0, kind, client_id, display, moderation)
        return PublishResult(self._original(repeat, reply), True, epoch)

    async def _store_fresh(self, keys: list[str], args: list[Any]) -> Any:
        """Run the PUBLISH script; once more at once if the pooled connection it took was
        found closed before anything was written on it (after a Redis restart, each idle
        connection left in the pool fails its next command so): no refusal, no outage."""
        try:
            return await self._store(keys=keys, args=args)
        except rx.RedisError as exc:
            if not stale_connection(exc):
                raise
            self._failed(exc)  # drops the pool's idle connections
            return await self._store(keys=keys, args=args)

    async def _resolve(self, keys: list[str], args: list[Any], first: rx.RedisError) -> Any:
        """The outcome of a publish whose script may have run though its reply was lost (the
        connection failed or timed out after sending it, a master died mid-command): run the
        script again with the same client id, reconnecting, until Redis answers or
        ``resolve_for`` seconds have passed. Its answer is the publish's: stored now, or a
        repeat (the first attempt stored it). If Redis does not answer in time, raise
        :class:`~chatctl.errors.BrokerOutcomeUnknown`: maybe stored."""
        self._failed(first)  # notes the outage and drops the dead idle connections
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resolve_for
        delay = 0.05
        last: rx.RedisError = first
        while loop.time() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 0.5)
            try:
                reply = await self._store(keys=keys, args=args)
            except rx.RedisError as exc:
                if not isinstance(exc, (*UNAVAILABLE, NotReplicated)):  # not a passing fault
                    raise self._failed(exc, unknown=True) from None
                last = exc
                continue
            log.info("lost publish reply resolved: %s", "was stored" if reply[0] else "stored now")
            return reply
        raise self._failed(last, unknown=True) from None

    @staticmethod
    def _original(repeat: Message, reply: Any) -> Message:
        """The message a repeated client id first published, from the PUBLISH script's reply."""
        id, ts = str(reply[1]).split()
        if len(reply) > 3:
            original = message_from_entry(repeat.room, reply[3])
            if (original.user, original.client_id) == (repeat.user, repeat.client_id):
                return original
        # Trimmed from the log (or its id reused after the room lost its history): the id and
        # time are the original's, the rest is what this repeat carries.
        return replace(repeat, id=int(id), ts=float(ts))

    async def history(
        self, room: str, *, since: int | None, limit: int, before: int | None = None
    ) -> History:
        keys = room_keys(self.prefix, room)
        try:
            epoch, last, complete, entries = await self._history(
                keys=[keys.meta, keys.log],
                args=[
                    secrets.token_hex(4),
                    -1 if since is None else since,
                    max(0, limit),
                    self.history_size,
                    self._ttl_ms,
                    -1 if before is None else max(0, before),
                ],
            )
        except rx.RedisError as exc:
            raise self._failed(exc) from None
        messages = [message_from_entry(room, e) for e in entries]
        self._live.seen(room, int(last), str(epoch))
        return History(messages, int(last), str(epoch), bool(complete))

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        room_keys(self.prefix, room)  # validates the name
        await self._live.subscribe(room, deliver, timeout=self._timeout)

    async def unsubscribe(self, room: str) -> None:
        await self._live.unsubscribe(room)

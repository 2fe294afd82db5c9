"""The SQLite broker itself: rooms held in memory as a cache of the database, publishes
handed to the writer in call order, presence, and retention (its memory side and the rooms'
cache: :mod:`~chatctl.broker.sqlite.cache`; the package docstring has the whole picture)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO, TypeVar

from chatctl.broker.base import (
    DEFAULT_HISTORY_TTL,
    Deliver,
    History,
    PublishDone,
    PublishResult,
)
from chatctl.broker.memory import sweep_interval
from chatctl.broker.rooms import RELEASE_AFTER, release_memory
from chatctl.broker.sqlite import revoked, store
from chatctl.broker.sqlite.cache import CachedRoom, expire, sweep_forever
from chatctl.broker.sqlite.dispatch import Dispatcher, call
from chatctl.broker.sqlite.loading import Queued, RoomLoader
from chatctl.broker.sqlite.location import SYNCHRONOUS, database_path, parse_url
from chatctl.broker.sqlite.moderated import SQLiteModeration
from chatctl.broker.sqlite.ops import Call, Evict, Op, Publish, Reply, Sweep
from chatctl.broker.sqlite.reader import Reader
from chatctl.broker.sqlite.schema import lock, open_database
from chatctl.broker.sqlite.writer import Writer
from chatctl.errors import BrokerUnavailable, ConfigError, UsageError
from chatctl.protocol import DEFAULT_DEDUP_WINDOW, DEFAULT_HISTORY, Message, MessageKind
from chatctl.protocol.moderation import Moderation
from chatctl.tokens.revocation import Revocation

log = logging.getLogger("chatctl.broker.sqlite")

T = TypeVar("T")


class SQLiteBroker(RoomLoader, SQLiteModeration):
    """A :class:`~chatctl.broker.base.Broker` that keeps rooms in a SQLite file."""

    #: overlapping publish calls are stored in call order (the server may pipeline them)
    pipelined = True

    def __init__(
        self,
        location: str | Path,
        *,
        history_size: int = DEFAULT_HISTORY,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        history_ttl: float = DEFAULT_HISTORY_TTL,
        synchronous: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``location``: a ``sqlite:`` URL (see :func:`parse_url`), a database file, or a
        directory (then ``chatctl.db`` in it)."""
        if isinstance(location, str) and location.lower().startswith("sqlite:"):
            location, query = parse_url(location)
            synchronous = synchronous or query.get("synchronous")
        synchronous = (synchronous or "normal").lower()
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        if history_ttl < 0:
            raise ValueError("history_ttl must be 0 (never) or positive")
        if synchronous not in SYNCHRONOUS:
            raise UsageError(f"synchronous must be normal or full, not {synchronous!r}")
        self.path = database_path(location)
        self.history_size = history_size
        self.dedup_window = dedup_window
        self.history_ttl = history_ttl
        self.synchronous = synchronous
        self._clock = clock
        self._rooms: dict[str, CachedRoom] = {}
        self._loading: dict[str, asyncio.Future[CachedRoom]] = {}
        #: publishes to a room being read from the database, queued once it is, in order
        self._unloaded: dict[str, list[Queued]] = {}
        self._dispatch: Dispatcher | None = None
        self._reader: Reader | None = None
        #: room loads under way (kept referenced until done)
        self._loads: set[asyncio.Task[None]] = set()
        self._lock: TextIO | None = None
        self._sweeper: asyncio.Task[None] | None = None
        #: rooms evicted from memory since memory was last handed back to the system
        self._evicted = 0

    @property
    def rooms(self) -> int:
        """Rooms held in memory now (the database may hold more)."""
        return len(self._rooms)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Lock and open the database (ConfigError, exit status 2, if it is not usable)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the directory {self.path.parent}: {exc.strerror}"
            ) from None
        self._lock = lock(self.path)
        try:
            db = open_database(self.path, synchronous=self.synchronous)
        except BaseException:
            self._lock.close()
            raise
        writer = Writer(db, self.path, asyncio.get_running_loop())
        self._dispatch = Dispatcher(
            writer,
            inline=self.synchronous != "full",
            delivered=self._delivered,
            refused=self._refused,
        )
        self._reader = Reader(self.path)
        writer.checkpoint = self._reader.checkpoint
        writer.start()
        self._sweeper = asyncio.create_task(
            sweep_forever(self.sweep, self.history_ttl), name="chatctl-retention"
        )

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        d = self._dispatch
        if d is not None and d.writer is not None:
            d.flush()
            await asyncio.to_thread(d.writer.stop)
            await asyncio.sleep(0)  # let the last results reach their publishers
            d.writer = None
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
            self._reader = None
        for r in self._rooms.values():
            r.subscriber = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def healthy(self) -> bool:
        w = None if self._dispatch is None else self._dispatch.writer
        return w is not None and w.fault is None and w.alive()

    def problem(self) -> str | None:
        """Why :meth:`healthy` is false, for ``/healthz``; None while it is true."""
        w = None if self._dispatch is None else self._dispatch.writer
        if w is None:
            return "the database is closed"
        if w.fault is not None:
            return w.fault
        return None if w.alive() else "the database writer thread died"

    async def revoke(self, entry: Revocation) -> None:
        """Store a revocation in the file (``Revocations``)."""
        await self.run(lambda db: revoked.store(db, entry))

    async def revocations(self, seen: str) -> tuple[str, list[Revocation] | None]:
        """The table's version, and its entries when it changed since ``seen``."""
        return await self.run(lambda db: revoked.read(db, seen))

    async def run(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(sqlite3.Connection)`` in the writer thread, in its own transaction
        (maintenance, e.g. ``VACUUM INTO`` is not allowed there but PRAGMAs are; tests)."""
        future = self._future()
        self._submit(Call(future, fn=fn))
        result: T = await future
        return result

    # ------------------------------------------------------------------ the writer

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def _submit(self, op: Op) -> None:
        if self._dispatch is None:
            raise BrokerUnavailable("the database is closed")
        self._dispatch.submit(op)

    def _refused(self, op: Publish, exc: Exception) -> None:
        r = self._rooms.get(op.room)
        if r is not None:
            r.busy -= 1
            key = (op.user, op.client_id or "")
            if op.client_id is not None and r.inflight.get(key) is op:
                del r.inflight[key]

    def _delivered(self, op: Publish) -> None:
        r = self._rooms[op.room]
        msg = Message(
            op.result,
            op.room,
            op.user,
            op.text,
            op.ts,
            op.kind,
            op.client_id,
            op.display,
            op.moderation,
        )
        r.busy -= 1
        if not r.busy:
            r.used = time.monotonic()
        if op.client_id is not None:
            r.inflight.pop((op.user, op.client_id), None)
        r.remember(msg)
        op.result = msg
        r.hand_over(msg)
        call(op.done, PublishResult(msg, epoch=r.epoch), None)

    # ------------------------------------------------------------------ retention

    async def sweep(self) -> bool:
        """Apply retention now; True if the database has more to delete."""
        now = self._clock()
        horizon = now - self.history_ttl if self.history_ttl else None
        expire(
            self._rooms, horizon=horizon, dedup_horizon=now - self.dedup_window, evict=self._evict
        )
        if self._evicted >= RELEASE_AFTER:
            self._evicted = 0
            release_memory()
        future = self._future()
        self._submit(
            Sweep(
                future,
                horizon=horizon,
                dedup_horizon=now - self.dedup_window,
                history_size=self.history_size,
                now=now,
                every=sweep_interval(self.history_ttl) if self.history_ttl else 0.0,
            )
        )
        more: bool = await future
        return more

    def _evict(self, r: CachedRoom) -> None:
        """``r`` is no longer held in memory: nor is its id in the writer's cache."""
        self._submit(Evict(self._future(), rid=r.rid))
        self._evicted += 1

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
        future: asyncio.Future[PublishResult] = self._future()

        def done(result: PublishResult | None, error: Exception | None) -> None:
            if future.done():  # the caller was cancelled: stored and delivered all the same
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        self.publish_nowait(
            room,
            user,
            text,
            kind=kind,
            client_id=client_id,
            display=display,
            moderation=moderation,
            done=done,
        )
        return await future

    def publish_nowait(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
        display: str | None = None,
        moderation: Moderation | None = None,
        done: PublishDone,
    ) -> None:
        """Queue a publish: ``done`` hears of it after the COMMIT that stored it (or of the
        failure), on the loop, in the order of the calls (see ``PipelinedBroker``). No task
        and no future per message: a burst of a connection's messages costs one callback
        each when its transaction comes back."""
        r = self._rooms.get(room)
        if r is None:  # read from the database first; queued behind its load, in order
            queued = self._unloaded.get(room)
            if queued is None:
                queued = self._unloaded[room] = []
                if room not in self._loading:
                    self._load(room)
            queued.append((user, text, kind, client_id, display, moderation, done))
            return
        self._enqueue(r, user, text, kind, client_id, display, moderation, done)

    def _enqueue(
        self,
        r: CachedRoom,
        user: str,
        text: str,
        kind: MessageKind,
        client_id: str | None,
        display: str | None,
        moderation: Moderation | None,
        done: PublishDone,
    ) -> None:
        d = self._dispatch
        if d is None or d.writer is None:
            asyncio.get_running_loop().call_soon(
                done, None, BrokerUnavailable("the database is closed")
            )
            return
        now = self._clock()
        if client_id is not None:
            key = (user, client_id)
            first = r.inflight.get(key)
            if first is not None:  # the original is not committed yet: its outcome is ours
                d.submit(Reply(done=done, follows=first, epoch=r.epoch))
                return
            horizon = now - self.dedup_window
            r.seen.forget_before(horizon)
            original = r.original(user, client_id, text, kind, display, horizon=horizon)
            if original is not None:
                d.submit(Reply(done=done, original=original, epoch=r.epoch))
                return
        op = Publish(
            None, None, done, None, r.name, r.rid, user, text, kind, client_id,
            round(now, 3), display, moderation,
        )  # fmt: skip  # positional: one per message, and the keywords cost ~10% of it
        d.submit(op)
        if client_id is not None:
            r.inflight[key] = op
        r.busy += 1

    async def history(
        self, room: str, *, since: int | None, limit: int, before: int | None = None
    ) -> History:
        return (await self._use(room)).history(since, limit, before)

    async def subscribe(self, room: str, deliver: Deliver) -> None:
        (await self._use(room)).subscriber = deliver

    async def unsubscribe(self, room: str) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.subscriber = None

    # ------------------------------------------------------------------ presence (memory)

    async def join(self, room: str, user: str, conn_id: str) -> None:
        (await self._use(room)).join(user, conn_id, self._clock())

    async def leave(self, room: str, user: str, conn_id: str) -> None:
        r = self._rooms.get(room)
        if r is not None:
            r.leave(user, conn_id, self._clock())

    async def users(self, room: str) -> list[str]:
        r = self._rooms.get(room)
        return [] if r is None else sorted(r.members)

    async def last_id(self, room: str) -> int:
        r = self._rooms.get(room)
        if r is not None:
            return r.last_id
        query = "SELECT rid FROM rooms WHERE name = ?"

        def read(db: Any) -> int:
            row = db.execute(query, (room,)).fetchone()
            return 0 if row is None else store.counter(db, row[0])

        return await self.run(read)

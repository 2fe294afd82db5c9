"""The SQLite broker, the default of ``chatctl serve``: one server whose rooms survive restarts.

Every room's id counter, epoch, kept history and de-duplication records are in one SQLite
file (WAL mode); presence is not stored (connections do not survive a restart). One
connection does the database work, in order: a writer thread (:mod:`chatctl.broker.sqlite_store`)
runs reads, retention and bursts; a batch of at most :data:`INLINE_MAX` publishes that finds
the thread idle is committed on the event loop itself (a commit without fsync takes ~70 µs,
less than the thread hops and GIL hand-overs it saves); WAL checkpoints run in the thread:

- ``publish`` queues the message and returns once the transaction holding it has COMMITted;
  publishes that arrive while a commit runs go into the next one (group commit). Ids are
  given out by that transaction, so a failed one gives none out. Live delivery to this
  process's subscriber happens after the commit, in id order, like the memory broker's.
- A room is read from the database when it is first used (history, dedup records, counter)
  and then served from memory; a room nobody has used for :data:`CACHE_IDLE` seconds leaves
  memory again. Start-up reads nothing, however big the file.
- A failed write (full disk, I/O error) fails the messages of that transaction with
  :class:`~chatctl.errors.BrokerUnavailable` (never an ack), makes :meth:`healthy` false,
  is logged once, and the writer probes every second until writes work again. It also fails
  every publish made before the failure reached the loop (queued for a later transaction or
  not yet handed to the writer): none of them commits, so a connection's later message is
  never stored ahead of its refused one (see :mod:`chatctl.broker.sqlite_store`).
- A lock file (``<db>-lock``) keeps a second server off the same database.

Durability: ``synchronous=normal`` (the default) survives a crash of the process at any
moment; a power loss may lose the last transactions (never corrupts). ``synchronous=full``
syncs every commit to disk. See docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from chatctl.broker.base import (
    DEFAULT_HISTORY_TTL,
    Deliver,
    History,
    PublishDone,
    PublishResult,
)
from chatctl.broker.memory import sweep_interval
from chatctl.broker.rooms import RELEASE_AFTER, RoomState, release_memory
from chatctl.broker.sqlite_store import (
    Call,
    Checkpoint,
    Evict,
    Failure,
    Item,
    Load,
    Op,
    Publish,
    Reply,
    Resume,
    Sweep,
    Writer,
    lock,
    open_database,
)
from chatctl.errors import BrokerError, BrokerUnavailable, ConfigError, UsageError
from chatctl.protocol import DEFAULT_DEDUP_WINDOW, DEFAULT_HISTORY, Message, MessageKind

log = logging.getLogger("chatctl.broker.sqlite")

#: Seconds a room nobody uses stays in memory (it is on disk: this is only a cache).
CACHE_IDLE = 30.0
#: Seconds a room just used is kept in memory even when retention has expired it (a request
#: that read it may still be using it).
STALE_GRACE = 1.0
#: Publishes a batch may hold to be committed on the loop's thread when the writer thread is
#: idle (see :mod:`chatctl.broker.sqlite_store`); bigger batches, a burst, go to the thread.
#: 32 rows are ~0.3 ms of the loop; the thread's hand-overs can cost a switch interval (5 ms)
#: each under load. On 2 cores the thread brought no throughput (send of 100k lines: 25.3-26.5k
#: lines/s at 4, 24.1-25.9k at 64, the thread idle at 64).
INLINE_MAX = 32
#: File name of the database inside a data directory.
DB_NAME = "chatctl.db"
SYNCHRONOUS = ("normal", "full")

T = TypeVar("T")


@dataclass(eq=False)
class _Room(RoomState):
    rid: int = 0
    #: publishes waiting for their commit, by (user, client id): a repeat waits for it too
    inflight: dict[tuple[str, str], Publish] = field(default_factory=dict)
    #: publishes queued and not yet answered (a busy room stays in memory)
    busy: int = 0
    used: float = 0.0


def database_path(location: str | Path) -> Path:
    """The database file for ``location``: a file, or a directory that holds chatctl.db."""
    path = Path(location).expanduser()
    if path.is_dir() or str(location).endswith("/"):
        return path / DB_NAME
    return path


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///abs/path`` (a file, or a directory ending in ``/``) or ``sqlite:rel/path``,
    optionally with ``?synchronous=full``: the path and the broker options."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path:
        raise UsageError(
            f"invalid SQLite URL {url!r}: use sqlite:///absolute/path or sqlite:relative/path"
        )
    query = dict(parse_qsl(parts.query))
    unknown = sorted(set(query) - {"synchronous"})
    if unknown:
        raise UsageError(f"unknown SQLite URL option {unknown[0]!r} (known: synchronous)")
    return path, query


class SQLiteBroker:
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
        self._rooms: dict[str, _Room] = {}
        self._loading: dict[str, asyncio.Future[_Room]] = {}
        #: publishes to a room being read from the database, queued once it is, in order
        self._unloaded: dict[str, list[_Queued]] = {}
        self._writer: Writer | None = None
        self._outbox: list[Item] = []
        #: ops submitted and not yet finished, in submission order
        self._pending: dict[Op, None] = {}
        #: ops handed to the writer thread and not yet reported back by it
        self._with_thread = 0
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
        self._writer = Writer(db, self.path, asyncio.get_running_loop(), self._finished)
        self._writer.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="chatctl-retention")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._writer is not None:
            self._flush()
            await asyncio.to_thread(self._writer.stop)
            await asyncio.sleep(0)  # let the last results reach their publishers
            self._writer = None
        for r in self._rooms.values():
            r.subscriber = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def healthy(self) -> bool:
        w = self._writer
        return w is not None and w.fault is None and w.alive()

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
        """Queue ``op``; everything queued in one turn of the loop reaches the writer at once
        (waking the thread once per turn, not once per message, keeps the GIL with the loop)."""
        if self._writer is None:
            raise BrokerUnavailable("the database is closed")
        self._pending[op] = None
        self._queue(op)

    def _queue(self, item: Item) -> None:
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(item)

    def _flush(self) -> None:
        items, self._outbox = self._outbox, []
        if not items:
            return
        w = self._writer
        if w is not None:
            if (
                not self._with_thread
                and len(items) <= INLINE_MAX
                and self.synchronous != "full"
                and w.fault is None
                and all(isinstance(i, Publish | Reply) for i in items)
            ):
                w.run_here(items)  # the thread is idle: no hops for a message or two
                if w.checkpoint_wanted:  # for the thread: not on the loop
                    w.checkpoint_wanted = False
                    self._submit(Checkpoint())
                return
            self._with_thread += sum(isinstance(i, Op) for i in items)
            w.submit(items)
        else:
            closed = BrokerUnavailable("the database is closed")
            for item in items:
                if isinstance(item, Op) and item in self._pending:
                    self._fail(item, closed)

    def _finished(self, batch: list[Op], failure: Failure | None) -> None:
        """On the loop, after each transaction: install, remember, deliver, resolve."""
        if self._with_thread:  # not for a batch run here (the thread had nothing)
            self._with_thread -= len(batch)
        if failure is not None:
            self._failed(batch, failure)
            return
        pending = self._pending
        for op in batch:
            pending.pop(op, None)
            if isinstance(op, Publish):
                self._delivered(op)
                continue
            if isinstance(op, Reply):
                _replied(op)
                continue
            if isinstance(op, Load):
                del self._loading[op.name]
                op.result = self._install(op)
                for queued in self._unloaded.pop(op.name, ()):
                    self._enqueue(op.result, *queued)
            future = op.future
            if future is not None and not future.done():
                future.set_result(op.result)

    def _failed(self, batch: list[Op], failure: Failure) -> None:
        """Fail the batch; when the failure begins a refusal episode, fail everything still
        in flight too (the writer refuses it: it is queued before the Resume marker), then
        let the writer try again."""
        error = failure.error
        exc = (
            BrokerUnavailable(f"database write failed: {error}")
            if failure.unavailable
            else BrokerError(f"database error: {error}")
        )
        for op in batch:
            if op in self._pending:
                self._fail(op, exc)
        if failure.episode is not None:
            for op in list(self._pending):
                self._fail(op, exc)
            self._queue(Resume(failure.episode))

    def _fail(self, op: Op, exc: Exception) -> None:
        del self._pending[op]
        if isinstance(op, Publish):
            op.error = exc
            r = self._rooms.get(op.room)
            if r is not None:
                r.busy -= 1
                key = (op.user, op.client_id or "")
                if op.client_id is not None and r.inflight.get(key) is op:
                    del r.inflight[key]
            _call(op.done, None, exc)
            return
        if isinstance(op, Reply):
            _call(op.done, None, exc)
            return
        if isinstance(op, Load) and self._loading.get(op.name) is op.future:
            del self._loading[op.name]
            for *_, done in self._unloaded.pop(op.name, ()):
                _call(done, None, exc)
        future = op.future
        if future is not None and not future.done():
            future.set_exception(exc)
            future.exception()  # retrieved: the awaiting caller may be gone

    def _install(self, op: Load) -> _Room:
        rid, epoch, last, touched, rows, seen = op.result
        r = _Room(op.name, self.history_size, epoch=epoch, last_id=last, touched=touched)
        r.rid, r.used = rid, time.monotonic()
        name = op.name
        r.log.extend(Message(i, name, u, t, ts, k, c) for i, u, t, ts, k, c in rows)
        for user, client_id, msg_id, ts, at in seen:
            r.seen[(user, client_id)] = (msg_id, ts, at)
        self._rooms[name] = r
        return r

    def _delivered(self, op: Publish) -> None:
        r = self._rooms[op.room]
        msg = Message(op.result, op.room, op.user, op.text, op.ts, op.kind, op.client_id)  # type: ignore[arg-type]
        r.busy -= 1
        if not r.busy:
            r.used = time.monotonic()
        if op.client_id is not None:
            r.inflight.pop((op.user, op.client_id), None)
        r.remember(msg, op.seen_at)
        op.result = msg
        r.hand_over(msg)
        _call(op.done, PublishResult(msg), None)

    async def _use(self, room: str) -> _Room:
        """The room, read from the database (or created there) on first use."""
        r = self._rooms.get(room)
        if r is None:
            loading = self._loading.get(room)
            if loading is None:
                loading = self._load(room)
            r = await asyncio.shield(loading)
        r.used = time.monotonic()
        return r

    def _load(self, room: str) -> asyncio.Future[_Room]:
        now = self._clock()
        ttl = self.history_ttl
        op = Load(
            self._future(),
            name=room,
            history_size=self.history_size,
            horizon=now - ttl if ttl else float("-inf"),
            dedup_horizon=now - self.dedup_window,
            now=now,
        )
        self._submit(op)
        loading: asyncio.Future[_Room] = op.future  # type: ignore[assignment]
        self._loading[room] = loading
        return loading

    # ------------------------------------------------------------------ retention

    async def _sweep_loop(self) -> None:
        ttl = self.history_ttl
        interval = min(sweep_interval(ttl) if ttl else 60.0, CACHE_IDLE / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                while await self.sweep():
                    pass
            except BrokerError:
                pass  # logged by the writer; the next round tries again

    async def sweep(self) -> bool:
        """Apply retention now; True if the database has more to delete."""
        now = self._clock()
        horizon = now - self.history_ttl if self.history_ttl else None
        mono = time.monotonic()
        for name, r in list(self._rooms.items()):
            if horizon is not None:
                r.forget_messages_before(horizon)
            r.forget_seen_before(now - self.dedup_window)
            # forgotten by retention, or unused for a while: it is on disk, memory is a cache
            stale = horizon is not None and r.touched < horizon and r.used < mono - STALE_GRACE
            if r.idle and not r.busy and not r.inflight and (r.used < mono - CACHE_IDLE or stale):
                del self._rooms[name]
                self._submit(Evict(self._future(), rid=r.rid))
                self._evicted += 1
        if self._evicted >= RELEASE_AFTER:
            self._evicted = 0
            release_memory()
        future = self._future()
        self._submit(Sweep(future, horizon=horizon, dedup_horizon=now - self.dedup_window))
        more: bool = await future
        return more

    # ------------------------------------------------------------------ messages

    async def publish(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
    ) -> PublishResult:
        future: asyncio.Future[PublishResult] = self._future()

        def done(result: PublishResult | None, error: Exception | None) -> None:
            if future.done():  # the caller was cancelled: stored and delivered all the same
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]

        self.publish_nowait(room, user, text, kind=kind, client_id=client_id, done=done)
        return await future

    def publish_nowait(
        self,
        room: str,
        user: str,
        text: str,
        *,
        kind: MessageKind = "text",
        client_id: str | None = None,
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
            queued.append((user, text, kind, client_id, done))
            return
        self._enqueue(r, user, text, kind, client_id, done)

    def _enqueue(
        self,
        r: _Room,
        user: str,
        text: str,
        kind: MessageKind,
        client_id: str | None,
        done: PublishDone,
    ) -> None:
        if self._writer is None:
            asyncio.get_running_loop().call_soon(
                done, None, BrokerUnavailable("the database is closed")
            )
            return
        now = self._clock()
        if client_id is not None:
            key = (user, client_id)
            first = r.inflight.get(key)
            if first is not None:  # the original is not committed yet: its outcome is ours
                self._submit(Reply(done=done, follows=first))
                return
            r.forget_seen_before(now - self.dedup_window)
            original = r.original(user, client_id, text, kind)
            if original is not None:
                self._submit(Reply(done=done, original=original))
                return
        op = Publish(
            None, None, done, None, r.name, r.rid, user, text, kind, client_id,
            round(now, 3), now, self.history_size,
        )  # fmt: skip  # positional: one per message, and the keywords cost ~10% of it
        self._submit(op)
        if client_id is not None:
            r.inflight[key] = op
        r.busy += 1

    async def history(self, room: str, *, since: int | None, limit: int) -> History:
        return (await self._use(room)).history(since, limit)

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


#: a publish made before its room was read: (user, text, kind, client_id, done)
_Queued = tuple[str, str, MessageKind, str | None, PublishDone]


def _replied(op: Reply) -> None:
    """Answer a repeated client id: the original, or the outcome of the one it followed."""
    if op.original is not None:
        _call(op.done, PublishResult(op.original, duplicate=True), None)
        return
    first = op.follows
    assert first is not None
    if isinstance(first.result, Message):
        _call(op.done, PublishResult(first.result, duplicate=True), None)
    else:
        _call(op.done, None, first.error or BrokerUnavailable("the message was not stored"))


def _call(done: PublishDone | None, result: PublishResult | None, error: Exception | None) -> None:
    """One caller's answer; its failure (a bug) must not cost the rest of the batch theirs."""
    if done is None:
        return
    try:
        done(result, error)
    except Exception:
        log.exception("a publish callback failed")

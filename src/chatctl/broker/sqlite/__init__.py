"""The SQLite broker, the default of ``chatctl serve``: one server whose rooms survive restarts.

Every room's id counter, epoch, kept history and de-duplication records are in one SQLite
file (WAL mode); presence is not stored (connections do not survive a restart). One
connection does the writes, in order: a writer thread (:mod:`chatctl.broker.sqlite.writer`)
runs them, retention and bursts; a batch of at most
:data:`~chatctl.broker.sqlite.dispatch.INLINE_MAX` publishes that finds the thread idle is
committed on the event loop itself (a commit without fsync takes ~70 µs, less than the thread
hops and GIL hand-overs it saves); WAL checkpoints run in the reader's thread, on a connection
of their own, so that the writer stays free for the loop's commits:

- ``publish`` queues the message and returns once the transaction holding it has COMMITted;
  publishes that arrive while a commit runs go into the next one (group commit). Ids are
  given out by that transaction, so a failed one gives none out. Live delivery to this
  process's subscriber happens after the commit, in id order, like the memory broker's.
- A publish writes one row (schema 5): the message, which is its de-duplication record too.
  The room's id counter is the writer's (given out only once committed; read at load as
  the room's row or its newest message, whichever is higher, and written to the row before
  retention may delete that message); the sweep trims the history, keeping the rows still
  within the de-duplication window.
- A room is read from the database when it is first used (its counter by the writer, its
  history and newest dedup records, capped, by :mod:`chatctl.broker.sqlite.reader`, off
  the loop and off the writer) and then served from memory; a room nobody has used for
  :data:`~chatctl.broker.sqlite.broker.CACHE_IDLE` seconds leaves memory again. Start-up
  reads nothing, however big the file (it checks it: :func:`~.schema.check`).
- A failed write (full disk, I/O error) fails the messages of that transaction with
  :class:`~chatctl.errors.BrokerUnavailable` (never an ack), makes
  :meth:`SQLiteBroker.healthy` false, is logged once, and the writer probes every second
  until writes work again. It also fails every publish made before the failure reached the
  loop (queued for a later transaction or not yet handed to the writer): none of them
  commits, so a connection's later message is never stored ahead of its refused one (see
  :mod:`chatctl.broker.sqlite.dispatch`).
- Another process's write lock is never waited for on the loop: the thread waits for it,
  up to :data:`~chatctl.broker.sqlite.writer.LOCK_WAIT` seconds, then fails the batch.
- A lock file (``<db>-lock``) keeps a second server off the same database.

Durability: ``synchronous=normal`` (the default) survives a crash of the process at any
moment; a power loss may lose the last transactions (never corrupts). ``synchronous=full``
syncs every commit to disk. See docs/deploy.md.

Modules: ``broker.py`` the broker (rooms in memory, publishes, retention), ``loading.py``
a room read into memory on first use, ``moderated.py`` its moderation, ``cache.py``
the rooms held in memory and what retention forgets of them, ``dispatch.py``
the loop's end of the writer, ``writer.py`` the thread that owns the connection, ``reader.py``
the thread that reads rooms, ``ops.py`` the work they are given, ``store.py`` the queries,
``schema.py`` the file (schema, lock, opening and checking it), ``location.py`` URLs and
paths.
"""

from chatctl.broker.sqlite.broker import SQLiteBroker

__all__ = ["SQLiteBroker"]

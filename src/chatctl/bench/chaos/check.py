"""Check one schedule's :class:`~chatctl.bench.chaos.history.History` against the rules of
docs/protocol.md. Pure: a list of :class:`Violation` out, each naming its rule and the
events (by index) that show it.

The rules (docs/reliability.md lists them with what each promise rests on):

- ``id-order``: one connection's ids strictly increase within its epoch.
- ``same-id``: one id of a room's epoch is one message for every receiver (so all receivers
  of a room see the same messages in the same order).
- ``duplicate``: one message (text) is stored under one id per epoch.
- ``gap``: a receiver that stayed connected, or resumed with ``recovered: true``, gets every
  id of its epoch, once: no id skipped, none delivered again after a resume.
- ``not-delivered``: a connection still open at the end got every message of its epoch.
- ``sender-order``: one sender's messages are stored in the order it first sent them.
- ``epoch-change``: a room's epoch changes only after a fault that may lose history, and
  never on a durable broker.
- ``recovered``: a resume in the same epoch is ``recovered: true`` (the runner keeps every
  message in the history), or ``recovered: false`` with ``more: true`` (cut to fit the
  node's ``--max-pending``) and then paged back with ``history`` requests to ``since + 1`` —
  a paging that stops short in the welcome's epoch is a violation; such a paged resume
  counts as recovered for ``gap``. One across an epoch change is ``recovered: false``
  without ``more``.
- ``ack-mismatch``: an ack's id holds the acked message.
- ``acked-lost``: every acked message is in the room's history at the end (on a durable
  broker; on memory, those acked in the last epoch).
- ``refused-stored``: a message refused as not stored is not stored unless sent again (a
  refusal marked ``"stored": "unknown"`` promises nothing);
  ``phantom``: nothing is stored that nobody sent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chatctl.bench.chaos.epochs import EpochRules
from chatctl.bench.chaos.history import (
    Ack,
    Connecting,
    Delivery,
    Disconnect,
    End,
    History,
    Paged,
    Refusal,
    Send,
    Welcome,
)
from chatctl.protocol import STORED_UNKNOWN

#: refusal codes that mean "not stored, send it again"
NOT_STORED = frozenset({"broker_unavailable", "rate_limited"})


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str
    #: indices of the events that show it (the minimal slice of the history)
    events: tuple[int, ...]

    def report(self, history: History) -> list[str]:
        head = f"VIOLATION {self.rule} (seed {history.seed}, broker {history.broker}): "
        return [head + self.detail, *("  " + line for line in history.dump(list(self.events)))]


class _Checker(EpochRules):
    def __init__(self, history: History) -> None:
        self.h = history
        self.out: list[Violation] = []
        ev = history.events
        self.deliveries = [(i, e) for i, e in enumerate(ev) if isinstance(e, Delivery)]
        self.welcomes = [(i, e) for i, e in enumerate(ev) if isinstance(e, Welcome)]
        self.end = next((i for i, e in enumerate(ev) if isinstance(e, End)), len(ev))
        #: (room, epoch, id) -> first delivery index
        self.stored: dict[tuple[str, str, int], int] = {}
        for i, d in self.deliveries:
            self.stored.setdefault((d.room, d.epoch, d.id), i)
        #: (receiver, conn) -> index of its welcome
        self.welcome_of = {(e.receiver, e.conn): i for i, e in self.welcomes}
        #: welcome index -> index of its connection's last attempt to connect: what it
        #: tells may be as old as that (a welcome written just before a node died arrives
        #: after the fault); the welcome's own index without one
        self.opened: dict[int, int] = {}
        attempts: dict[tuple[str, int], int] = {}
        for i, e in enumerate(ev):
            if isinstance(e, Connecting):
                attempts[(e.receiver, e.conn)] = i
            elif isinstance(e, Welcome):
                self.opened[i] = attempts.get((e.receiver, e.conn), i)
        #: connections welcomed with ``more`` that paged back to ``since + 1`` in the
        #: welcome's epoch: recovered, as with ``recovered: true``
        self.paged: set[tuple[str, int]] = set()
        for e in ev:
            if isinstance(e, Paged) and e.reached == e.since + 1:
                w = self.welcome_of.get((e.receiver, e.conn))
                if w is not None and ev[w].epoch == e.epoch:  # type: ignore[union-attr]
                    self.paged.add((e.receiver, e.conn))

    def flag(self, rule: str, detail: str, *events: int) -> None:
        self.out.append(Violation(rule, detail, tuple(sorted(set(events)))))

    # -- one connection, one id -------------------------------------------------------
    def id_order(self) -> None:
        last: dict[tuple[str, int], tuple[int, Delivery]] = {}
        for i, d in self.deliveries:
            key = (d.receiver, d.conn)
            prev = last.get(key)
            if prev is not None and prev[1].epoch == d.epoch and d.id <= prev[1].id:
                self.flag(
                    "id-order",
                    f"{d.receiver} got id {d.id} after id {prev[1].id} on one connection",
                    prev[0],
                    i,
                )
            last[key] = (i, d)

    def same_id(self) -> None:
        seen: dict[tuple[str, str, int], tuple[int, Delivery]] = {}
        by_text: dict[tuple[str, str, str], tuple[int, Delivery]] = {}
        for i, d in self.deliveries:
            first = seen.setdefault((d.room, d.epoch, d.id), (i, d))
            if (first[1].text, first[1].user) != (d.text, d.user):
                self.flag(
                    "same-id",
                    f"id {d.id} of {d.room}@{d.epoch} is {first[1].text!r} for "
                    f"{first[1].receiver} but {d.text!r} for {d.receiver}",
                    first[0],
                    i,
                )
            other = by_text.setdefault((d.room, d.epoch, d.text), (i, d))
            if other[1].id != d.id:
                self.flag(
                    "duplicate",
                    f"{d.text!r} is stored as id {other[1].id} and as id {d.id} in "
                    f"{d.room}@{d.epoch}",
                    other[0],
                    i,
                )

    # -- coverage: gaps and redeliveries ------------------------------------------------
    def coverage(self) -> None:
        ev = self.h.events
        # receiver -> (epoch, next expected id, index of the chain's welcome, last index)
        chain: dict[str, tuple[str, int, int, int]] = {}
        fresh_history: set[tuple[str, int]] = set()
        open_conns: dict[tuple[str, int], str] = {}
        for i, e in enumerate(ev[: self.end]):
            if isinstance(e, Welcome):
                open_conns[(e.receiver, e.conn)] = e.room
                if e.asked_since is None:
                    fresh_history.add((e.receiver, e.conn))
                    chain[e.receiver] = (e.epoch, e.last_id + 1, i, i)
                elif e.epoch == e.asked_epoch and (
                    e.recovered or (e.receiver, e.conn) in self.paged
                ):
                    prev = chain.get(e.receiver)
                    start = e.asked_since + 1
                    reached = prev[1] if prev is not None else start
                    if prev is not None and reached == -1:
                        # nothing since an unrecovered welcome: the client may resume from
                        # anywhere up to that welcome's last_id (from earlier, it is served
                        # again what it never got)
                        began = ev[prev[2]]
                        top = began.last_id + 1 if isinstance(began, Welcome) else start
                        reached = start if start <= top else top
                    if prev is not None and prev[0] == e.epoch and reached != start:
                        self.flag(
                            "gap",
                            f"{e.receiver} resumed since {e.asked_since} but had "
                            f"processed up to {reached - 1} (runner bug)",
                            prev[3],
                            i,
                        )
                    chain[e.receiver] = (e.epoch, start, i, i)
                else:
                    chain[e.receiver] = (e.epoch, -1, i, i)  # restarts at its first message
            elif isinstance(e, Disconnect):
                open_conns.pop((e.receiver, e.conn), None)
            elif isinstance(e, Delivery):
                if (e.receiver, e.conn) in fresh_history and e.history:
                    continue  # a fresh join's history: before its chain starts
                epoch, expected, w, _ = chain[e.receiver]
                if expected == -1:
                    expected = e.id
                if e.epoch != epoch:
                    continue  # id-order / welcome rules report it
                if e.id > expected:
                    self.flag(
                        "gap",
                        f"{e.receiver} ({self._how(w)}) got id {e.id} "
                        f"of {e.room}@{e.epoch} but never id {expected}"
                        + self._where(e.room, e.epoch, expected),
                        w,
                        *self._at(e.room, e.epoch, expected),
                        i,
                    )
                elif e.id < expected:
                    self.flag(
                        "gap",
                        f"{e.receiver} got id {e.id} of {e.room}@{e.epoch} again "
                        f"(it had reached {expected - 1})",
                        w,
                        i,
                    )
                chain[e.receiver] = (epoch, max(expected, e.id + 1), w, i)
        if self.end < len(ev) or any(isinstance(e, End) for e in ev):
            self._caught_up(chain, open_conns)

    def _how(self, welcome: int) -> str:
        w = self.h.events[welcome]
        return "resumed" if isinstance(w, Welcome) and w.asked_since is not None else "live"

    def _at(self, room: str, epoch: str, id_: int) -> list[int]:
        found = self.stored.get((room, epoch, id_))
        return [] if found is None else [found]

    def _where(self, room: str, epoch: str, id_: int) -> str:
        found = self.stored.get((room, epoch, id_))
        if found is None:
            return ""
        return f" ({self.h.events[found].receiver} got it)"  # type: ignore[union-attr]

    def _caught_up(
        self, chain: dict[str, tuple[str, int, int, int]], open_conns: dict[tuple[str, int], str]
    ) -> None:
        newest: dict[tuple[str, str], int] = defaultdict(int)
        for room, epoch, id_ in self.stored:
            newest[(room, epoch)] = max(newest[(room, epoch)], id_)
        for (receiver, _conn), room in open_conns.items():
            epoch, expected, w, last = chain[receiver]
            top = newest[(room, epoch)]
            if expected != -1 and expected <= top:
                self.flag(
                    "not-delivered",
                    f"{receiver} stayed connected to {room}@{epoch} but never got id "
                    f"{expected} (the room reached id {top})",
                    w,
                    last,
                    *self._at(room, epoch, expected),
                    self.end,
                )

    # -- senders ------------------------------------------------------------------------
    def sender_order(self) -> None:
        first_send: dict[str, tuple[str, int]] = {}  # text -> (sender, its n-th first send)
        for e in self.h.events:
            if isinstance(e, Send) and e.text not in first_send:
                first_send[e.text] = (e.sender, len(first_send))
        rows = sorted(self.stored.items())  # (room, epoch, id) order
        last: dict[tuple[str, str, str], tuple[int, int, int]] = {}
        for (room, epoch, id_), i in rows:
            d = self.h.events[i]
            assert isinstance(d, Delivery)
            if d.text not in first_send:
                self.flag("phantom", f"id {id_} of {room}@{epoch}: {d.text!r} was never sent", i)
                continue
            sender, seq = first_send[d.text]
            key = (room, epoch, sender)
            prev = last.get(key)
            if prev is not None and seq < prev[1]:
                self.flag(
                    "sender-order",
                    f"{sender}'s {d.text!r} is stored as id {id_}, after one it sent later "
                    f"(id {prev[0]}) in {room}@{epoch}",
                    prev[2],
                    i,
                )
            if prev is None or seq > prev[1]:
                last[key] = (id_, seq, i)

    # -- acks and refusals ----------------------------------------------------------------
    def _ack_text(self, a: Ack) -> str | None:
        if a.text is not None:
            return a.text
        for _, d in self.deliveries:
            if d.user == a.sender and d.client_id == a.client_id and d.room == a.room:
                return d.text
        return None

    def _ack_epoch(self, a: Ack) -> str | None:
        if a.epoch is not None:
            return a.epoch
        epochs = {e.epoch for _, e in self.welcomes if e.room == a.room}
        return next(iter(epochs)) if len(epochs) == 1 else None

    def acks(self) -> None:
        final_epoch: dict[str, str] = {}
        final: dict[tuple[str, str], set[int]] = defaultdict(set)
        for i, e in enumerate(self.h.events):
            if isinstance(e, Welcome) and i > self.end:
                final_epoch[e.room] = e.epoch
            if isinstance(e, Delivery) and i > self.end:
                final[(e.room, e.epoch)].add(e.id)
        for i, e in enumerate(self.h.events):
            if not isinstance(e, Ack):
                continue
            epoch, text = self._ack_epoch(e), self._ack_text(e)
            if epoch is None:
                continue
            at = self.stored.get((e.room, epoch, e.id))
            if at is not None and text is not None:
                got = self.h.events[at]
                assert isinstance(got, Delivery)
                if got.text != text:
                    self.flag(
                        "ack-mismatch",
                        f"{e.sender}'s {text!r} was acked as id {e.id} of {e.room}@{epoch}, "
                        f"which holds {got.text!r}",
                        i,
                        at,
                    )
            if final_epoch.get(e.room) == epoch and e.id not in final[(e.room, epoch)]:
                self.flag(
                    "acked-lost",
                    f"{e.sender}'s {text!r} was acked as id {e.id} of {e.room}@{epoch} "
                    "but the room's history at the end does not have it",
                    i,
                    *([at] if at is not None else []),
                )

    def refusals(self) -> None:
        ev = self.h.events
        last_send: dict[str, int] = {}
        refused_after_send: dict[str, int] = {}
        reported: set[str] = set()
        for i, e in enumerate(ev):
            if isinstance(e, Send):
                last_send[e.text] = i
                refused_after_send.pop(e.text, None)
            elif isinstance(e, Refusal) and e.code in NOT_STORED and e.text is not None:
                if e.stored == STORED_UNKNOWN:  # "maybe stored": storing it breaks no promise
                    refused_after_send.pop(e.text, None)
                else:
                    refused_after_send[e.text] = i
            elif isinstance(e, Delivery) and not e.history and e.text not in reported:
                r = refused_after_send.get(e.text)
                first = self.stored.get((e.room, e.epoch, e.id))
                if r is not None and first == i:
                    reported.add(e.text)
                    self.flag(
                        "refused-stored",
                        f"{e.text!r} was refused as not stored and then stored without "
                        "being sent again",
                        last_send[e.text],
                        r,
                        i,
                    )


def check(history: History) -> list[Violation]:
    """Every violation of the rules in ``history`` (empty: none)."""
    c = _Checker(history)
    c.id_order()
    c.same_id()
    c.coverage()
    c.sender_order()
    c.epochs()
    c.acks()
    c.refusals()
    return c.out


def messages_checked(history: History) -> int:
    """Distinct messages stored (room, epoch, id) the history saw."""
    return len({(d.room, d.epoch, d.id) for d in history.events if isinstance(d, Delivery)})


__all__ = ["NOT_STORED", "Violation", "check", "messages_checked"]

"""The checker's rules on epochs and resumes (``epoch-change``, ``recovered``, a paged
resume's), a part of :class:`~chatctl.bench.chaos.check` kept apart for its size: a room's
epoch changes only after a fault that may lose history (never on a durable broker); a resume
in the same epoch is ``recovered: true``, or ``more: true`` and paged back to ``since + 1``;
one across an epoch change is neither."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatctl.bench.chaos.history import Fault, History, Paged, Welcome


class EpochRules:
    """A mixin of the checker: it declares what it reads of it."""

    h: History
    #: welcome index -> index of its connection's last attempt to connect
    opened: dict[int, int]
    #: (receiver, conn) -> index of its welcome
    welcome_of: dict[tuple[str, int], int]

    if TYPE_CHECKING:

        def flag(self, rule: str, detail: str, *events: int) -> None: ...

    # -- epochs and recovered ------------------------------------------------------------
    def epochs(self) -> None:
        ev = self.h.events
        #: room -> its epoch, the index its first welcome's connection was opened at, and
        #: that welcome's
        current: dict[str, tuple[str, int, int]] = {}
        last_loss = -1
        for i, e in enumerate(ev):
            if isinstance(e, Fault) and e.loses_history:
                last_loss = i
            if isinstance(e, Paged):
                self._paging(i, e, last_loss)
            if not isinstance(e, Welcome):
                continue
            prev = current.get(e.room)
            changed = prev is not None and prev[0] != e.epoch
            # a welcome tells the room as it was at any time since its connection was
            # opened (one written just before a node died can arrive after the fault, even
            # after a welcome of the node that came back): a change is explained by a fault
            # that loses history after either connection was opened
            lost = prev is not None and last_loss > min(prev[1], self.opened[i])
            if prev is not None and changed and (self.h.durable or not lost):
                why = "a durable broker" if self.h.durable else "no fault that loses history"
                self.flag(
                    "epoch-change",
                    f"{e.room}'s epoch went from {prev[0]} to {e.epoch} with {why} between",
                    prev[2],
                    i,
                )
            if prev is None or prev[0] != e.epoch:
                current[e.room] = (e.epoch, self.opened[i], i)
            if e.asked_since is not None:
                same = e.asked_epoch == e.epoch
                if same and not e.recovered and not e.more:  # with more: see _paging
                    self.flag(
                        "recovered",
                        f"{e.receiver} resumed {e.room} since {e.asked_since} in the same "
                        "epoch and got recovered: false (the history keeps everything)",
                        i,
                    )
                if not same and (e.recovered or e.more):
                    self.flag(
                        "recovered",
                        f"{e.receiver} resumed across an epoch change and got "
                        + ("recovered: true" if e.recovered else "more: true"),
                        i,
                    )

    def _paging(self, i: int, e: Paged, last_loss: int) -> None:
        """A resume welcomed with ``more`` pages back to ``since + 1`` in its epoch."""
        w = self.welcome_of.get((e.receiver, e.conn))
        if w is None:
            return
        welcome = self.h.events[w]
        assert isinstance(welcome, Welcome)
        if e.epoch != welcome.epoch:
            if self.h.durable or last_loss < self.opened[w]:
                why = "a durable broker" if self.h.durable else "no fault that loses history"
                self.flag(
                    "epoch-change",
                    f"{e.receiver}'s paging of {welcome.room} got epoch {e.epoch}, not its "
                    f"welcome's {welcome.epoch}, with {why} between",
                    w,
                    i,
                )
        elif e.reached != e.since + 1:
            self.flag(
                "recovered",
                f"{e.receiver} resumed {welcome.room} since {e.since} with more: true, but "
                f"its paging stopped at id {e.reached} (more: {str(e.more).lower()}): "
                "messages the welcome said are kept were not",
                w,
                i,
            )

"""What one ``chatctl bench`` run does: its options (:class:`BenchOptions`), the error of a
run that failed (:class:`BenchError`), and the connections it opens (:func:`plan`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from chatctl.bench.worker import ClientSpec
from chatctl.errors import ChatctlError

#: Idle connections per idle room.
IDLE_ROOM_SIZE = 50


class BenchError(ChatctlError):
    """The bench itself failed (a worker crashed, nothing connected)."""


@dataclass(frozen=True)
class BenchOptions:
    #: base URLs of one or more nodes; clients are spread round-robin, so rooms span them all
    servers: tuple[str, ...] = ("ws://127.0.0.1:8000",)
    rooms: int = 1
    clients: int = 10  # per room
    senders: int = 1  # per room, among the clients
    #: senders connect write-only (``?receive=0&presence=0``, as ``chatctl send``): the room's
    #: traffic is not sent to them, and they are not counted as receivers
    write_only: bool = False
    rate: float = 10.0  # messages/s per sender
    duration: float = 10.0
    size: int = 64  # characters of message text
    idle: int = 0
    procs: int = 1
    drain: float = 2.0
    server_pid: int | None = None
    token: str | None = None
    secret: bytes | None = None
    saturate: bool = False
    p99_bound: float = 0.100  # seconds
    step_factor: float = 1.25
    max_steps: int = 12
    connect_timeout: float = 30.0
    warmup: float = 0.0  # seconds of unrecorded sending before the first step
    #: with ``saturate``: after the knee, one more step at this fraction of the knee's rate
    at_knee: float | None = None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("secret")
        d["token"] = "<given>" if self.token else None
        return d


def plan(opts: BenchOptions, run_id: str) -> list[ClientSpec]:
    """Every connection: ``rooms`` x ``clients`` (the first ``senders`` of each room send,
    write-only with ``write_only``),
    then ``idle`` connections, each its own user, ``IDLE_ROOM_SIZE`` to a room (servers cap
    connections per user, and a presence change goes to the whole room). With several servers the
    k-th client of every room goes to server k mod n: senders on the first, rooms on all."""
    bases = [s.rstrip("/") for s in opts.servers]
    specs: list[ClientSpec] = []
    for r in range(opts.rooms):
        for k in range(opts.clients):
            i = len(specs)
            url = f"{bases[k % len(bases)]}/ws/bench-{run_id}-{r}"
            sender = k < opts.senders
            write_only = sender and opts.write_only
            if write_only:
                url += "?receive=0&presence=0"
            specs.append(
                ClientSpec(i, r, url, f"bench-{run_id}-{i}", sender=sender, write_only=write_only)
            )
    for k in range(opts.idle):
        room = f"bench-{run_id}-idle-{k // IDLE_ROOM_SIZE}"
        url = f"{bases[k % len(bases)]}/ws/{room}"
        specs.append(ClientSpec(len(specs), -1, url, f"bench-{run_id}-idle-{k}"))
    return specs

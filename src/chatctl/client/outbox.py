"""The outbox: messages sent with a client id and not acknowledged yet, in send order."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from chatctl.client.sanitize import one_line
from chatctl.protocol import RETRYABLE_CODES, Ack, ErrorFrame, MessageKind, SendMessage


@dataclass
class Pending:
    client_id: str
    text: str
    kind: MessageKind = "text"
    #: where the message came from (a stdin line number), for error messages
    origin: int = 0
    frame: str = field(default="", repr=False)
    #: monotonic time before which it must not be re-sent (after broker_unavailable)
    not_before: float = 0.0
    #: its place in the outbox (1, 2, 3…): messages are sent, and re-sent, in this order
    seq: int = 0
    #: times it was sent on this connection and not answered yet: an error answers its
    #: latest send only when none is left (the answer to an earlier send may come late)
    outstanding: int = 0


class Outbox:
    """Messages sent with a client id and not acked yet, in send order.

    Client ids are ``<random prefix>-<sequence>``: unique across runs, so the server's
    de-duplication recognises a re-sent message and never a new one. After a reconnect,
    :meth:`unacked` gives what to send again, with the same ids.
    """

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(6)
        self.seq = 0
        self.pending: dict[str, Pending] = {}
        self.acked = 0
        self.duplicates = 0
        self.rejected: list[tuple[Pending, str]] = []

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, text: str, kind: MessageKind = "text", origin: int = 0) -> Pending:
        self.seq += 1
        cid = f"{self.prefix}-{self.seq}"
        p = Pending(cid, text, kind, origin, seq=self.seq)
        p.frame = SendMessage(text, client_id=cid, kind=kind).frame()
        self.pending[cid] = p
        return p

    def unacked(self) -> Iterator[Pending]:
        return iter(list(self.pending.values()))

    def on_ack(self, ack: Ack) -> Pending | None:
        p = self.pending.pop(ack.client_id, None)
        if p is not None:
            self.acked += 1
            self.duplicates += ack.duplicate
        return p

    def on_error(self, error: ErrorFrame) -> tuple[Pending | None, float | None]:
        """Handle an error frame: ``(pending, retry_after)`` when it should be re-sent later,
        ``(pending, None)`` when the server refused it for good (kept in ``rejected``)."""
        p = self.pending.get(error.client_id) if error.client_id is not None else None
        if p is None:
            return None, None
        if error.code in RETRYABLE_CODES:
            delay = 1.0 if error.retry_after is None else error.retry_after
            p.not_before = time.monotonic() + delay
            return p, delay
        del self.pending[p.client_id]
        self.rejected.append((p, one_line(error.reason or error.code)))
        return p, None

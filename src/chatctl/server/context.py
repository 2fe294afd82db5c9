"""What of its server a session may use: :class:`SessionContext`, one per server.

A module of its own, below :mod:`chatctl.server.session` and :mod:`chatctl.server.publish`,
so that both can name it without importing each other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatctl.broker.base import Broker, PipelinedBroker
from chatctl.server.direct import Inboxes
from chatctl.server.expiry import ExpiryQueue
from chatctl.server.hub import Hub
from chatctl.server.limits import Limits
from chatctl.server.metrics import Metrics
from chatctl.tokens.claims import Claims

if TYPE_CHECKING:
    from chatctl.server.revocation import Revoker
    from chatctl.server.settings import ServerSettings


@dataclass(frozen=True)
class SessionContext:
    """What of its server a session may use."""

    settings: ServerSettings
    broker: Broker
    hub: Hub
    limits: Limits
    metrics: Metrics
    server_name: str
    #: verifies a token with the server's current key (raises TokenError), as the handshake
    verify_token: Callable[[str], Claims]
    #: where every connection's token expiry waits (closed with 4001 unless refreshed)
    expiries: ExpiryQueue
    #: revoked tokens (POST /api/revoke adds to them)
    revocations: Revoker
    #: the connections told of their users' direct messages (None with ``--no-dms``)
    inboxes: Inboxes | None = None

    @functools.cached_property
    def pipelined(self) -> PipelinedBroker | None:
        """The broker, if its publishes may overlap (an isinstance check of a protocol
        costs ~15 µs: made once, not per connection)."""
        return self.broker if isinstance(self.broker, PipelinedBroker) else None

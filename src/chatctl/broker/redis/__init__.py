"""The Redis brokers: one Redis (:mod:`.broker`) or a Redis Cluster (:mod:`.cluster`).

``broker`` holds the messages half, ``presence`` who is in a room, ``moderated`` and
``revoked`` moderation and revoked tokens, ``outage`` how an outage is noted and what a call
then raises, ``live`` and ``link`` the pub/sub feed, ``keys`` the key layout and Lua scripts
(docs/redis.md), ``errors`` what counts as an outage. Importing this package imports
redis-py: the registry imports it only when a ``redis://`` or ``redis+cluster://`` URL is
used.
"""

from __future__ import annotations

from chatctl.broker.redis.broker import RedisBroker
from chatctl.broker.redis.cluster import RedisClusterBroker

__all__ = ["RedisBroker", "RedisClusterBroker"]

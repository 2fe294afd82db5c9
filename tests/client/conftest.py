"""Fixtures of the client tests."""

from __future__ import annotations

from support.client_helpers import redis_url as redis_url

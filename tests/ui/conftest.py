"""Fixtures of the ui tests."""

from __future__ import annotations

from support.client_helpers import redis_url as redis_url

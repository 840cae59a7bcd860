"""A fakeredis server standing in for Redis in fast unit tests, and a clock they move.

fakeredis runs the project's Lua scripts in a real Lua interpreter (lupa), behind the
same RESP parser redis-py uses, so the project's own clients (its asyncio pool and
:class:`~animochat.redis_client.CommandBatcher`, the scripts' NOSCRIPT-then-load path)
work unchanged on it. Only what a real server adds is left out: other processes,
pub/sub across them, and faults, which stay with the tests on real Redis.
"""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from fakeredis.aioredis import FakeAsyncRedisConnection

from animochat import login_throttle, redis_client

# The Redis the rest of the suite runs on (Debian's 7.0), so a script needing a newer
# command fails here too.
REDIS_VERSION = (7, 0)


class Clock:
    """The wall clock as Redis sees it (``TIME``, key expiry), still until moved.

    Whole microseconds, the resolution of ``TIME``: the matcher's enqueue times and
    ``occasionally()`` depend on them. The start is not a multiple of 16 µs, so the
    matcher's occasional pruning stays off unless a test lands on one.
    """

    def __init__(self, start_us: int = 1_800_000_000_000_001) -> None:
        self.now_us = start_us

    def __call__(self) -> float:
        return self.now_us / 1_000_000

    def advance(self, seconds: float) -> None:
        self.now_us += round(seconds * 1_000_000)


def use_fake_redis(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    """Point the project's Redis clients at a new, empty fakeredis server until the
    test ends; returns a synchronous client of that server (replies as ``str``).

    The asyncio clients :func:`~animochat.redis_client.get_redis` makes from now on
    (one per event loop) and django-redis' connection (admin log-in throttling) use
    it; code handed a client (discovery, the sweep command) is handed this one.
    """
    server = fakeredis.FakeServer(version=REDIS_VERSION)

    def fake_pool(**options: Any) -> aioredis.ConnectionPool:
        # fakeredis reads replies without redis-py's note of when the next health
        # check is due, so a PING would precede every command, and the one inside
        # the connection's pipelined handshake reads another command's reply. An
        # in-process server has no dropped idle connection to find anyway.
        options.pop("health_check_interval", None)
        return aioredis.BlockingConnectionPool(
            connection_class=FakeAsyncRedisConnection,
            server=server,
            version=REDIS_VERSION,
            server_type="redis",
            client_class=aioredis.Redis,
            **options,
        )

    monkeypatch.setattr(redis_client, "async_connection_pool", fake_pool)
    # django-redis replies in bytes: so does its stand-in.
    undecoded = fakeredis.FakeRedis(server=server, version=REDIS_VERSION)
    monkeypatch.setattr(login_throttle, "get_redis_connection", lambda alias: undecoded)
    return fakeredis.FakeRedis(server=server, version=REDIS_VERSION, decode_responses=True)


def stop_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replace ``time.time`` (read by fakeredis for ``TIME`` and expiry, and by the
    project for rate-limit windows) with a :class:`Clock` until the test ends."""
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    return clock

"""Unit tests of the Redis store wrappers and Lua scripts, on fakeredis.

Each test gets an empty fakeredis server of its own in place of the suite's real Redis
(see tests/support/fake_redis.py) and a clock that moves only when the test moves it,
so what depends on time (leases, cooldowns, windows, expiry) is decided by the test,
never by how busy the machine is. Concurrency, pub/sub and faults are tested on real
Redis, in the tests beside this package.
"""

from __future__ import annotations

import pytest

from animochat.redis_client import close_redis
from matchmaking import selectors
from tests.support.fake_redis import Clock, stop_clock, use_fake_redis


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return stop_clock(monkeypatch)


@pytest.fixture(autouse=True)
async def clean_redis(monkeypatch, clock):
    """Replaces the suite's fixture of this name: no real Redis is flushed or used.
    Yields a synchronous client of the test's fakeredis server."""
    client = use_fake_redis(monkeypatch)
    selectors.forget_popularity()
    yield client
    await close_redis()  # the test loop's client, if the test made one

"""Fixtures: a flushed real Redis per test, live Daphne servers, an SSE client."""

from __future__ import annotations

import signal

import pytest
import redis
from django.conf import settings

from animochat.embedded_redis import EmbeddedRedis
from animochat.redis_client import close_redis, get_redis
from matchmaking import selectors
from tests.support.servers import DaphneProcess


@pytest.fixture(autouse=True)
def clean_redis():
    """Each test starts from an empty Redis database (its own, see tests/settings.py)
    and an empty script cache, as on a Redis just started: no test may pass only
    because an earlier one (or an earlier run) left its scripts loaded."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.script_flush()
    selectors.forget_popularity()  # this process's cache of what was just flushed
    yield client
    client.close()


@pytest.fixture
async def aredis():
    """The project's asyncio client for this test's event loop."""
    yield get_redis()
    await close_redis()


@pytest.fixture(scope="session")
def daphne():
    """One live Daphne process shared by the tests that need a server."""
    server = DaphneProcess().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def daphne_pair(daphne):
    """Two Daphne processes on one Redis (the first is the shared ``daphne``)."""
    second = DaphneProcess().start()
    yield daphne, second
    second.stop()


@pytest.fixture
def daphne_factory():
    """Start Daphne processes with custom environment; all are stopped afterwards."""
    started: list[DaphneProcess] = []

    def start(**env: str) -> DaphneProcess:
        server = DaphneProcess(env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def private_redis():
    """A redis-server of this test's own, which the test may stop and restart."""
    servers = [EmbeddedRedis().start()]

    def restart() -> EmbeddedRedis:
        servers[-1].stop()
        servers.append(EmbeddedRedis(port=servers[0].port).start())
        return servers[-1]

    servers[0].restart = restart
    yield servers[0]
    for server in servers:
        server.process.send_signal(signal.SIGCONT)  # in case a test left it frozen
        server.stop()

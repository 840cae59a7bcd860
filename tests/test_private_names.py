"""The private names the project relies on still exist in the installed libraries.

animochat/channel_layer.py reads its subscriber connection's socket past redis-py's
parser (the connection's ``_reader``); animochat/twisted_limits.py replaces methods of
Twisted's ``HTTPChannel``. Neither library promises these names, which is why
pyproject.toml pins Twisted to the tested minor series (and redis-py to one major); this
test fails the moment an upgrade drops one, instead of the service failing at run time.
The names are checked on the libraries' own classes and instances.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from django.conf import settings
from twisted.web import http

CONNECTION_NAMES = ("_reader",)
TWISTED_NAMES = ("_respondToBadRequestAndDisconnect", "lineLengthExceeded", "_receivedHeaderSize")


def missing(thing: object, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not hasattr(thing, name)]


async def test_redis_connection_private_names():
    pool = aioredis.ConnectionPool.from_url(settings.REDIS_URL)
    connection = pool.make_connection()
    await connection.connect()
    try:
        assert missing(connection, CONNECTION_NAMES) == []
        assert isinstance(connection._reader, asyncio.StreamReader)
    finally:
        await connection.disconnect()
        await pool.disconnect()


def test_twisted_private_names():
    assert missing(http.HTTPChannel, TWISTED_NAMES) == []
    assert missing(http.HTTPChannel(), TWISTED_NAMES) == []


def test_a_vanished_name_is_reported():
    assert missing(http.HTTPChannel, (*TWISTED_NAMES, "_no_such_name")) == ["_no_such_name"]

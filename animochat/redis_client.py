"""Connections to Redis and the Lua-script runner shared by every app.

Request paths use redis-py's asyncio client (hiredis parses replies). One client is
kept per event loop: Daphne runs a single loop, while tests and management commands
may create several, and a connection pool must never be shared across loops.
Synchronous code (management commands, the discovery heartbeat) uses a plain
redis-py client; django-redis serves Django's cache (admin sessions).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.maint_notifications import MaintNotificationsConfig

LUA_LIBRARY = Path(__file__).resolve().parent / "lua" / "lib.lua"

# Short timeouts: with Redis down, callers must answer 503 within seconds, not hang
# (a refused connection fails at once; an unanswered one after 2 x 2 s with the retry).
CONNECTION_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_connect_timeout": 2.0,
    "socket_timeout": 2.0,
    "health_check_interval": 30,
    # redis-py 8 turns maintenance notifications (a Redis Enterprise feature) on by
    # default, and that skips the pool's check for connections the server closed: after
    # a Redis restart every idle pooled connection failed one command
    # (redis/redis-py#4252). Off, the pool reconnects them before use.
    "maint_notifications_config": MaintNotificationsConfig(enabled=False),
}

_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def get_redis() -> aioredis.Redis:
    """The asyncio Redis client for the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # The retry belongs to the pool: redis-py ignores one given to Redis() beside a
        # pool. Only connection failures are retried, never timeouts, since a timed-out
        # script (the matcher) may have run and must not run twice.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL,
            max_connections=64,
            timeout=2.0,
            retry=Retry(
                ExponentialBackoff(cap=0.2, base=0.02),
                retries=2,
                supported_errors=(RedisConnectionError,),
            ),
            **CONNECTION_OPTIONS,
        )
        client = aioredis.Redis(connection_pool=pool)
        _async_clients[loop] = client
    return client


async def close_redis() -> None:
    """Close the running loop's client (end of a command or a test)."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        # A pool handed to Redis() is not closed with it unless asked.
        await client.aclose(close_connection_pool=True)


def get_sync_redis() -> redis.Redis:
    """A synchronous client decoding replies to ``str``, for commands and threads."""
    return redis.Redis.from_url(settings.REDIS_URL, **CONNECTION_OPTIONS)


class LuaScript:
    """A Lua script file, prefixed with the shared library, called by SHA.

    The script is sent to Redis only when Redis answers NOSCRIPT: once per server
    lifetime, and again by itself after a Redis restart.
    """

    def __init__(self, path: Path) -> None:
        self.name = path.stem
        self.source = LUA_LIBRARY.read_text() + "\n" + path.read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def __call__(self, client: aioredis.Redis, *args: Any) -> Any:
        try:
            return await client.evalsha(self.sha, 0, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, 0, *args)

    def call_sync(self, client: redis.Redis, *args: Any) -> Any:
        try:
            return client.evalsha(self.sha, 0, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, 0, *args)

"""Connections to Redis and the Lua-script runner shared by every app.

Request paths use redis-py's asyncio client (hiredis parses replies). One client is
kept per event loop: Daphne runs a single loop, while tests and management commands
may create several, and a connection pool must never be shared across loops. Lua
scripts and channel-layer publishes go through a :class:`CommandBatcher` on that
client's pool. Synchronous code (management commands, the discovery heartbeat) uses a
plain redis-py client; django-redis serves Django's cache (admin sessions).

With ``REDIS_SENTINELS`` set, every one of them (and the Channels layer, see
``animochat.settings``) asks Redis Sentinel for the primary of ``REDIS_MASTER_NAME``
whenever it opens a connection, so after a failover new connections go to the new
primary without a restart; ``REDIS_URL`` then gives only the database, the credentials
and TLS (``rediss://``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.sentinel
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from animochat.logging import log_event

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

# Sentinels are asked for the primary at each new connection: a dead one must not hold
# up the next one for long.
SENTINEL_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


def sentinel_connection_options(redis_url: str) -> dict[str, Any]:
    """What ``REDIS_URL`` still says when Sentinel finds the primary: database,
    credentials and TLS (its host and port are not used)."""
    parsed = redis.connection.parse_url(redis_url)
    options = {key: parsed[key] for key in ("db", "username", "password") if key in parsed}
    if redis_url.startswith("rediss://"):
        options["ssl"] = True  # SentinelConnectionPool then makes TLS connections
    return options


class SentinelBlockingConnectionPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Sentinel's pool, waiting for a free connection as BlockingConnectionPool does
    (redis-py's SentinelConnectionPool would fail at once past ``max_connections``)."""


def async_connection_pool(**options: Any) -> aioredis.ConnectionPool:
    """A blocking pool on the Redis primary: ``REDIS_URL``'s, or Sentinel's."""
    if settings.REDIS_SENTINELS:
        return SentinelBlockingConnectionPool(
            settings.REDIS_MASTER_NAME,
            Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=SENTINEL_OPTIONS),
            **sentinel_connection_options(settings.REDIS_URL),
            **options,
        )
    return aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, **options)


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
_command_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CommandBatcher] = (
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
        pool = async_connection_pool(
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


def command_batcher() -> CommandBatcher:
    """The command batcher for the running event loop (on :func:`get_redis`'s pool)."""
    loop = asyncio.get_running_loop()
    batcher = _command_batchers.get(loop)
    if batcher is None:
        batcher = CommandBatcher(get_redis().connection_pool)
        _command_batchers[loop] = batcher
    return batcher


_background: set[asyncio.Task] = set()


def in_background(work: Coroutine, logger: logging.Logger, failure_event: str) -> None:
    """Run Redis ``work`` nobody waits for (bookkeeping after a reply); a failure is
    logged as ``failure_event``. :func:`close_redis` lets it finish first."""
    task = asyncio.ensure_future(work)
    _background.add(task)

    def done(task: asyncio.Task) -> None:
        _background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log_event(logger, failure_event, logging.WARNING, error=repr(task.exception()))

    task.add_done_callback(done)


async def background_done() -> None:
    """Wait for the work :func:`in_background` started on the running loop."""
    loop = asyncio.get_running_loop()
    while pending := [task for task in _background if task.get_loop() is loop]:
        await asyncio.wait(pending)


async def close_redis() -> None:
    """Close the running loop's client (end of a command or a test)."""
    await background_done()
    loop = asyncio.get_running_loop()
    batcher = _command_batchers.pop(loop, None)
    if batcher is not None:
        await batcher.drain()
    client = _async_clients.pop(loop, None)
    if client is not None:
        # A pool handed to Redis() is not closed with it unless asked.
        await client.aclose(close_connection_pool=True)


def get_sync_redis() -> redis.Redis:
    """A synchronous client decoding replies to ``str``, for commands and threads."""
    if settings.REDIS_SENTINELS:
        sentinel = redis.sentinel.Sentinel(
            settings.REDIS_SENTINELS, sentinel_kwargs=SENTINEL_OPTIONS
        )
        return sentinel.master_for(
            settings.REDIS_MASTER_NAME,
            **sentinel_connection_options(settings.REDIS_URL),
            **CONNECTION_OPTIONS,
        )
    return redis.Redis.from_url(settings.REDIS_URL, **CONNECTION_OPTIONS)


class CommandBatcher:
    """Sends the script calls (and publishes) made in one event-loop turn together.

    Under load many streams call the matcher in the same turn. redis-py spends more
    CPU on each command (pool checkout with a connection health check, timeouts, one
    write and one read) than Redis spends running the matcher, so this collects the
    turn's calls into batches of up to ``max_batch``, each written at once on one
    pooled connection: the client's cost is paid per batch, and Redis rather than the
    client is the limit (``bench/engine.py`` against ``--unbatched``; the figures are
    in bench/README.md). Batches go on separate connections, so Redis works on one while the client
    reads another. Each script still runs atomically; calls of one turn are concurrent,
    as on separate connections, and may run in any order.

    A batch is never sent twice once any of it may have reached Redis (a script may
    have run): only a failure to write to a pooled connection, such as one the server
    closed, is retried, once, on a new connection. Any other failure fails every call
    of the batch with the error, as a single call would.
    """

    def __init__(self, pool: aioredis.ConnectionPool, max_batch: int = 16) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.pending: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self.flush_scheduled = False
        self.in_flight: set[asyncio.Task] = set()

    def evalsha(self, sha: str, *args: Any) -> asyncio.Future:
        """``EVALSHA sha 0 *args``; the reply, or a ``RedisError``, arrives in the future."""
        return self.execute("EVALSHA", sha, 0, *args)

    def execute(self, *command: Any) -> asyncio.Future:
        """Any command whose reply needs no parsing (a script, ``PUBLISH``)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((command, future))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        self.flush_scheduled = False
        pending, self.pending = self.pending, []
        for start in range(0, len(pending), self.max_batch):
            task = asyncio.ensure_future(self.send(pending[start : start + self.max_batch]))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def drain(self) -> None:
        """Wait for the calls already made (before closing the pool)."""
        while self.pending or self.in_flight:
            if self.pending:
                self.flush()
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    async def send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        """Write the batch, then hand each reply to its caller as soon as it is read."""
        try:
            connection = await self.pool.get_connection()
        except Exception as error:
            fail(batch, error)
            return
        try:
            packed = connection.pack_commands([command for command, _ in batch])
            try:
                await connection.send_packed_command(packed, check_health=False)
            except RedisConnectionError:  # e.g. closed by the server: nothing was sent
                await connection.disconnect()
                await connection.send_packed_command(packed, check_health=False)
            # One deadline for the batch: a timer per reply costs more than a reply.
            async with asyncio.timeout(CONNECTION_OPTIONS["socket_timeout"]):
                for _, future in batch:
                    try:
                        reply = await connection.read_response(timeout=math.inf)
                    except ResponseError as error:  # this script's own, e.g. NOSCRIPT
                        reply = error
                    if future.done():  # its caller was cancelled
                        continue
                    if isinstance(reply, Exception):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except asyncio.CancelledError:  # the loop is closing
            await connection.disconnect()
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:
            # Replies may be left unread on it: it must not serve anyone else.
            await connection.disconnect()
            if isinstance(error, TimeoutError):
                error = RedisTimeoutError("Timeout reading from Redis")
            fail(batch, error)
        finally:
            await self.pool.release(connection)


def fail(calls: list[tuple[tuple[Any, ...], asyncio.Future]], error: BaseException) -> None:
    for _, future in calls:
        if not future.done():
            future.set_exception(error)


class LuaScript:
    """A Lua script file, prefixed with the ``libraries`` it needs, called by SHA.

    A library is a Lua file of ``local function``s; each app keeps its own beside its
    scripts and names the ones a script needs (matchmaking's scripts use sessions_app's
    as well as their own), so this module knows no app's files.

    The script is sent to Redis only when Redis answers NOSCRIPT: once per server
    lifetime, and again by itself after a Redis restart or ``SCRIPT FLUSH``. Then one
    ``SCRIPT LOAD`` per event loop (per process, under Daphne) serves every caller: the
    calls that met NOSCRIPT wait for it and are retried together, in one batch, so a
    restart under load costs one load per script, not one per caller.
    """

    def __init__(self, path: Path, libraries: tuple[Path, ...] = ()) -> None:
        self.name = path.stem
        self.source = "".join(library.read_text() + "\n" for library in libraries)
        self.source += path.read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()
        self._loads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ScriptLoads] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, *args: Any) -> Any:
        """Run the script on the running loop's connections (see :class:`CommandBatcher`)."""
        loads = self._loads.get(asyncio.get_running_loop())
        loaded = loads.completed if loads else 0
        try:
            return await command_batcher().evalsha(self.sha, *args)
        except NoScriptError:  # the script did not run: calling it again is safe
            await self.load(loaded)
            return await command_batcher().evalsha(self.sha, *args)

    async def load(self, loaded: int = 0) -> None:
        """Send the script, unless a load made since the caller's call (which saw
        ``loaded`` loads completed) already did; concurrent callers share one load."""
        loop = asyncio.get_running_loop()
        loads = self._loads.setdefault(loop, _ScriptLoads())
        if loads.completed != loaded:
            return  # NOSCRIPT answered a call sent before the latest load finished
        if loads.pending is None:
            loads.pending = asyncio.ensure_future(self._send_load(loads))
        # Shielded: a cancelled caller must not cancel the load the others wait for.
        await asyncio.shield(loads.pending)

    async def _send_load(self, loads: _ScriptLoads) -> None:
        try:
            await get_redis().script_load(self.source)
            loads.completed += 1
        finally:
            loads.pending = None

    def call_sync(self, client: redis.Redis, *args: Any) -> Any:
        try:
            return client.evalsha(self.sha, 0, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, 0, *args)


class _ScriptLoads:
    """One script's loads on one event loop: how many completed, and the one under way."""

    __slots__ = ("completed", "pending")

    def __init__(self) -> None:
        self.completed = 0
        self.pending: asyncio.Future | None = None

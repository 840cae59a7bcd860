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

With ``REDIS_CLUSTER_NODES`` set, the clients are redis-py's cluster clients
(``redis.asyncio.cluster.RedisCluster`` for requests, ``redis.cluster.RedisCluster``
for synchronous code), and the batcher sends each command to the primary serving the
slot of its first key (a script's first ``KEYS`` entry): one batch per primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import weakref
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster
import redis.cluster
import redis.sentinel
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
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


def cluster_mode() -> bool:
    """Whether the service runs on Redis Cluster (``REDIS_CLUSTER_NODES``)."""
    return bool(settings.REDIS_CLUSTER_NODES)


def cluster_connection_options(redis_url: str) -> dict[str, Any]:
    """What ``REDIS_URL`` still says on a cluster: credentials and TLS (a cluster has
    one database, 0)."""
    options = sentinel_connection_options(redis_url)
    options.pop("db", None)
    return options


# Connections a process may open to each cluster primary; the batcher's batches and the
# cluster client's own commands share them.
CLUSTER_MAX_CONNECTIONS = 512
# Only connection failures are retried (see get_redis): a timed-out script may have run.
CLUSTER_RETRY_ATTEMPTS = 2


def async_cluster_client(**options: Any) -> redis.asyncio.cluster.RedisCluster:
    return redis.asyncio.cluster.RedisCluster(
        startup_nodes=[
            redis.asyncio.cluster.ClusterNode(host, port)
            for host, port in settings.REDIS_CLUSTER_NODES
        ],
        max_connections=CLUSTER_MAX_CONNECTIONS,
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.02),
            retries=CLUSTER_RETRY_ATTEMPTS,
            supported_errors=(RedisConnectionError,),
        ),
        **cluster_connection_options(settings.REDIS_URL),
        **options,
    )


async def cluster_node_connection(key: str, refresh: bool, **options: Any) -> aioredis.Connection:
    """A new connection (not yet connected) to the primary serving ``key``'s slot, for a
    subscriber; ``refresh`` asks the cluster for its slots first (after a failure)."""
    client = get_redis()
    if refresh:
        await client.nodes_manager.initialize()
    else:
        await client.initialize()
    node = client.get_node_from_key(key)
    options = {**cluster_connection_options(settings.REDIS_URL), **options}
    connection_class = aioredis.SSLConnection if options.pop("ssl", False) else aioredis.Connection
    return connection_class(host=node.host, port=node.port, **options)


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
    """The asyncio Redis client for the running event loop (a cluster client with
    ``REDIS_CLUSTER_NODES``: the same commands, each routed by its keys' slot)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None and cluster_mode():
        client = async_cluster_client(**CONNECTION_OPTIONS)
        _async_clients[loop] = client
    elif client is None:
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
        client = get_redis()
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            batcher = ClusterCommandBatcher(client)
        else:
            batcher = CommandBatcher(client.connection_pool)
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
    if isinstance(client, redis.asyncio.cluster.RedisCluster):
        await client.aclose()
    elif client is not None:
        # A pool handed to Redis() is not closed with it unless asked.
        await client.aclose(close_connection_pool=True)


def get_sync_redis() -> redis.Redis:
    """A synchronous client decoding replies to ``str``, for commands and threads."""
    if cluster_mode():
        return redis.cluster.RedisCluster(
            startup_nodes=[
                redis.cluster.ClusterNode(host, port) for host, port in settings.REDIS_CLUSTER_NODES
            ],
            **cluster_connection_options(settings.REDIS_URL),
            **CONNECTION_OPTIONS,
        )
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

    def __init__(self, pool: Any, max_batch: int = 16) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.pending: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self.flush_scheduled = False
        self.in_flight: set[asyncio.Task] = set()

    def evalsha(self, sha: str, keys: tuple[str, ...], *args: Any) -> asyncio.Future:
        """``EVALSHA sha len(keys) *keys *args``; the reply, or a ``RedisError``,
        arrives in the future."""
        return self.execute("EVALSHA", sha, len(keys), *keys, *args)

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
        self.start(self.dispatch(pending))

    def start(self, work: Coroutine) -> None:
        task = asyncio.ensure_future(work)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def dispatch(self, pending: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        """Send ``pending`` in batches of up to ``max_batch``, all at once."""
        for start in range(0, len(pending), self.max_batch):
            self.start(self.send(pending[start : start + self.max_batch], self.pool))

    async def drain(self) -> None:
        """Wait for the calls already made (before closing the pool)."""
        while self.pending or self.in_flight:
            if self.pending:
                self.flush()
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    def redirected(self, command: tuple[Any, ...], future: asyncio.Future, reply: Any) -> bool:
        """Whether ``reply`` sends ``command`` elsewhere (a cluster's), which then answers
        ``future``; never on a single Redis."""
        return False

    def connection_failed(self) -> None:
        """A connection of a batch failed (a cluster then looks up its nodes again)."""

    async def send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future]], pool: Any) -> None:
        """Write the batch, then hand each reply to its caller as soon as it is read."""
        try:
            connection = await pool.get_connection()
        except Exception as error:
            self.connection_failed()
            fail(batch, error)
            return
        try:
            # hiredis' C packer: redis-py's own, in Python, was a quarter of a matcher
            # call's client CPU once a call passed every key in KEYS (bench/README.md).
            packed = b"".join([hiredis.pack_command(command) for command, _ in batch])
            try:
                await connection.send_packed_command(packed, check_health=False)
            except RedisConnectionError:  # e.g. closed by the server: nothing was sent
                await connection.disconnect()
                await connection.send_packed_command(packed, check_health=False)
            # One deadline for the batch: a timer per reply costs more than a reply.
            async with asyncio.timeout(CONNECTION_OPTIONS["socket_timeout"]):
                for command, future in batch:
                    try:
                        reply = await connection.read_response(timeout=math.inf)
                    except ResponseError as error:  # this script's own, e.g. NOSCRIPT
                        reply = error
                    if future.done() or self.redirected(command, future, reply):
                        continue  # its caller was cancelled, or another node answers
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
            if isinstance(error, RedisConnectionError | OSError):
                self.connection_failed()
            if isinstance(error, TimeoutError):
                error = RedisTimeoutError("Timeout reading from Redis")
            fail(batch, error)
        finally:
            await pool.release(connection)


# A cluster's answers that mean "not here, not now": the command did not run, so it may
# be sent again, to the node the cluster names.
REDIRECTIONS = (MovedError, AskError, TryAgainError, ClusterDownError)


class ClusterCommandBatcher(CommandBatcher):
    """:class:`CommandBatcher` on Redis Cluster: one batch per primary.

    A command goes to the primary serving the slot of its first key (``EVALSHA``: its
    first ``KEYS`` entry; ``SPUBLISH``: its channel). A command the cluster redirects
    (a slot moving, a failover) did not run: it is sent again through the cluster
    client, which follows the redirection and updates its slot table.
    """

    def __init__(self, client: redis.asyncio.cluster.RedisCluster, max_batch: int = 16) -> None:
        super().__init__(None, max_batch)
        self.client = client
        self.refresh: asyncio.Task | None = None

    async def dispatch(self, pending: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        try:
            await self.client.initialize()  # the slot table, fetched once
            by_node: dict[Any, list[tuple[tuple[Any, ...], asyncio.Future]]] = {}
            for call in pending:
                by_node.setdefault(self.node_for(call[0]), []).append(call)
        except Exception as error:
            self.connection_failed()
            fail(pending, error)
            return
        for node, calls in by_node.items():
            source = _ClusterNodeConnections(node)
            for start in range(0, len(calls), self.max_batch):
                self.start(self.send(calls[start : start + self.max_batch], source))

    def node_for(self, command: tuple[Any, ...]) -> Any:
        if command[0] in ("EVALSHA", "EVAL"):
            key = command[3] if int(command[2]) > 0 else None
        elif command[0] == "PUBLISH":  # reaches every node's subscribers
            key = None
        else:
            key = command[1]
        if key is None:
            return self.client.get_default_node()
        return self.client.get_node_from_key(key)

    def redirected(self, command: tuple[Any, ...], future: asyncio.Future, reply: Any) -> bool:
        if not isinstance(reply, REDIRECTIONS):
            return False

        async def again() -> None:
            try:
                result = await self.client.execute_command(*command)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

        self.start(again())
        return True

    def connection_failed(self) -> None:
        # A primary may have failed over: look the slots up again (once at a time).
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.ensure_future(self._refresh())

    async def _refresh(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.nodes_manager.initialize()


class _ClusterNodeConnections:
    """A cluster primary's connections, as the batcher takes them from a pool."""

    def __init__(self, node: Any) -> None:
        self.node = node

    async def get_connection(self) -> Any:
        return self.node.acquire_connection()  # connects on its first write

    async def release(self, connection: Any) -> None:
        self.node.release(connection)


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

    async def __call__(self, *args: Any, keys: tuple[str, ...] = ()) -> Any:
        """Run the script on the running loop's connections (see :class:`CommandBatcher`);
        on a cluster, on the primary of ``keys[0]``'s slot."""
        loads = self._loads.get(asyncio.get_running_loop())
        loaded = loads.completed if loads else 0
        try:
            return await command_batcher().evalsha(self.sha, keys, *args)
        except NoScriptError:  # the script did not run: calling it again is safe
            await self.load(loaded)
            return await command_batcher().evalsha(self.sha, keys, *args)

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
            await get_redis().script_load(self.source)  # on a cluster, to every primary
            loads.completed += 1
        finally:
            loads.pending = None

    def call_sync(self, client: redis.Redis, *args: Any, keys: tuple[str, ...] = ()) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


class _ScriptLoads:
    """One script's loads on one event loop: how many completed, and the one under way."""

    __slots__ = ("completed", "pending")

    def __init__(self) -> None:
        self.completed = 0
        self.pending: asyncio.Future | None = None

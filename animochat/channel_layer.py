"""The Channels layer: channels_redis' pub/sub layer, made quiet, outage-aware and cheaper.

``channels_redis.pubsub.RedisPubSubChannelLayer`` already re-subscribes by itself when
Redis comes back (redis-py replays the subscriptions on reconnect), but while Redis is
down it logs a full traceback every second, its streams never learn that messages can
no longer reach them, and subscriptions it failed to drop during the outage are
subscribed again (and kept forever) on reconnect. This subclass:

* logs one ``pubsub_down`` event when the connection drops and one ``pubsub_restored``
  when it is back, reconnecting every half second in between, even when nothing is
  subscribed any more (so ``/status`` reports the subscriber truly);
* puts a :data:`CONNECTION_LOST` message in every channel of the process when the
  connection drops, so a waiting stream checks its place at once (its keepalive)
  instead of up to ``KEEPALIVE_SECONDS`` later;
* forgets channels dropped while Redis was unreachable instead of leaking them, and
  can release a channel that was never received on (:meth:`release_channel`);
* connects with the project's short timeouts, so a hung Redis fails a publish in
  seconds rather than never;
* sends the (un)subscriptions of one event-loop turn as one command, and publishes
  through the project's command batches instead of behind the shard's lock (what that
  gains over the class it extends: ``bench.stream --layer upstream``, bench/README.md).

It serves one Redis, the project's (``REDIS_URL``, or the primary Redis Sentinel names):
publishes go through :func:`animochat.redis_client.command_batcher`, and the subscriber
connection is made by channels_redis from the same settings (its Sentinel host form
asks Sentinel for the primary at every reconnect).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from channels_redis import pubsub
from channels_redis.utils import _wrap_close
from redis.exceptions import RedisError

from animochat.logging import log_event
from animochat.redis_client import CONNECTION_OPTIONS, command_batcher

logger = logging.getLogger("animochat.channel_layer")

# Put in every local channel when the pub/sub connection drops: messages sent to this
# process from then until the reconnect are lost.
CONNECTION_LOST = "layer.connection_lost"
RECONNECT_INTERVAL = 0.5
SUBSCRIBE, UNSUBSCRIBE = "subscribe", "unsubscribe"

# channels_redis exchanges msgpack bytes, so replies must not be decoded.
POOL_OPTIONS: dict[str, Any] = {**CONNECTION_OPTIONS, "decode_responses": False}


class RedisPubSubChannelLayer(pubsub.RedisPubSubChannelLayer):
    """Use as ``CHANNEL_LAYERS`` backend with ``hosts``: a list of Redis URLs."""

    def __init__(self, hosts: list[str | dict[str, Any]] | None = None, **kwargs: Any) -> None:
        hosts = [
            {**POOL_OPTIONS, **host}
            if isinstance(host, dict)
            else {**POOL_OPTIONS, "address": host}
            for host in hosts or ["redis://localhost:6379"]
        ]
        super().__init__(hosts=hosts, **kwargs)

    def _get_layer(self) -> RedisPubSubLoopLayer:
        # As channels_redis does, one layer per event loop; only the class differs.
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = RedisPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer

    async def listener_connected(self, timeout: float) -> bool:
        """Whether this loop's subscriber connections are up, waiting up to ``timeout``.

        The listener is otherwise started by the first stream; a readiness probe must
        not wait for one, so it is started here if it is not running yet.
        """
        return await self._get_layer().listener_connected(timeout)


class RedisPubSubLoopLayer(pubsub.RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [RedisSingleShardConnection(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel: str) -> None:
        try:
            await super()._subscribe_to_channel(channel)
        except BaseException:
            self.channels.pop(channel, None)  # the caller never learns the name
            raise

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel with a local queue only, not subscribed in Redis.

        Streams are reached through their groups (the user's, the broadcast), never by
        channel name, so a subscription of its own would only cost every stream two
        more round trips (subscribe, unsubscribe) under the shard's lock.
        """
        channel = f"{self.prefix}{prefix}{uuid.uuid4().hex}"
        self.channels[channel] = asyncio.Queue()
        return channel

    async def release_channel(self, channel: str) -> None:
        """Forget a channel made by ``new_channel()``, whether or not it was received on."""
        if self.channels.pop(channel, None) is not None:
            await self._get_shard(channel).unsubscribe(channel)

    async def listener_connected(self, timeout: float) -> bool:
        for shard in self._shards:
            shard.start_listener()
        deadline = asyncio.get_running_loop().time() + timeout
        while not all(shard.listener_connected for shard in self._shards):
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def connection_lost(self) -> None:
        message = self.channel_layer.serialize({"type": CONNECTION_LOST})
        for queue in self.channels.values():
            queue.put_nowait(message)


class RedisSingleShardConnection(pubsub.RedisSingleShardConnection):
    """The shard's subscriber connection, sending (un)subscriptions in batches.

    Every stream subscribes its user's group and unsubscribes it at the end: two
    commands per stream on the one subscriber connection. The changes asked for in one
    event-loop turn are sent together, in order (one ``SUBSCRIBE`` or ``UNSUBSCRIBE``
    per run of the same kind), and each caller returns once its change is written, so
    a stream is still subscribed before it can be queued.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._changes: list[tuple[str, str, asyncio.Future]] = []
        self._sender: asyncio.Task | None = None

    def start_listener(self) -> None:
        self._ensure_redis()
        self._ensure_receiver()

    @property
    def listener_connected(self) -> bool:
        connection = self._pubsub.connection if self._pubsub is not None else None
        return connection is not None and connection.is_connected

    async def publish(self, channel: str, message: bytes) -> None:
        # Publishing needs none of the lock that orders (un)subscribes, and waiting behind
        # them is costly (bench/README.md). It goes with the matcher calls of the same
        # turn, on the project's command connections.
        await command_batcher().execute("PUBLISH", channel, message)

    async def subscribe(self, channel: str) -> None:
        if channel not in self._subscribed_to:
            # Marked at once, so that an unsubscribe asked for next is sent after it.
            self._subscribed_to.add(channel)
            await self._change(SUBSCRIBE, channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel in self._subscribed_to:
            self._subscribed_to.discard(channel)
            await self._change(UNSUBSCRIBE, channel)

    def _change(self, kind: str, channel: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._changes.append((kind, channel, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_changes())
        return future

    async def _send_changes(self) -> None:
        async with self._lock:
            while self._changes:
                kind, run = self._changes[0][0], []
                while self._changes and self._changes[0][0] == kind:
                    run.append(self._changes.pop(0))
                channels = [channel for _, channel, _ in run]
                error: BaseException | None = None
                try:
                    if kind == SUBSCRIBE:
                        await self._send_subscribe(channels)
                    else:
                        await self._send_unsubscribe(channels)
                except Exception as failure:
                    error = failure
                for _, _, future in run:
                    if not future.done():
                        if error is None:
                            future.set_result(None)
                        else:
                            future.set_exception(error)

    async def _send_subscribe(self, channels: list[str]) -> None:
        self._ensure_redis()
        self._ensure_receiver()
        try:
            await self._pubsub.subscribe(*channels)
        except BaseException:
            # Not subscribed; unless asked again since, forget them.
            asked_again = {c for kind, c, _ in self._changes if kind == SUBSCRIBE}
            self._subscribed_to.difference_update(set(channels) - asked_again)
            raise

    async def _send_unsubscribe(self, channels: list[str]) -> None:
        try:
            await self._pubsub.unsubscribe(*channels)
        except (RedisError, OSError):
            # Unreachable: drop them locally, or the reconnect would subscribe them again.
            for name in self._pubsub._normalize_keys(dict.fromkeys(channels)):
                self._pubsub.channels.pop(name, None)
                self._pubsub.pending_unsubscribe_channels.discard(name)

    async def _do_receiving(self) -> None:
        connected = True
        while True:
            try:
                pubsub = self._pubsub
                if pubsub is None:
                    message = None
                    await asyncio.sleep(0.1)
                else:
                    if pubsub.connection is None:  # its first connection failed
                        async with self._lock:
                            await pubsub.connect()
                    # Read even with nothing subscribed: a dropped connection is noticed
                    # and reopened, for the next stream and for /status.
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if not connected:
                    connected = True
                    log_event(logger, "pubsub_restored")
                self._receive_message(message)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except (RedisError, OSError) as error:  # OSError includes TimeoutError
                if connected:
                    connected = False
                    log_event(logger, "pubsub_down", logging.WARNING, error=str(error))
                    self.channel_layer.connection_lost()
                await asyncio.sleep(RECONNECT_INTERVAL)
            except Exception:
                logger.exception("pubsub_receive_failed")
                await asyncio.sleep(RECONNECT_INTERVAL)

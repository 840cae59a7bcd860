"""COMPARISON ONLY (a proposed fix, not product code): the product's layer without the lock.

channels_redis' ``RedisSingleShardConnection`` (and so ``animochat.channel_layer``)
holds one ``asyncio.Lock`` per Redis host around every PUBLISH (a full round trip on
another connection) and every SUBSCRIBE/UNSUBSCRIBE, even when the channel is already
subscribed. Under load every hand-off of that lock waits for a turn of a busy event
loop, so all streams of a process queue behind it (``bench.stream ... --app timing``
shows it). Here PUBLISH goes through the shard's pool without the lock, and
(un)subscribing updates the bookkeeping synchronously before writing the command, so
commands still reach Redis in call order (redis-py writes a command before its first
suspension once connected); only the first connection is made under the lock.
"""

from __future__ import annotations

import asyncio

from channels_redis.utils import _wrap_close
from redis.exceptions import RedisError

from animochat import channel_layer


class LockFreeShard(channel_layer.RedisSingleShardConnection):
    async def _connected(self) -> None:
        if self._pubsub is None or self._pubsub.connection is None:
            async with self._lock:
                self._ensure_redis()
                self._ensure_receiver()
                if self._pubsub.connection is None:
                    await self._pubsub.connect()

    async def publish(self, channel, message):
        self._ensure_redis()
        await self._redis.publish(channel, message)

    async def subscribe(self, channel):
        if channel in self._subscribed_to:
            return
        await self._connected()
        if channel in self._subscribed_to:
            return
        self._subscribed_to.add(channel)
        try:
            await self._pubsub.subscribe(channel)
        except BaseException:
            self._subscribed_to.discard(channel)
            raise

    async def unsubscribe(self, channel):
        if channel not in self._subscribed_to:
            return
        self._subscribed_to.discard(channel)
        await self._connected()
        try:
            await self._pubsub.unsubscribe(channel)
        except (RedisError, OSError):
            for name in self._pubsub._normalize_keys({channel: None}):
                self._pubsub.channels.pop(name, None)
                self._pubsub.pending_unsubscribe_channels.discard(name)


class LockFreeLoopLayer(channel_layer.RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shards = [LockFreeShard(shard.host, self) for shard in self._shards]


class LockFreePubSubChannelLayer(channel_layer.RedisPubSubChannelLayer):
    def _get_layer(self):
        loop = asyncio.get_running_loop()
        if loop not in self._layers:
            self._layers[loop] = LockFreeLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return self._layers[loop]

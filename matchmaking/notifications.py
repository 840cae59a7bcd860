"""Messages to open matchmaking streams, carried by the Channels layer.

Every stream joins its user's group (named from a hash of the user id, since group
names allow only a few ASCII characters) and the broadcast group of all streams.
With the Redis pub/sub layer a group is a Redis channel, so a message reaches the
stream whichever server process holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

from channels.layers import get_channel_layer

BROADCAST_GROUP = "matchmaking.streams"

# Message types. A stream hands each to its method of the same name, dots made
# underscores (``match.found`` -> ``match_found``), as Channels' consumers do; the
# layer's own ``layer.connection_lost`` (animochat.channel_layer) goes the same way.
MATCH_FOUND = "match.found"
STREAM_REPLACED = "stream.replaced"
STREAM_CANCELLED = "stream.cancelled"
SERVICE_MAINTENANCE = "service.maintenance"


def user_group(user_id: str) -> str:
    return "user." + hashlib.sha256(user_id.encode()).hexdigest()[:40]


async def send_to_user(user_id: str, message_type: str, **payload: Any) -> None:
    await get_channel_layer().group_send(user_group(user_id), {"type": message_type, **payload})


async def broadcast(message_type: str, **payload: Any) -> None:
    await get_channel_layer().group_send(BROADCAST_GROUP, {"type": message_type, **payload})


async def release_channel(channel: str) -> None:
    """Free a channel made by ``new_channel()``: its queue and its Redis subscription.

    channels_redis frees one only when a ``receive()`` on it is cancelled, which a
    stream that never waited (matched at once, refused) never does: without this, every
    such stream left a subscription behind. Layers without the method need nothing.
    """
    release = getattr(get_channel_layer(), "release_channel", None)
    if release is not None:
        await release(channel)


class Subscription:
    """What one stream hears: a channel of its own in its user's group and the
    broadcast group. Messages sent once it is open wait in the channel until read."""

    def __init__(self) -> None:
        self.channel = ""
        self.groups: tuple[str, ...] = ()
        self.next: asyncio.Future | None = None  # the pending receive(), once started

    async def open(self, user_id: str) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        self.groups = (user_group(user_id), BROADCAST_GROUP)
        for group in self.groups:
            await layer.group_add(group, self.channel)

    def receive(self) -> asyncio.Future:
        """Start reading the next message; its future is also ``self.next``."""
        self.next = asyncio.ensure_future(get_channel_layer().receive(self.channel))
        return self.next

    async def close(self) -> None:
        """Leave the groups and free the channel, whatever state Redis is in."""
        if self.next is not None:
            self.next.cancel()
        if not self.channel:
            return
        layer = get_channel_layer()
        with contextlib.suppress(Exception):
            for group in self.groups:
                await layer.group_discard(group, self.channel)
        with contextlib.suppress(Exception):
            await release_channel(self.channel)


def subscriber_state() -> str:
    """State of this process's pub/sub connection: ``ready``, ``idle`` or ``down``.

    ``idle`` means no stream has subscribed yet, so no connection was needed.
    Reads channels_redis internals defensively: a layer without them reports ``idle``.
    """
    layer = get_channel_layer()
    loop_layer = getattr(layer, "_get_layer", None)
    shards = getattr(loop_layer(), "_shards", []) if loop_layer else []
    pubsubs = [getattr(shard, "_pubsub", None) for shard in shards]
    connections = [getattr(p, "connection", None) for p in pubsubs if p is not None]
    if not connections:
        return "idle"
    if all(c is not None and c.is_connected for c in connections):
        return "ready"
    return "down"

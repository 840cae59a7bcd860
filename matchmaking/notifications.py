"""Messages to open matchmaking streams, carried by the Channels layer.

A stream's channel (see :mod:`animochat.channel_layer`) names the server process that
holds it, so a message sent to it reaches that process's stream directly. Whoever must
reach a waiting stream finds its channel where the stream keeps its place: the token of
the user's lease *is* the channel name, and the matcher's scripts hand it back (the
partner's, an older stream's that was replaced, a cancelled one's). Every stream also
joins the broadcast group of all streams, for maintenance.
"""

from __future__ import annotations

import asyncio
import contextlib
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


async def send(channel: str, message_type: str, **payload: Any) -> None:
    """Tell the stream listening on ``channel``; nothing if it is gone."""
    await get_channel_layer().send(channel, {"type": message_type, **payload})


async def broadcast(message_type: str, **payload: Any) -> None:
    await get_channel_layer().group_send(BROADCAST_GROUP, {"type": message_type, **payload})


async def release_channel(channel: str) -> None:
    """Free a channel made by ``new_channel()``: its queue and its group memberships.

    Other layers (``bench.stream --layer``) may lack the method and free it otherwise.
    """
    release = getattr(get_channel_layer(), "release_channel", None)
    if release is not None:
        await release(channel)


class Subscription:
    """What one stream hears: a channel of its own (in this process's inbox, so no
    Redis subscription of its own) in the broadcast group. Messages sent once it is
    open wait in the channel until read."""

    def __init__(self) -> None:
        self.channel = ""
        self.next: asyncio.Future | None = None  # the pending receive(), once started

    async def open(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        await layer.group_add(BROADCAST_GROUP, self.channel)

    def receive(self) -> asyncio.Future:
        """Start reading the next message; its future is also ``self.next``.

        The project's layer hands over a future (no task per message); other layers
        (``bench.stream --layer``) only have Channels' ``receive()``.
        """
        layer = get_channel_layer()
        next_message = getattr(layer, "next_message", None)
        if next_message is not None:
            self.next = next_message(self.channel)
        else:
            self.next = asyncio.ensure_future(layer.receive(self.channel))
        return self.next

    async def close(self) -> None:
        """Free the channel (and so its group), whatever state Redis is in."""
        if self.next is not None:
            self.next.cancel()
        if self.channel:
            with contextlib.suppress(Exception):
                await release_channel(self.channel)


def subscriber_state() -> str:
    """State of this process's pub/sub connection: ``ready``, ``idle`` or ``down``.

    ``idle`` means nothing has needed the connection yet (no stream, no probe), and is
    what a layer without the method reports.
    """
    state = getattr(get_channel_layer(), "subscriber_state", None)
    return state() if state is not None else "idle"

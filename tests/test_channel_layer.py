"""The project's pub/sub channel layer against a real Redis: batched (un)subscriptions."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings

from animochat.channel_layer import RedisPubSubChannelLayer
from animochat.redis_client import close_redis


@pytest.fixture
async def layer():
    layer = RedisPubSubChannelLayer(hosts=[settings.REDIS_URL], prefix="test.layer.")
    yield layer
    await layer.flush()
    await close_redis()


def count_subscribe_commands(layer, monkeypatch) -> list[tuple[str, ...]]:
    """Records the channel names of each SUBSCRIBE the shard sends."""
    shard = layer._get_layer()._shards[0]
    shard._ensure_redis()
    sent: list[tuple[str, ...]] = []
    real = shard._pubsub.subscribe

    async def recording_subscribe(*channels):
        sent.append(channels)
        return await real(*channels)

    monkeypatch.setattr(shard._pubsub, "subscribe", recording_subscribe)
    return sent


async def subscribers(aredis, layer, group: str) -> int:
    name = layer._get_layer()._get_group_channel_name(group)
    [(_, count)] = await aredis.pubsub_numsub(name)
    return count


async def test_groups_joined_in_one_turn_share_one_subscribe(layer, monkeypatch, aredis):
    sent = count_subscribe_commands(layer, monkeypatch)
    channels = [await layer.new_channel() for _ in range(30)]
    await asyncio.gather(*(layer.group_add(f"g{n}", c) for n, c in enumerate(channels)))
    assert len(sent) == 1 and len(sent[0]) == 30
    # Every subscription is real: each group's message reaches its channel only.
    for n in range(30):
        await layer.group_send(f"g{n}", {"type": "hello", "n": n})
    for n, channel in enumerate(channels):
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message == {"type": "hello", "n": n}


async def test_leave_and_rejoin_in_one_turn_stays_subscribed(layer, aredis):
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("user.x", first)
    # The first stream leaves as the next one joins: sent in order, the rejoin wins.
    await asyncio.gather(layer.group_discard("user.x", first), layer.group_add("user.x", second))
    assert await subscribers(aredis, layer, "user.x") == 1
    await layer.group_send("user.x", {"type": "match"})
    assert await asyncio.wait_for(layer.receive(second), 5) == {"type": "match"}


async def test_join_and_leave_in_one_turn_leaves_no_subscription(layer, aredis):
    channels = [await layer.new_channel() for _ in range(10)]
    await asyncio.gather(
        *(layer.group_add(f"h{n}", c) for n, c in enumerate(channels)),
        *(layer.group_discard(f"h{n}", c) for n, c in enumerate(channels)),
    )
    for n in range(10):
        assert await subscribers(aredis, layer, f"h{n}") == 0
    assert layer._get_layer()._shards[0]._subscribed_to == set()

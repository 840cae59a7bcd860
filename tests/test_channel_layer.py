"""The project's Channels layer against a real Redis: one inbox subscription per process.

Two layer objects on one event loop stand for two server processes: each has an inbox
of its own and knows nothing of the other's channels but their names.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from animochat.channel_layer import CONNECTION_LOST, RedisInboxChannelLayer
from animochat.redis_client import close_redis

PREFIX = "test.layer."


@pytest.fixture
async def processes():
    layers = [RedisInboxChannelLayer(prefix=PREFIX) for _ in range(2)]
    yield layers
    for layer in layers:
        await layer.flush()
    await close_redis()


def inbox_name(channel: str) -> str:
    return channel.partition("!")[0]


def subscriber(client: redis.Redis, inbox: str) -> dict | None:
    """The subscriber connection of ``inbox``'s process, as CLIENT LIST shows it."""
    found = [c for c in client.client_list(_type="pubsub") if c["name"] == inbox]
    return found[0] if found else None


def layer_channels(client: redis.Redis) -> set[bytes]:
    return set(client.pubsub_channels(PREFIX + "*"))


async def test_many_channels_share_one_subscription(processes, clean_redis):
    layer, _ = processes
    first = await layer.new_channel()
    subscribed = layer_channels(clean_redis)
    channels = [first] + [await layer.new_channel() for _ in range(50)]
    # The inbox and the broadcast channel, on one connection, whatever the channel count.
    assert {inbox_name(c) for c in channels} == {inbox_name(first)}
    assert layer_channels(clean_redis) == subscribed
    assert subscribed == {inbox_name(first).encode(), (PREFIX + "broadcast").encode()}
    assert subscriber(clean_redis, inbox_name(first))["sub"] == "2"
    assert clean_redis.pubsub_numsub(inbox_name(first)) == [(inbox_name(first).encode(), 1)]


async def test_a_message_reaches_a_channel_of_another_process(processes):
    here, there = processes
    mine, theirs = await here.new_channel(), await there.new_channel()
    assert inbox_name(mine) != inbox_name(theirs)
    await here.send(theirs, {"type": "match.found", "event": {"chatId": "c1"}})
    await there.send(mine, {"type": "stream.replaced"})
    assert await asyncio.wait_for(there.receive(theirs), 5) == {
        "type": "match.found",
        "event": {"chatId": "c1"},
    }
    assert await asyncio.wait_for(here.receive(mine), 5) == {"type": "stream.replaced"}


async def test_a_burst_arrives_whole(processes):
    here, there = processes
    channels = [await there.new_channel() for _ in range(5)]
    await asyncio.gather(
        *(here.send(c, {"type": "n", "n": n}) for n in range(200) for c in channels)
    )
    for channel in channels:
        received = [await asyncio.wait_for(there.receive(channel), 5) for _ in range(200)]
        assert sorted(m["n"] for m in received) == list(range(200))


async def test_messages_sent_one_after_another_arrive_in_order(processes):
    here, there = processes
    channel = await there.new_channel()
    for n in range(50):
        await here.send(channel, {"type": "n", "n": n})
    received = [await asyncio.wait_for(there.receive(channel), 5) for _ in range(50)]
    assert [m["n"] for m in received] == list(range(50))


async def test_a_message_to_a_released_channel_is_dropped(processes):
    here, there = processes
    gone, kept = await there.new_channel(), await there.new_channel()
    await there.release_channel(gone)
    await here.send(gone, {"type": "lost"})
    await here.send(kept, {"type": "kept"})
    assert await asyncio.wait_for(there.receive(kept), 5) == {"type": "kept"}
    assert gone not in there._inbox().channels


async def test_group_send_reaches_members_in_every_process(processes):
    here, there = processes
    members = [await here.new_channel(), await there.new_channel(), await there.new_channel()]
    outsider = await there.new_channel()
    for channel, layer in zip(members, (here, there, there), strict=True):
        await layer.group_add("everyone", channel)
    await there.group_discard("everyone", members[2])
    await here.group_send("everyone", {"type": "service.maintenance", "message": "soon"})
    for channel, layer in zip(members[:2], (here, there), strict=True):
        message = await asyncio.wait_for(layer.receive(channel), 5)
        assert message == {"type": "service.maintenance", "message": "soon"}
    await here.send(outsider, {"type": "next"})
    # Neither the outsider nor the member that left got the group's message.
    assert await asyncio.wait_for(there.receive(outsider), 5) == {"type": "next"}
    assert there._inbox().channels[members[2]].empty()


async def test_a_dropped_connection_is_told_to_every_channel_then_resubscribed(
    processes, clean_redis
):
    here, there = processes
    channels = [await there.new_channel() for _ in range(3)]
    inbox = inbox_name(channels[0])
    first = subscriber(clean_redis, inbox)
    clean_redis.client_kill_filter(_id=first["id"])
    for channel in channels:
        assert await asyncio.wait_for(there.receive(channel), 5) == {"type": CONNECTION_LOST}
    assert await there.listener_connected(5)
    again = subscriber(clean_redis, inbox)
    assert again["id"] != first["id"] and again["sub"] == "2"
    await here.send(channels[0], {"type": "after"})
    assert await asyncio.wait_for(there.receive(channels[0]), 5) == {"type": "after"}


async def test_a_channel_asked_for_before_the_reconnect_waits_for_it(processes, clean_redis):
    """Between a failed connection (here: killed) and the next attempt, Redis may be
    back already (just restarted): only an attempt that fails after the request is an
    outage, so the stream gets its channel from the reconnect instead of a refusal."""
    here, there = processes
    channel = await there.new_channel()
    clean_redis.client_kill_filter(_id=subscriber(clean_redis, inbox_name(channel))["id"])
    # Told in the same step that marks the attempt failed, before the reconnect's pause.
    assert await asyncio.wait_for(there.receive(channel), 5) == {"type": CONNECTION_LOST}
    later = await there.new_channel()
    await here.send(later, {"type": "after"})
    assert await asyncio.wait_for(there.receive(later), 5) == {"type": "after"}


async def test_subscriber_state_until_first_use(processes):
    layer, _ = processes
    assert layer.subscriber_state() == "idle"
    assert await layer.listener_connected(5)
    assert layer.subscriber_state() == "ready"


async def test_a_channel_of_another_process_cannot_be_received_on(processes):
    here, there = processes
    theirs = await there.new_channel()
    with pytest.raises(ValueError, match="another process"):
        await here.receive(theirs)
    # No process listens on a name that is not process-specific: it is dropped.
    await here.send("plain.channel", {"type": "x"})


async def test_a_reader_that_gave_up_takes_no_message(processes):
    """A stream's pending read is cancelled when it ends: the next message goes to the
    next read, not to the cancelled one."""
    here, there = processes
    channel = await there.new_channel()
    abandoned = there.next_message(channel)
    abandoned.cancel()
    waiting = there.next_message(channel)
    await here.send(channel, {"type": "first"})
    await here.send(channel, {"type": "second"})
    assert await asyncio.wait_for(waiting, 5) == {"type": "first"}
    assert await asyncio.wait_for(there.next_message(channel), 5) == {"type": "second"}


async def test_readers_waiting_on_one_channel_are_served_in_turn(processes):
    here, there = processes
    channel = await there.new_channel()
    readers = [there.next_message(channel) for _ in range(3)]
    for n in range(3):
        await here.send(channel, {"type": "n", "n": n})
    assert [(await asyncio.wait_for(r, 5))["n"] for r in readers] == [0, 1, 2]

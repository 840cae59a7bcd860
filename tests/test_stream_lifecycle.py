"""What the soak found: streams must release what they hold and tell the truth at the end.

* Every stream has a channel of its own; streams that never waited (matched at once)
  used to leave it behind, in Redis and in the server's memory (+30 % RSS over a
  10-minute soak). A channel is now a name in the process's inbox, never a Redis
  subscription (tests/test_channel_layer.py checks that a released one is gone).
* A cancel takes the user's place, then notifies the stream; a keepalive falling in
  between used to report ``QUEUE_PLACE_LOST`` to a user who had just cancelled.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import redis
from django.conf import settings

from matchmaking import events, notifications, store
from tests.support.sse_client import open_stream

PREFIX = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]


def subscriptions(client: redis.Redis) -> set[bytes]:
    """The layer's subscriptions in Redis, across every process."""
    return set(client.pubsub_channels(PREFIX + "*"))


async def test_every_stream_releases_its_channel(daphne, clean_redis):
    before = None
    for n in range(6):
        waiting = await open_stream(daphne.url, params={"userId": f"w{n}", "interests": f"L{n}"})
        assert (await waiting.next_event())["state"] == "WAITING"
        # The process subscribed its inbox once, for its first stream, if not before.
        before = before or subscriptions(clean_redis)
        # Matched at once: this stream never waits for a message.
        arriving = await open_stream(daphne.url, params={"userId": f"a{n}", "interests": f"L{n}"})
        assert (await arriving.next_event())["state"] == "MATCHED"
        assert (await waiting.next_change())["state"] == "MATCHED"
    hung_up = await open_stream(daphne.url, params={"userId": "h", "interests": "HANG"})
    await hung_up.next_event()
    await hung_up.close()
    assert subscriptions(clean_redis) == before


async def test_cancel_racing_a_keepalive_is_still_a_cancel(daphne, aredis):
    stream = await open_stream(daphne.url, params={"userId": "racer", "interests": "RACE"})
    assert (await stream.next_event())["state"] == "WAITING"
    await stream.next_event(timeout=3)  # a keepalive's WAITING update: the clock is known
    # The cancel's first step; its notification comes after the next keepalive
    # (KEEPALIVE_SECONDS=1 in tests), which finds the place gone.
    removed, [channel] = await store.cancel_waiting("racer")
    assert removed
    await asyncio.sleep(settings.KEEPALIVE_SECONDS * 1.4)
    await notifications.send(channel, notifications.STREAM_CANCELLED)
    assert await stream.events_until_closed() == [events.cancelled()]


async def test_many_cancels_racing_frequent_keepalives_are_all_cancels(daphne_factory):
    """The race at full speed: keepalives every 0.1 s, cancels through either process."""
    servers = [daphne_factory(KEEPALIVE_SECONDS="0.1", LEASE_SECONDS="1") for _ in range(2)]
    rng = random.Random(8)  # deterministic delays
    endings: Counter[str] = Counter()

    async def wait_then_cancel(http: httpx.AsyncClient, n: int) -> None:
        stream = await open_stream(
            rng.choice(servers).url, params={"userId": f"c{n}", "interests": f"C{n}"}
        )
        assert (await stream.next_event())["state"] == "WAITING"
        await asyncio.sleep(rng.uniform(0.1, 0.6))
        cancel = rng.choice(servers).url + "/cancel_matchmaking"
        assert (await http.post(cancel, json={"userId": f"c{n}"})).status_code == 200
        event = await stream.next_change()
        endings[event.get("code", event["state"])] += 1
        await stream.close()

    async with httpx.AsyncClient(timeout=5) as http:
        for batch in range(3):
            await asyncio.gather(*(wait_then_cancel(http, batch * 40 + n) for n in range(40)))
    assert endings == {"CANCELLED": 120}

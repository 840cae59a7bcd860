"""Notifications addressed to the process: one subscription per process, none per stream.

A waiting user's lease holds their stream's channel, ``"<process inbox>!<local part>"``;
whoever takes or ends the place (a partner, a newer stream, a cancel) tells that
process's inbox, whichever process they are served by. These tests read the channel
from the lease, and look at Redis' own view of its subscribers.
"""

from __future__ import annotations

import asyncio
import time

import redis
import requests
from django.conf import settings

from animochat.redis_client import get_sync_redis
from matchmaking import services
from tests.support.sse_client import open_stream

PREFIX = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]


def inbox_of(client: redis.Redis, user_id: str) -> str:
    """The inbox of the process holding the user's waiting stream, from their lease."""
    return client.get(f"lease:{user_id}").decode().partition("!")[0]


def subscribers(client: redis.Redis) -> dict[str, int]:
    """Subscriptions per connection of this run's inboxes, by inbox (CLIENT LIST)."""
    return {
        c["name"]: int(c["sub"])
        for c in client.client_list(_type="pubsub")
        if c["name"].startswith(PREFIX + "inbox.")
    }


async def wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_streams_add_no_subscription_in_redis(daphne_pair, clean_redis):
    streams = []
    for n, server in enumerate(daphne_pair):
        stream = await open_stream(server.url, params={"userId": f"s{n}", "interests": f"S{n}"})
        assert (await stream.next_event())["state"] == "WAITING"
        streams.append(stream)
    inboxes = {inbox_of(clean_redis, "s0"), inbox_of(clean_redis, "s1")}
    assert len(inboxes) == 2
    channels = set(clean_redis.pubsub_channels(PREFIX + "*"))
    before = subscribers(clean_redis)

    for n in range(40):
        server = daphne_pair[n % 2]
        stream = await open_stream(server.url, params={"userId": f"m{n}", "interests": f"M{n}"})
        assert (await stream.next_event())["state"] == "WAITING"
        streams.append(stream)
    assert clean_redis.zcard("queue:waiting") == 42
    # 42 waiting streams: still each process's inbox and the broadcast channel, on one
    # connection per process.
    assert set(clean_redis.pubsub_channels(PREFIX + "*")) == channels
    assert {inbox.encode() for inbox in inboxes} | {(PREFIX + "broadcast").encode()} <= channels
    assert subscribers(clean_redis) == before
    assert all(before[inbox] == 2 for inbox in inboxes)
    for stream in streams:
        await stream.close()


async def test_a_partner_on_another_process_is_told_through_its_inbox(daphne_pair, clean_redis):
    first, second = daphne_pair
    waiting = await open_stream(first.url, params={"userId": "far", "interests": "INBOX"})
    assert (await waiting.next_event())["state"] == "WAITING"
    listener = clean_redis.pubsub()
    listener.subscribe(inbox_of(clean_redis, "far"))
    try:
        arriving = await open_stream(second.url, params={"userId": "near", "interests": "INBOX"})
        mine = await arriving.next_event()
        theirs = await waiting.next_change()
        assert mine["state"] == theirs["state"] == "MATCHED"
        assert theirs["chatId"] == mine["chatId"] and theirs["matchedUserId"] == "near"

        def published() -> bool:
            message = listener.get_message(timeout=0.5)
            return bool(message) and b"match.found" in bytes(message["data"])

        assert await wait_for(published)  # through Redis, to the waiting stream's process
    finally:
        listener.close()


async def test_a_newer_stream_on_another_process_replaces_the_waiting_one(daphne_pair, clean_redis):
    first, second = daphne_pair
    older = await open_stream(first.url, params={"userId": "twice", "interests": "REP"})
    assert (await older.next_event())["state"] == "WAITING"
    first_inbox = inbox_of(clean_redis, "twice")
    newer = await open_stream(second.url, params={"userId": "twice", "interests": "REP"})
    assert (await newer.next_event())["state"] == "WAITING"
    assert (await older.next_change())["state"] == "REPLACED"
    assert await older.next_change() is None
    assert inbox_of(clean_redis, "twice") != first_inbox  # the place moved process
    partner = await open_stream(first.url, params={"userId": "other", "interests": "REP"})
    assert (await partner.next_event())["matchedUserId"] == "twice"
    assert (await newer.next_change())["matchedUserId"] == "other"


async def test_a_cancel_served_by_another_process_closes_the_stream(daphne_pair, clean_redis):
    first, second = daphne_pair
    stream = await open_stream(first.url, params={"userId": "quit", "interests": "CAN"})
    assert (await stream.next_event())["state"] == "WAITING"
    response = requests.post(f"{second.url}/cancel_matchmaking", json={"userId": "quit"}, timeout=5)
    assert response.status_code == 200
    assert (await stream.next_change())["state"] == "CANCELLED"
    assert await stream.next_change() is None
    assert clean_redis.zcard("queue:waiting") == 0


async def test_a_killed_process_leaves_nothing_behind(daphne_factory, clean_redis):
    """kill -9 a process holding waiting users (LEASE_SECONDS=3 here)."""
    doomed, survivor = daphne_factory(), daphne_factory()
    streams = []
    for n in range(5):
        stream = await open_stream(doomed.url, params={"userId": f"gone{n}", "interests": f"K{n}"})
        assert (await stream.next_event())["state"] == "WAITING"
        streams.append(stream)
    inbox = inbox_of(clean_redis, "gone0")
    assert clean_redis.pubsub_numsub(inbox) == [(inbox.encode(), 1)]

    doomed.kill()
    # Its subscription went with its connection: messages to it are dropped by Redis.
    assert await wait_for(lambda: clean_redis.pubsub_numsub(inbox) == [(inbox.encode(), 0)])
    assert inbox not in subscribers(clean_redis)
    # Its users' leases lapse; a newcomer is never matched with one of them...
    assert await wait_for(lambda: not clean_redis.keys("lease:gone*"), settings.LEASE_SECONDS * 5)
    newcomer = await open_stream(survivor.url, params={"userId": "new", "interests": "K0"})
    assert (await newcomer.next_event())["state"] == "WAITING"
    # ...and the sweep removes the rest: nothing of the killed process stays in Redis.
    client = get_sync_redis()  # as manage.py sweep_queues runs it
    try:
        assert services.sweep_lapsed_waiters(client) == 4
    finally:
        client.close()
    assert [u.decode() for u in clean_redis.zrange("queue:waiting", 0, -1)] == ["new"]
    for stream in [*streams, newcomer]:
        await stream.close()

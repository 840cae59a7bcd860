"""A matcher call whose reply never comes leaves no phantom, whatever the timing.

The arriving user "ann" is served by a Daphne process whose Redis connections pass
through a proxy (tests/support/redis_proxy.py) that disturbs the one connection that
carries her matcher call: the call reaches Redis only after the client gave up, or its
reply is held past the client's timeout, or the connection is cut half-way through the
reply, or her server is stopped or killed meanwhile. "bob" waits for her on another
process with a sound connection. Whatever happens, nobody is told MATCHED for a chat
whose other side was not told; bob, if his match is undone, waits on in his original
place and is told nothing, and is then matched as usual; ann is not left queued.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis

from animochat.embedded_redis import EmbeddedRedis
from animochat.redis_client import LuaScript, background_done
from matchmaking import services, store
from tests.support.redis_proxy import (
    CUT_REPLY,
    DELIVERED_KEY,
    HOLD_REPLY,
    HOLD_REQUEST,
    FaultyRedisProxy,
)
from tests.support.sse_client import open_stream

# A lease long enough that a place left behind would still be there when checked.
SERVER_ENV = {"KEEPALIVE_SECONDS": "1", "LEASE_SECONDS": "60"}
DEADLINE = 20.0  # seconds: generous, for a busy machine


@pytest.fixture
def world(daphne_factory):
    """A private Redis, the proxy in front of it, ann's server (through the proxy) and
    bob's (direct), with every script already loaded, so the calls the proxy watches
    for are the scripts' own (not a first NOSCRIPT)."""
    server = EmbeddedRedis().start()
    proxy = FaultyRedisProxy(server.port).start()
    client = redis.Redis.from_url(server.url + "/15", decode_responses=True)
    for script in vars(store).values():
        if isinstance(script, LuaScript):
            client.script_load(script.source)
    world = World(
        client,
        proxy,
        daphne_factory(REDIS_URL=proxy.url(), **SERVER_ENV),
        daphne_factory(REDIS_URL=server.url + "/15", **SERVER_ENV),
    )
    yield world
    world.ann_server.stop()
    proxy.stop()
    client.close()
    server.stop()


class World:
    def __init__(self, client, proxy, ann_server, bob_server) -> None:
        self.redis, self.proxy = client, proxy
        self.ann_server, self.bob_server = ann_server, bob_server

    async def bob_waits(self):
        bob = await open_stream(self.bob_server.url, params={"userId": "bob", "interests": "X"})
        assert (await bob.next_event(DEADLINE))["state"] == "WAITING"
        return bob, self.redis.zscore("queue:waiting", "bob")

    def ann_arrives(self) -> asyncio.Future:
        """Ann's stream, opened in the background: its head comes after her call."""
        params = {"userId": "ann", "interests": "X"}
        return asyncio.ensure_future(open_stream(self.ann_server.url, params=params))

    async def ann_events(self, arrival: asyncio.Future) -> list[dict]:
        ann = await asyncio.wait_for(arrival, DEADLINE)
        try:
            return await ann.events_until_closed(DEADLINE)
        finally:
            await ann.close()

    async def bob_is_waiting_as_before(self, since: float) -> None:
        """Bob has his original place back (same enqueue time, a live lease) and no
        session, nothing of the undone call remains, and ann holds no place."""
        await until(lambda: self.redis.exists("lease:bob") and not self.redis.exists("lease:ann"))
        assert self.redis.zscore("queue:waiting", "bob") == since
        assert self.redis.zscore("interest:X", "bob") == since
        assert self.redis.zscore("queue:waiting", "ann") is None
        assert not self.redis.exists("user_session:bob", "user_session:ann")
        assert self.redis.zcard("sessions:active") == 0
        assert not self.redis.keys("chat_session:*")
        pending = [key for key in self.redis.keys("attempt:*") if self.redis.get(key) != "W"]
        assert not pending  # (bob's own call queued him: its marker is "W")

    async def carol_meets(self, bob) -> None:
        """Bob's stream still works: a newcomer is matched with him, both are told, and
        bob was told nothing before (only WAITING updates)."""
        carol = await open_stream(self.bob_server.url, params={"userId": "carol", "interests": "X"})
        theirs = await carol.next_event(DEADLINE)
        mine = await bob.next_change(DEADLINE)
        assert theirs["state"] == mine["state"] == "MATCHED", (theirs, mine)
        assert mine["matchedUserId"] == "carol" and theirs["chatId"] == mine["chatId"]
        await carol.close()
        await bob.close()


async def until(predicate, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def event_in_thread(event, timeout: float = DEADLINE) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "the proxy saw no such call"


def assert_unavailable(events: list[dict]) -> None:
    assert [event.get("code") for event in events] == ["SERVICE_UNAVAILABLE"], events


async def test_a_call_that_reaches_redis_after_its_undo_does_nothing(world):
    bob, since = await world.bob_waits()
    world.proxy.arm(HOLD_REQUEST, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    # Ann's server gives up (client timeout) and undoes the call before it ran.
    assert_unavailable(await world.ann_events(arrival))
    await until(lambda: world.redis.keys("undone:*"))
    world.proxy.release()  # now the call runs, late
    await until(lambda: world.redis.exists(DELIVERED_KEY))
    await world.bob_is_waiting_as_before(since)
    await world.carol_meets(bob)


async def test_a_match_whose_reply_is_held_past_the_timeout_is_undone(world):
    bob, since = await world.bob_waits()
    world.proxy.arm(HOLD_REPLY, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    await until(lambda: world.redis.exists("user_session:bob"))  # the match was made
    assert_unavailable(await world.ann_events(arrival))
    await world.bob_is_waiting_as_before(since)
    world.proxy.release()
    await world.carol_meets(bob)


async def test_a_match_whose_reply_is_cut_half_way_is_undone(world):
    bob, since = await world.bob_waits()
    world.proxy.arm(CUT_REPLY, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    assert_unavailable(await world.ann_events(arrival))
    await world.bob_is_waiting_as_before(since)
    await world.carol_meets(bob)


async def test_a_user_queued_by_a_call_without_reply_does_not_stay_queued(world):
    world.proxy.arm(HOLD_REPLY, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    await until(lambda: world.redis.exists("lease:ann"))  # queued, with a 60 s lease
    queued_at = time.monotonic()
    assert_unavailable(await world.ann_events(arrival))
    await until(lambda: not world.redis.exists("lease:ann"))
    assert time.monotonic() - queued_at < 30  # undone, long before the lease ran out
    assert world.redis.zcard("queue:waiting") == 0 and not world.redis.keys("interest:*")
    world.proxy.release()


async def test_a_confirmation_whose_reply_is_lost_still_tells_both(world):
    """The match stood (the confirmation ran): ann is told from the undo's answer,
    bob from his stored, confirmed session."""
    bob, _ = await world.bob_waits()
    world.proxy.arm(HOLD_REPLY, store.CONFIRM_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    [mine] = await world.ann_events(arrival)
    theirs = await bob.next_change(DEADLINE)
    assert mine["state"] == theirs["state"] == "MATCHED", (mine, theirs)
    assert mine["chatId"] == theirs["chatId"] and theirs["matchedUserId"] == "ann"
    assert mine["matchedUserId"] == "bob"
    world.proxy.release()
    await bob.close()


async def test_a_server_stopped_during_the_call_undoes_it(world):
    bob, since = await world.bob_waits()
    world.proxy.arm(HOLD_REPLY, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    await until(lambda: world.redis.exists("user_session:bob"))
    await asyncio.to_thread(world.ann_server.stop, signal.SIGTERM)  # cancels her stream
    assert_unavailable(await world.ann_events(arrival))
    await world.bob_is_waiting_as_before(since)
    world.proxy.release()
    await world.carol_meets(bob)


async def test_a_match_never_confirmed_is_undone_by_the_waiting_partner(world):
    """Ann's server dies between the match and its confirmation: bob is not sent into
    a chat alone; after the grace period he takes his original place back."""
    bob, since = await world.bob_waits()
    world.proxy.arm(HOLD_REPLY, store.ENQUEUE_OR_MATCH.sha.encode())
    arrival = world.ann_arrives()
    await event_in_thread(world.proxy.triggered)
    await until(lambda: world.redis.exists("user_session:bob"))
    world.ann_server.kill()
    arrival.cancel()
    await world.bob_is_waiting_as_before(since)
    await world.carol_meets(bob)


# -- the undo script itself, against the test Redis ----------------------------------


def snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key but bookkeeping (the undo's, popularity, history, the server turn), by value."""
    state = {}
    for key in client.keys("*"):
        if key.startswith((b"undone:", b"attempt:", b"popular", b"history:", b"chat_servers:rr")):
            continue
        kind = client.type(key)
        if kind == b"zset":
            state[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            state[key] = sorted(client.smembers(key))
        elif kind == b"hash":
            state[key] = client.hgetall(key)
        else:
            state[key] = client.get(key)
    return state


async def pending_match(clean_redis, settings):
    """Bob waits (interests X and Y, past his fallback time); ann's call matches him."""
    settings.LEASE_SECONDS = 60
    await services.enqueue_or_match("bob", ["X", "Y"], "t-bob", fallback_after=0)
    before = snapshot(clean_redis)
    result = await services.enqueue_or_match("ann", ["X"], "t-ann")
    assert result.state == "MATCHED" and not result.confirmed
    return before, result


async def test_undo_gives_the_partner_back_exactly_his_place_and_is_idempotent(
    aredis, clean_redis, settings
):
    before, result = await pending_match(clean_redis, settings)
    assert before.pop(b"lease:bob") == b"t-bob"
    for _ in range(2):
        undone = await services.undo_unanswered(result.chat_id, "ann", "t-ann")
        assert undone.state == "UNDONE"
        after = snapshot(clean_redis)
        assert after.pop(b"lease:bob") == b"t-bob"  # (a lease of a new length)
        assert after == before  # same queues, same enqueue times, no session
    assert clean_redis.pttl("lease:bob") > 50_000
    # Undone before its confirmation: the arriving side may not tell anyone.
    assert await services.confirm_match(result, "ann", "t-ann") is None
    assert not clean_redis.exists("metrics:matches")


async def test_undo_before_the_call_runs_makes_the_call_do_nothing(aredis, clean_redis):
    undone = await store.undo_match("chat-1", "ann", "t-ann", 60_000)
    assert undone == ["UNDONE"]
    reply = await store.enqueue_or_match(
        "ann",
        ["X"],
        "t-ann",
        "chat-1",
        lease_ms=60_000,
        session_ttl_s=3600,
        maintenance_default=False,
        cooldown_ms=0,
        fallback_after_ms=-1,
        fallback_servers=("https://chat.example",),
    )
    assert reply == ["UNDONE"]
    assert not clean_redis.exists("lease:ann", "queue:waiting", "interest:X")


async def test_a_confirmed_match_stands_and_is_counted_once(aredis, clean_redis, settings):
    _, result = await pending_match(clean_redis, settings)
    confirmed = await services.confirm_match(result, "ann", "t-ann")
    assert confirmed is not None and confirmed.confirmed
    assert await services.confirm_match(result, "ann", "t-ann") is not None  # again: fine
    await background_done()  # the counters are written after the confirmation
    assert sum(map(int, clean_redis.hgetall("metrics:matches").values())) == 1
    for user, token in (("ann", "t-ann"), ("bob", "t-bob")):
        settled = await services.undo_unanswered(result.chat_id, user, token)
        assert settled.state == "MATCHED" and settled.chat_id == result.chat_id
        assert not settled.tell_partner
    assert clean_redis.get("user_session:bob") == result.chat_id.encode()


async def test_a_call_that_queued_its_user_is_undone_by_leaving(aredis, clean_redis, settings):
    settings.LEASE_SECONDS = 60
    await services.enqueue_or_match("ann", ["X"], "t-ann")
    [chat_id] = [key.decode()[len("attempt:") :] for key in clean_redis.keys("attempt:*")]
    assert (await services.undo_unanswered(chat_id, "ann", "t-ann")).state == "UNDONE"
    assert not clean_redis.exists("lease:ann", "queue:waiting", "interest:X")

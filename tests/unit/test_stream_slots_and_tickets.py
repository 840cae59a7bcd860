"""stream_slot.lua (concurrent streams per client address, across processes) and the
one-use stream tickets."""

from __future__ import annotations

from matchmaking import store

LEASE_MS = 3_000


async def claim(token: str, most: int = 2, client: str = "203.0.113.7") -> bool:
    return await store.claim_stream_slot(client, token, most, LEASE_MS)


async def test_a_client_holds_at_most_its_slots_and_a_released_one_is_free_again():
    assert await claim("s1") and await claim("s2")
    assert not await claim("s3")
    assert await claim("s3", client="198.51.100.1")  # another client counts apart
    await store.release_stream_slot("203.0.113.7", "s1")
    assert await claim("s3")


async def test_a_slot_its_stream_stopped_renewing_lapses_with_its_lease(clean_redis, clock):
    await claim("dead")
    clock.advance(1)
    await claim("live")
    clock.advance(2)
    assert await store.renew_stream_slot("203.0.113.7", "live", LEASE_MS)
    clock.advance(1.001)  # the dead stream's lease is over, the renewed one's is not
    assert await claim("new")
    assert not await claim("one-too-many")
    assert set(clean_redis.zrange("streams:203.0.113.7", 0, -1)) == {"live", "new"}


async def test_only_a_slot_still_held_is_renewed(clean_redis, clock):
    assert not await store.renew_stream_slot("203.0.113.7", "never-claimed", LEASE_MS)
    await claim("s1")
    clock.advance(LEASE_MS / 1000 + 0.001)
    assert not await store.renew_stream_slot("203.0.113.7", "s1", LEASE_MS)
    assert not clean_redis.exists("streams:203.0.113.7")


async def test_the_slots_key_expires_with_its_last_lease(clean_redis, clock):
    await claim("s1")
    clock.advance(1)
    await claim("s2")
    assert clean_redis.pttl("streams:203.0.113.7") == LEASE_MS
    clock.advance(1)
    await store.renew_stream_slot("203.0.113.7", "s1", 1_000)  # a shorter one
    assert clean_redis.pttl("streams:203.0.113.7") == LEASE_MS - 1_000


async def test_a_ticket_names_its_user_once_then_is_known_as_used(clean_redis, clock):
    await store.store_ticket("h1", "alice", 30)
    assert clean_redis.ttl("ticket:h1") == 30
    assert await store.use_ticket("h1", 600) == "user:alice"
    assert await store.use_ticket("h1", 600) == store.TICKET_USED
    assert clean_redis.ttl("ticket:h1") == 600
    assert await store.use_ticket("unknown", 600) is None
    assert not clean_redis.exists("ticket:unknown")


async def test_a_ticket_expires_unused(clock):
    await store.store_ticket("h1", "alice", 30)
    clock.advance(30.001)
    assert await store.use_ticket("h1", 600) is None

"""The store's reads of the queues and of a user's match, as the admin and /status
show them."""

from __future__ import annotations

from matchmaking import store
from tests.unit.matching import LEASE_MS, join


async def test_the_largest_queues_come_first_with_the_totals(clock):
    await join("a", "BIG", "SMALL", cooldown_ms=60_000)
    await join("b", "BIG", cooldown_ms=60_000)  # matched with a: both leave
    await join("a", "BIG", "SMALL", cooldown_ms=60_000)
    await join("b", "BIG", "OTHER", cooldown_ms=60_000)  # kept apart from a
    assert await store.largest_queues(2) == (2, 3, {"BIG": 2, "SMALL": 1})


async def test_queue_heads_give_each_queues_size_and_longest_wait(clock):
    await join("a", "X", "Y")
    first = clock.now_us
    clock.advance(1)
    await join("b", "Z")
    now, total, oldest, rows = await store.queue_heads()
    assert (now, total, oldest) == (clock.now_us, 2, first)
    assert rows == [("X", 1, first), ("Y", 1, first), ("Z", 1, clock.now_us)]


async def test_a_queue_is_read_a_page_at_a_time_longest_waiting_first(clean_redis, clock):
    # Laid out as the matcher leaves users it could not pair (see lib.lua).
    for since, user, lease_ms in ((3, "c", 1000), (1, "a", 2000), (2, "b", 0)):
        clean_redis.zadd("interest:GAMING", {user: since})
        clean_redis.zadd("queue:waiting", {user: since})
        clean_redis.sadd(f"user_interests:{user}", "GAMING", f"ONLY-{user}")
        if lease_ms:
            clean_redis.set(f"lease:{user}", "t", px=lease_ms)
    now, size, rows = await store.queue_page("GAMING", 1, 5)
    assert (now, size) == (clock.now_us, 3)
    assert rows == [
        ("b", 2.0, {"GAMING", "ONLY-b"}, -2),  # its lease lapsed
        ("c", 3.0, {"GAMING", "ONLY-c"}, 1000),
    ]
    _, size, rows = await store.queue_page(None, 0, 1)
    assert size == 3 and [row[0] for row in rows] == ["a"]


async def test_a_waiting_user_is_found_by_id(clock):
    await join("a", "X")
    since = clock.now_us
    clock.advance(2)
    now, entry = await store.waiting_user("a")
    assert now == clock.now_us
    assert entry == ("a", since, {"X"}, LEASE_MS - 2000)
    assert (await store.waiting_user("nobody"))[1] is None


async def test_a_users_match_is_pending_until_its_arriving_side_confirms_it():
    assert await store.user_session_and_pending("a") == (None, False)
    await join("a", "X")
    result = await join("b", "X")
    for user in ("a", "b"):
        found, pending = await store.user_session_and_pending(user)
        assert found["chatId"] == result.chat_id and pending
    await store.confirm_match(result.chat_id)
    assert (await store.user_session_and_pending("a"))[1] is False


async def test_the_maintenance_flag_is_read_as_written():
    assert await store.get_maintenance_flag() is None
    await store.set_maintenance_flag(True)
    assert await store.get_maintenance_flag() == "1"
    assert (await join("a", "X")).state == "MAINTENANCE"
    await store.set_maintenance_flag(False)
    assert await store.get_maintenance_flag() == "0"

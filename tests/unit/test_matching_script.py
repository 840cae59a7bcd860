"""enqueue_or_match.lua: who is matched with whom, and what is left in Redis."""

from __future__ import annotations

from matchmaking import store
from tests.unit.matching import LEASE_MS, SERVERS, join, session, snapshot, waiting


async def test_the_first_user_waits_and_the_next_with_a_shared_interest_is_matched(
    clean_redis, clock
):
    first = await join("a", "GAMING", "MUSIC")
    assert (first.state, first.waiting, first.replaced_token) == ("WAITING", 0, "")
    assert clean_redis.get("lease:a") == "t-a"
    assert clean_redis.pttl("lease:a") == LEASE_MS
    assert waiting(clean_redis) == {"a": clock.now_us}
    assert clean_redis.zrange("queue:sizes", 0, -1, withscores=True) == [
        ("GAMING", 1),
        ("MUSIC", 1),
    ]

    clock.advance(2.5)
    result = await join("b", "GAMING")
    assert result.state == "MATCHED"
    assert (result.partner, result.interest, result.partner_token) == ("a", "GAMING", "t-a")
    assert result.chat_server_url in SERVERS
    assert result.partner_waited_ms == 2500 and not result.fallback
    stored = session(clean_redis, result.chat_id)
    assert stored["participants"] == ["a", "b"] and stored["serverUrl"] == result.chat_server_url
    assert stored["createdAt"] == clock.now_us // 1000
    for user in ("a", "b"):
        assert clean_redis.get(f"user_session:{user}") == result.chat_id
        assert not clean_redis.exists(f"lease:{user}", f"user_interests:{user}")
    assert waiting(clean_redis) == {}
    assert not clean_redis.exists("interest:GAMING", "interest:MUSIC", "queue:sizes")
    assert clean_redis.smembers("queue:interests") == set()


async def test_the_longest_waiting_compatible_user_is_chosen_across_queues(clock):
    await join("old", "MUSIC")
    clock.advance(0.001)
    await join("new", "ANIME")
    assert (await join("c", "ANIME", "MUSIC")).partner == "old"
    assert (await join("d", "MUSIC", "ANIME")).partner == "new"


async def test_users_who_arrived_in_the_same_microsecond_are_taken_by_user_id(clock):
    await join("b", "X")
    await join("a", "Y")  # the clock has not moved
    assert (await join("c", "X", "Y")).partner == "a"


async def test_shared_interests_are_reported_in_the_arriving_users_order():
    await join("a", "X", "Y", "Z")
    assert (await join("b", "Z", "W", "Y")).interest == "Z,Y"


async def test_users_without_a_common_interest_both_wait(clean_redis):
    await join("a", "X")
    result = await join("b", "Y")
    assert (result.state, result.waiting) == ("WAITING", 0)
    assert set(waiting(clean_redis)) == {"a", "b"}
    assert clean_redis.smembers("queue:interests") == {"X", "Y"}
    assert clean_redis.smembers("user_interests:b") == {"Y"}


async def test_a_user_is_never_matched_with_themself_and_a_new_stream_replaces_the_old(
    clean_redis,
):
    await join("a", "X", token="first")
    again = await join("a", "X", token="second")
    assert (again.state, again.replaced_token) == ("WAITING", "first")
    assert clean_redis.get("lease:a") == "second"
    assert list(waiting(clean_redis)) == ["a"]


async def test_a_waiter_whose_lease_lapsed_is_skipped_and_leaves_every_queue(clean_redis, clock):
    await join("ghost", "X", "W", lease_ms=1000)
    clock.advance(0.001)
    await join("live", "Y", lease_ms=60_000)
    clock.advance(1.0)  # the ghost's stream died with its server: nobody renewed it
    result = await join("c", "X", "Y")
    assert result.partner == "live"
    assert not clean_redis.exists("interest:X", "interest:W", "user_interests:ghost")
    assert waiting(clean_redis) == {}
    assert clean_redis.smembers("queue:interests") == set()


async def test_a_new_search_ends_the_users_session_for_both(clean_redis):
    await join("a", "X")
    chat_id = (await join("b", "X")).chat_id
    assert (await join("a", "Y")).state == "WAITING"
    assert session(clean_redis, chat_id) is None
    assert not clean_redis.exists("user_session:a", "user_session:b")
    assert clean_redis.zcard("sessions:active") == 0


async def test_without_a_chat_server_nobody_is_matched_or_queued(clean_redis):
    await join("a", "X")
    before = snapshot(clean_redis)
    assert (await join("b", "X", servers=())).state == "NO_CHAT_SERVER"
    assert snapshot(clean_redis) == before


async def test_discovered_chat_servers_take_turns_instead_of_the_fallback_list(clean_redis):
    clean_redis.rpush("chat_servers:discovered", "http://one.test", "http://two.test")
    servers = []
    for _ in range(3):
        await join("a", "X")
        servers.append((await join("b", "X")).chat_server_url)
    assert servers == ["http://one.test", "http://two.test", "http://one.test"]


async def test_maintenance_is_the_flag_when_set_else_the_callers_default(clean_redis):
    assert (await join("a", "X", maintenance_default=True)).state == "MAINTENANCE"
    store_flag = store.MAINTENANCE_KEY
    clean_redis.set(store_flag, "0")
    assert (await join("a", "X", maintenance_default=True)).state == "WAITING"
    clean_redis.set(store_flag, "1")
    before = snapshot(clean_redis)
    assert (await join("b", "X")).state == "MAINTENANCE"
    assert snapshot(clean_redis) == before


async def test_just_matched_users_are_kept_apart_for_the_cooldown(clean_redis, clock):
    await join("a", "X", cooldown_ms=60_000)
    await join("b", "X", cooldown_ms=60_000)
    clock.advance(1)
    await join("a", "X", "Y", cooldown_ms=60_000)
    clock.advance(1)
    # Each other's only candidate, in both queues: counted once, not matched.
    kept_apart = await join("b", "X", "Y", cooldown_ms=60_000, lease_ms=600_000)
    assert (kept_apart.state, kept_apart.waiting) == ("WAITING", 1)
    assert (await join("c", "Y", cooldown_ms=60_000)).partner == "a"
    clock.advance(60)
    assert (await join("a", "X", cooldown_ms=60_000)).partner == "b"


async def test_the_cooldown_record_expires_with_the_cooldown(clean_redis, clock):
    await join("a", "X", cooldown_ms=5_000)
    await join("b", "X", cooldown_ms=5_000)
    assert clean_redis.pttl("recent:a") == 5_000
    clock.advance(5.001)
    assert not clean_redis.exists("recent:a", "recent:b")


async def test_without_a_cooldown_nothing_is_remembered(clean_redis):
    await join("a", "X")
    await join("b", "X")
    assert not clean_redis.exists("recent:a", "recent:b")
    assert (await join("a", "X")).state == "WAITING"
    assert (await join("b", "X")).partner == "a"


async def test_waiting_counts_others_exactly_up_to_a_hundred_per_queue_then_by_size(
    clean_redis, clock
):
    # Others still waiting in one's queue are users kept apart by the cooldown.
    for n in range(101):
        clean_redis.zadd("interest:BIG", {f"u{n}": n})
        clean_redis.zadd("recent:me", {f"u{n}": clock.now_us})  # until far in the future
    clean_redis.set("lease:u0", "t")
    result = await join("me", "BIG", cooldown_ms=60_000)
    assert result.waiting == 101
    clean_redis.zrem("interest:BIG", "u100")
    assert (await join("me", "BIG", cooldown_ms=60_000)).waiting == 100


async def test_a_call_undone_before_it_ran_changes_nothing(clean_redis):
    await join("a", "X")
    clean_redis.set("undone:late", "1")
    before = snapshot(clean_redis)
    assert (await join("b", "X", chat_id="late")).state == "UNDONE"
    assert snapshot(clean_redis) == before


async def test_a_queued_call_is_remembered_for_its_undo_a_minute_at_most(clean_redis):
    await join("a", "X", chat_id="queued")
    assert clean_redis.get("attempt:queued") == "W"
    assert clean_redis.ttl("attempt:queued") == 60

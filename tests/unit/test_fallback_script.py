"""Fallback and random chat: enqueue_or_match.lua with a fallback time, and
enter_fallback.lua when that time comes."""

from __future__ import annotations

from tests.unit.matching import enter_fallback, join, waiting


async def test_a_user_past_their_fallback_meets_anyone_else_past_theirs(clean_redis, clock):
    assert (await join("a", "CHESS", fallback_after_ms=0)).state == "WAITING"
    assert clean_redis.zscore("queue:fallback", "a") == clock.now_us
    clock.advance(0.001)
    assert (await join("b", "OPERA")).state == "WAITING"  # no fallback: stays apart
    result = await join("c", "KNITTING", fallback_after_ms=0)
    assert (result.state, result.partner, result.interest) == ("MATCHED", "a", "")
    assert result.fallback
    assert clean_redis.zcard("queue:fallback") == 0
    assert list(waiting(clean_redis)) == ["b"]


async def test_an_interest_match_beats_an_older_user_past_their_fallback(clock):
    await join("anyone", "X", fallback_after_ms=0)
    clock.advance(0.001)
    await join("same", "Y")
    result = await join("c", "Y", fallback_after_ms=0)
    assert (result.partner, result.fallback) == ("same", False)


async def test_a_user_not_yet_past_their_fallback_waits_for_interests_only(clean_redis):
    await join("later", "B", fallback_after_ms=30_000)
    assert clean_redis.zcard("queue:fallback") == 0
    assert (await join("now", "C", fallback_after_ms=0)).state == "WAITING"


async def test_two_random_chat_users_share_global_chat():
    await join("a")
    result = await join("b")
    assert (result.partner, result.interest, result.fallback) == ("a", "GLOBAL_CHAT", False)


async def test_a_random_chat_user_takes_the_oldest_of_everyone_who_accepts_anyone(clock):
    # Kept apart by the cooldown, a random-chat user and a user past their fallback
    # both wait: the next random-chat user may take either, and takes the older.
    await join("r1", cooldown_ms=60_000)
    await join("f", "X", fallback_after_ms=0, cooldown_ms=60_000)
    clock.advance(0.001)
    await join("f", "X", fallback_after_ms=0, cooldown_ms=60_000)
    clock.advance(0.001)
    assert (await join("r1", cooldown_ms=60_000)).state == "WAITING"
    result = await join("r2", cooldown_ms=60_000)
    assert (result.partner, result.interest, result.fallback) == ("f", "", True)
    assert (await join("r3", cooldown_ms=60_000)).partner == "r1"


async def test_a_waiting_random_chat_user_is_met_by_anyone_who_accepts_anyone(clean_redis):
    await join("r")
    assert clean_redis.zscore("queue:fallback", "r") is not None
    result = await join("c", "CHESS", fallback_after_ms=0)
    assert (result.partner, result.fallback) == ("r", True)


async def test_entering_fallback_keeps_the_users_enqueue_time_and_interest_places(
    clean_redis, clock
):
    await join("a", "P", fallback_after_ms=30_000)
    since = clock.now_us
    clock.advance(30)
    assert (await enter_fallback("a")).state == "WAITING"
    assert clean_redis.zscore("queue:fallback", "a") == since
    assert clean_redis.zscore("interest:P", "a") == since
    assert (await join("b", "P")).partner == "a"  # still matchable by interest


async def test_entering_fallback_matches_the_oldest_user_already_past_theirs(clock):
    await join("a", "P", fallback_after_ms=30_000)
    clock.advance(0.001)
    await join("b", "Q", fallback_after_ms=30_000)
    await enter_fallback("a")
    result = await enter_fallback("b")
    assert result.state == "MATCHED" and result.fallback
    assert (result.partner, result.partner_token, result.interest) == ("a", "t-a", "")


async def test_entering_fallback_is_gone_for_a_replaced_or_unqueued_stream(clean_redis):
    await join("a", "P", fallback_after_ms=30_000)
    assert (await enter_fallback("a", token="older-stream")).state == "GONE"
    assert (await enter_fallback("nobody")).state == "GONE"
    clean_redis.zrem("queue:waiting", "a")  # held a lease but no longer queued
    assert (await enter_fallback("a")).state == "GONE"
    assert clean_redis.zcard("queue:fallback") == 0


async def test_entering_fallback_without_a_chat_server_still_waits_in_fallback(clean_redis):
    await join("a", "P", fallback_after_ms=30_000)
    await join("b", "Q", fallback_after_ms=0)
    assert (await enter_fallback("a", servers=())).state == "WAITING"
    assert set(clean_redis.zrange("queue:fallback", 0, -1)) == {"a", "b"}


async def test_entering_fallback_undone_before_it_ran_changes_nothing(clean_redis):
    await join("a", "P", fallback_after_ms=30_000)
    clean_redis.set("undone:late", "1")
    assert (await enter_fallback("a", chat_id="late")).state == "UNDONE"
    assert clean_redis.zcard("queue:fallback") == 0

"""count_interests.lua (popularity buckets) and record_history.lua (the Overview's
hour), through the store's wrappers and reads."""

from __future__ import annotations

import pytest

from matchmaking import store

WINDOW_S = 600  # one-minute buckets
NOW_S = 1_800_000_030.0  # half a minute into bucket 30,000,000


async def test_interests_are_counted_per_request_in_the_bucket_of_their_time(clean_redis):
    await store.count_interests(["GAMING", "MUSIC"], WINDOW_S, NOW_S)
    await store.count_interests(["GAMING"], WINDOW_S, NOW_S + 20)
    await store.count_interests(["GAMING"], WINDOW_S, NOW_S + 40)  # the next bucket
    counts, hidden, shown = await store.popular_counts(WINDOW_S, NOW_S + 40)
    assert counts == {"GAMING": 3, "MUSIC": 1}
    assert (hidden, shown) == (set(), set())
    assert clean_redis.zscore("popular:60s:30000000", "GAMING") == 2
    assert clean_redis.zscore("popular:60s:30000001", "GAMING") == 1


async def test_a_bucket_lives_until_the_window_no_longer_reaches_it(clean_redis):
    await store.count_interests(["GAMING"], WINDOW_S, NOW_S)
    assert clean_redis.ttl("popular:60s:30000000") == WINDOW_S + 60 + 1


async def test_counts_older_than_the_window_are_not_read():
    await store.count_interests(["OLD"], WINDOW_S, NOW_S - 700)
    await store.count_interests(["RECENT"], WINDOW_S, NOW_S - 300)
    counts, _, _ = await store.popular_counts(WINDOW_S, NOW_S)
    assert counts == {"RECENT": 1}


async def test_a_full_bucket_keeps_what_is_asked_for_often_and_never_overcounts(
    clean_redis, monkeypatch
):
    monkeypatch.setattr(store, "POPULAR_CAPACITY", 3)
    for _ in range(5):
        await store.count_interests(["OFTEN"], WINDOW_S, NOW_S)
    await store.count_interests(["B", "C"], WINDOW_S, NOW_S)
    for rare in ("R1", "R2", "R3", "R4"):  # each takes the least counted one's place
        await store.count_interests([rare], WINDOW_S, NOW_S)
    assert clean_redis.zcard("popular:60s:30000000") == 3
    counts, _, _ = await store.popular_counts(WINDOW_S, NOW_S)
    # R3 and R4 hold the count each inherited plus its own request, and are shown as
    # their one; the rare ones before them were pushed out in turn.
    assert counts == {"OFTEN": 5, "R3": 1, "R4": 1}
    assert clean_redis.zscore("popular:60s:30000000", "R4") == 3
    assert clean_redis.zscore("popular:60s:30000000:over", "R4") == 2
    assert clean_redis.ttl("popular:60s:30000000:over") == WINDOW_S + 60 + 1


async def test_hiding_and_showing_an_interest_moves_it_between_the_two_sets(clean_redis):
    await store.hide_interest("FUBU", True)
    _, hidden, shown = await store.popular_counts(WINDOW_S, NOW_S)
    assert (hidden, shown) == ({"FUBU"}, set())
    await store.hide_interest("FUBU", False)
    _, hidden, shown = await store.popular_counts(WINDOW_S, NOW_S)
    assert (hidden, shown) == (set(), {"FUBU"})


MINUTE = 30_000_000


async def test_a_minute_adds_counters_and_keeps_the_most_users_seen_waiting(clean_redis):
    clean_redis.zadd("queue:waiting", {"a": 1, "b": 2})
    assert await store.record_history(MINUTE, {"matches": 2, "le:0.5": 1}, True) == 2
    clean_redis.zrem("queue:waiting", "b")
    assert await store.record_history(MINUTE, {"matches": 1}, True) == 1
    assert await store.history([MINUTE, MINUTE + 1]) == [
        {"le:0.5": 1.0, "matches": 3.0, "waiting": 2.0},
        {},
    ]


async def test_a_minute_expires_an_hour_after_it_ends(clean_redis):
    await store.record_history(MINUTE, {"matches": 1}, False)
    assert clean_redis.expiretime(store.history_key(MINUTE)) == (MINUTE + 1) * 60 + 3600


async def test_nothing_to_record_writes_nothing(clean_redis):
    assert await store.record_history(MINUTE, {}, False) == -1
    assert clean_redis.keys() == []


@pytest.mark.parametrize("sample_waiting", [True, False])
async def test_a_minute_never_exists_without_its_expiry(clean_redis, sample_waiting):
    await store.record_history(MINUTE, {"redis_errors": 1}, sample_waiting)
    assert clean_redis.expiretime(store.history_key(MINUTE)) > 0


async def test_a_turn_of_many_interests_is_counted_in_short_calls_and_the_rest_once(
    clean_redis, monkeypatch
):
    # A script blocks Redis while it runs: a burst of rare interests is split into
    # calls of a bounded size, and the history and match counters go in only one.
    calls = []
    script = store.BOOKKEEPING

    async def counted(*args, keys):
        calls.append(args)
        return await script(*args, keys=keys)

    monkeypatch.setattr(store, "BOOKKEEPING", counted)
    interests = {f"I{n}": 2 for n in range(store.BOOKKEEPING_INTERESTS_PER_CALL * 2 + 5)}
    waiting = await store.record_bookkeeping(
        30_000_000, {"matches": 3}, True, interests, WINDOW_S, NOW_S, {"interest": 3}
    )
    assert len(calls) == 3
    assert waiting == 0
    counts, _, _ = await store.popular_counts(WINDOW_S, NOW_S)
    assert counts == interests
    assert clean_redis.zscore(store.history_key(30_000_000), "matches") == 3
    assert clean_redis.hget("metrics:matches", "interest") == "3"

"""Popular interests: time buckets of bounded size, the per-process cache, moderation."""

from __future__ import annotations

import asyncio
import time

import pytest

from animochat.redis_client import background_done
from matchmaking import selectors, services, store


@pytest.fixture
def no_cache(monkeypatch):
    """Every read goes to Redis (the 2 s cache is tested on its own)."""
    monkeypatch.setattr(selectors, "POPULARITY_CACHE_SECONDS", 0)


async def join(user: str, *interests: str) -> services.MatcherReply:
    result = await services.enqueue_or_match(user, list(interests), "t-" + user)
    await background_done()
    return result


async def test_top_n_counts_requests_not_replacements(aredis, no_cache, settings):
    settings.POPULAR_BLOCKLIST = ()
    for i in range(3):
        await join(f"g{i}", "GAMING")
        await services.leave_queues(f"g{i}")
    await join("m", "MUSIC", "GAMING")
    await join("m", "MUSIC")  # replaces m's waiting stream: the same request, not counted
    assert await selectors.popular_interests(8) == [
        {"interest": "GAMING", "count": 4},
        {"interest": "MUSIC", "count": 1},
    ]
    assert await selectors.popular_interests(1) == [{"interest": "GAMING", "count": 4}]
    # The matcher script itself no longer writes popularity.
    assert not [key for key in await aredis.keys("*") if key.startswith("popular:index")]


def test_window_buckets():
    # One-minute buckets: a 600 s window is read from 11 of them, newest first.
    keys = store.popular_window_keys(600, 60 * 1000 + 30)
    assert keys[0] == "popular:60s:1000" and keys[-1] == "popular:60s:990" and len(keys) == 11
    # Long windows get longer buckets, never more than 21 of them.
    for window in (1, 59, 600, 1200, 1201, 86400, 7 * 86400):
        keys = store.popular_window_keys(window, 1_234_567_890.5)
        assert 1 <= len(keys) <= store.POPULAR_MAX_BUCKETS + 1


async def test_counts_outside_the_window_are_not_read(aredis, no_cache, settings):
    settings.POPULAR_WINDOW_SECONDS = 600
    now = time.time()
    await store.count_interests(["OLD"], 600, now - 700)
    await store.count_interests(["RECENT"], 600, now - 300)
    assert await selectors.popular_interests(8) == [{"interest": "RECENT", "count": 1}]
    # Each bucket expires once the window has passed it.
    [old_key] = [
        key for key in await aredis.keys("popular:*") if "OLD" in await aredis.zrange(key, 0, -1)
    ]
    assert 0 < await aredis.ttl(old_key) <= 600 + 60 + 1


async def test_a_full_bucket_keeps_what_is_asked_for_often(aredis, no_cache, monkeypatch):
    monkeypatch.setattr(store, "POPULAR_CAPACITY", 10)
    now = time.time()
    for n in range(60):
        await store.count_interests([f"RARE{n:02d}"], 600, now)
        if n % 4 == 0:
            await store.count_interests(["OFTEN"], 600, now)
    key = store.popular_window_keys(600, now)[0]
    assert await aredis.zcard(key) == 10
    ranking = await selectors.popular_interests(10)
    # OFTEN (a fifth of the requests, 15) stayed in; the rare ones that took a place
    # inherited a count, which is not shown: each was asked for once.
    assert ranking[0] == {"interest": "OFTEN", "count": 15}
    assert [row["count"] for row in ranking[1:]] == [1] * 9


async def test_hidden_interests(aredis, no_cache, settings):
    settings.POPULAR_BLOCKLIST = ("NUDES",)
    for interest in ("NUDES", "ANIME", "SPAM"):
        await store.count_interests([interest], 600, time.time())
    shown = await selectors.popular_interests(8)
    assert [row["interest"] for row in shown] == ["ANIME", "SPAM"]
    await services.hide_popular_interest("SPAM")
    await services.hide_popular_interest("NUDES", hidden=False)
    assert [row["interest"] for row in await selectors.popular_interests(8)] == ["ANIME", "NUDES"]
    hidden = (await selectors.popularity()).hidden
    assert hidden == {"SPAM"}
    # Hidden interests still count for the estimated wait.
    assert (await selectors.popularity()).counts["SPAM"] == 1
    await services.hide_popular_interest("NUDES")
    await services.hide_popular_interest("SPAM", hidden=False)
    assert [row["interest"] for row in await selectors.popular_interests(8)] == ["ANIME", "SPAM"]


def calls_of(monkeypatch, name: str) -> list[tuple]:
    """The arguments of every call of ``store.<name>`` from now on (it still runs)."""
    calls = []
    function = getattr(store, name)

    async def counting(*args, **kwargs):
        calls.append(args)
        return await function(*args, **kwargs)

    monkeypatch.setattr(store, name, counting)
    return calls


@pytest.fixture
def redis_reads(monkeypatch):
    """How many times popularity was read from Redis."""
    return calls_of(monkeypatch, "popular_counts")


async def test_the_cache_is_read_again_only_once_stale(aredis, monkeypatch, redis_reads):
    # A long lifetime, so a slow machine cannot make it lapse within the test.
    monkeypatch.setattr(selectors, "POPULARITY_CACHE_SECONDS", 60)
    await store.count_interests(["FIRST"], 600, time.time())
    first = await selectors.popular_interests(8)
    await store.count_interests(["SECOND"], 600, time.time())
    assert await selectors.popular_interests(8) == first  # from the cache
    assert len(redis_reads) == 1
    monkeypatch.setattr(selectors, "POPULARITY_CACHE_SECONDS", 0)
    assert len(await selectors.popular_interests(8)) == 2
    assert len(redis_reads) == 2


async def test_concurrent_readers_share_one_read(aredis, redis_reads):
    await asyncio.gather(*(selectors.popular_interests(8) for _ in range(20)))
    assert len(redis_reads) == 1


async def test_the_arrivals_of_one_turn_are_counted_by_one_write(aredis, no_cache, monkeypatch):
    writes = calls_of(monkeypatch, "record_bookkeeping")
    users = [(f"t{n}", ["TURN", f"OWN{n}"]) for n in range(12)]
    # Matcher replies read from one batch resume their callers in the same turn.
    results = await asyncio.gather(
        *(services.enqueue_or_match(user, interests, "t-" + user) for user, interests in users)
    )
    await background_done()
    matched = [result for result in results if result.state == services.MATCHED_STATE]
    assert len(matched) == 6  # the TURN queue paired them off
    assert len(writes) < len(users)
    counts = (await selectors.popularity()).counts
    assert counts["TURN"] == 12 and all(counts[f"OWN{n}"] == 1 for n in range(12))
    # Confirmed matches are counted for /metrics the same way: once each.
    writes.clear()
    await asyncio.gather(*(services.confirm_match(r, "x", "t-x") for r in matched))
    await background_done()
    assert len(writes) == 1
    assert sum(map(int, (await aredis.hgetall("metrics:matches")).values())) == 6
    assert (await aredis.hgetall("metrics:matches")) == {"1:0": "6"}

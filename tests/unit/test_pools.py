"""Match pools on one Redis: each pool's keys under its prefix (the pool named default
keeps the names it had before pools), users meeting only within their pool, and the
reads that add the pools up."""

from __future__ import annotations

import pytest

from animochat import pools
from matchmaking import selectors, services, store
from sessions_app import store as session_store
from tests.unit.matching import join


@pytest.fixture(autouse=True)
def two_pools(settings):
    settings.MATCH_POOLS = ("default", "eu")


async def test_users_meet_only_within_their_pool(clean_redis):
    assert (await join("a", "X", pool="eu")).state == "WAITING"
    assert (await join("b", "X")).state == "WAITING"
    matched = await join("c", "X", pool="eu")
    assert (matched.state, matched.partner) == ("MATCHED", "a")
    assert (await join("d", "X")).partner == "b"


async def test_the_default_pool_keeps_its_names_and_another_pool_has_its_prefix(clean_redis):
    await join("a", "X")
    await join("b", "Y", pool="eu")
    assert pools.key_prefix("default") == ""
    keys = set(clean_redis.keys())
    assert {"interest:X", "lease:a", "user_interests:a", "queue:waiting"} <= keys
    assert {"{p:eu}interest:Y", "{p:eu}lease:b", "{p:eu}queue:waiting"} <= keys
    assert not [key for key in keys if "b" in key and not key.startswith("{p:eu}")]


def test_on_a_cluster_every_pool_has_its_hash_tag(settings):
    settings.REDIS_CLUSTER_NODES = (("127.0.0.1", 7100),)
    assert [pools.key_prefix(pool) for pool in settings.MATCH_POOLS] == ["{p:default}", "{p:eu}"]
    assert set(store.pool_keys("eu")) == {
        "{p:eu}",
        *(f"{{p:eu}}{name}" for name in ("sessions:active", "queue:waiting", "queue:interests")),
        *(f"{{p:eu}}{name}" for name in ("queue:sizes", "queue:fallback", "service:maintenance")),
        "{p:eu}chat_servers:discovered",
        "{p:eu}chat_servers:rr",
    }


async def test_a_session_is_found_and_ended_whatever_its_pool(clean_redis):
    await join("a", "X", pool="eu")
    chat_id = (await join("b", "X", pool="eu")).chat_id
    assert (await session_store.get_user_session("a"))["chatId"] == chat_id
    ended = await session_store.end_user_session("b")
    assert ended["chatId"] == chat_id
    assert await session_store.get_user_session("a") is None
    assert await session_store.end_user_session("a") is None


async def test_arriving_in_another_pool_gives_up_the_place_and_session_left_there(clean_redis):
    await join("a", "X", pool="eu", token="inbox.1!specific.old")
    moved = await services.enqueue_or_match("a", ["X"], "inbox.1!specific.new", pool="default")
    assert moved.state == "WAITING"
    assert moved.other_replaced_tokens == ("inbox.1!specific.old",)
    assert clean_redis.zcard("{p:eu}queue:waiting") == 0
    assert not clean_redis.exists("{p:eu}lease:a", "{p:eu}interest:X")
    await join("p", "Y", pool="eu")
    await join("q", "Y", pool="eu")
    await services.enqueue_or_match("q", ["Z"], "inbox.1!specific.q2", pool="default")
    assert await session_store.get_user_session("p") is None  # ended for both


async def test_cancelling_finds_the_place_in_any_pool(clean_redis):
    await join("a", "X", pool="eu", token="inbox.1!specific.a")
    assert await store.cancel_waiting("a") == (True, ["inbox.1!specific.a"])
    assert clean_redis.zcard("{p:eu}queue:waiting") == 0


async def test_metrics_popularity_and_queues_add_the_pools_up(clean_redis, clock):
    for pool in ("default", "eu"):
        await services.enqueue_or_match(f"a-{pool}", ["X"], f"t-a-{pool}", pool=pool)
        result = await services.enqueue_or_match(f"b-{pool}", ["X"], f"t-b-{pool}", pool=pool)
        await services.complete_match(result, f"b-{pool}", f"t-b-{pool}")
        await services.enqueue_or_match(f"w-{pool}", ["W"], f"t-w-{pool}", pool=pool)
    await services.Bookkeeping.this_turn("default").write()
    await services.Bookkeeping.this_turn("eu").write()
    matches, _, waiting = await store.match_metrics()
    assert matches == {"1:0": "2"} and waiting == 2
    counts, _, _ = await store.popular_counts(600, clock())
    assert counts == {"X": 4, "W": 2}
    assert await store.largest_queues(10) == (2, 2, {"W": 2})
    _, total, _, rows = await store.queue_heads()
    assert total == 2 and [(interest, size) for interest, size, _ in rows] == [("W", 2)]
    _, size, page = await store.queue_page("W", 0, 10)
    assert size == 2 and {row[0] for row in page} == {"w-default", "w-eu"}
    assert (await selectors.queue_overview()).users_in_queue == 2


async def test_the_sweep_and_maintenance_cover_every_pool(clean_redis, clock):
    await join("a", "X", pool="eu", lease_ms=1_000)
    await join("b", "Y", lease_ms=1_000)
    clock.advance(2)
    assert services.sweep_lapsed_waiters(clean_redis) == 2
    await store.set_maintenance_flag(True)
    assert (await join("c", "X", pool="eu")).state == "MAINTENANCE"
    assert (await join("d", "X")).state == "MAINTENANCE"

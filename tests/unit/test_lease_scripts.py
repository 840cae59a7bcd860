"""renew_lease.lua, leave_queues.lua and sweep_lapsed_waiters.lua: a waiting user's
place belongs to the stream holding its lease, and lapses with it."""

from __future__ import annotations

from matchmaking import services, store
from tests.unit.matching import LEASE_MS, join, waiting


async def renew(user: str, token: str | None = None, lease_ms: int = LEASE_MS) -> list:
    return await store.renew_lease(user, token or f"t-{user}", lease_ms)


async def test_renewing_extends_the_lease_and_tells_who_else_waits(clean_redis, clock):
    await join("a", "X", cooldown_ms=60_000)
    await join("b", "X", cooldown_ms=60_000)
    await join("a", "X", cooldown_ms=60_000)
    await join("b", "X", "Y", cooldown_ms=60_000)  # kept apart: both wait
    clock.advance(20)
    assert await renew("a") == ["WAITING", 1]
    assert clean_redis.pttl("lease:a") == LEASE_MS
    clock.advance(20)
    assert (await join("c", "X")).partner == "a"  # renewed in time; b's lease lapsed


async def test_renewing_says_taken_when_a_newer_stream_holds_the_place(clean_redis):
    await join("a", "X", token="old")
    await join("a", "X", token="new")
    assert await renew("a", token="old") == ["TAKEN"]
    assert clean_redis.pttl("lease:a") == LEASE_MS


async def test_renewing_says_gone_once_matched_cancelled_or_lapsed(clock):
    assert await renew("nobody") == ["GONE"]
    await join("a", "X")
    await join("b", "X")
    assert await renew("a") == ["GONE"]
    await join("c", "Y")
    clock.advance(LEASE_MS / 1000 + 0.001)
    assert await renew("c") == ["GONE"]


async def test_leaving_needs_the_stream_holding_the_place(clean_redis):
    await join("a", "X", "Y", fallback_after_ms=0, token="new")
    assert not await store.leave_queues("a", "replaced-stream")
    assert list(waiting(clean_redis)) == ["a"]
    assert await store.leave_queues("a", "new")
    assert waiting(clean_redis) == {}
    for key in ("lease:a", "user_interests:a", "interest:X", "interest:Y", "queue:fallback"):
        assert not clean_redis.exists(key), key
    assert not clean_redis.exists("queue:sizes", "queue:interests")
    assert not await store.leave_queues("a", "new")


async def test_cancelling_removes_whichever_stream_holds_the_place(clean_redis):
    await join("a", "X")
    assert await store.leave_queues("a", "")
    assert waiting(clean_redis) == {} and not clean_redis.exists("lease:a")
    assert not await store.leave_queues("a", "")


async def test_a_cancel_learns_the_channel_of_the_stream_it_removed(clean_redis):
    await join("a", "X", token="inbox.1!specific.s1")
    assert await store.cancel_waiting("a") == (True, ["inbox.1!specific.s1"])
    assert await store.cancel_waiting("a") == (False, [])


async def test_leaving_one_queue_keeps_the_sizes_of_the_others_true(clean_redis):
    await join("a", "X", "Y")
    clean_redis.zadd("interest:X", {"other": 1})  # someone kept apart, say
    await store.leave_queues("a", "t-a")
    assert clean_redis.zrange("queue:sizes", 0, -1, withscores=True) == [("X", 1)]
    assert clean_redis.smembers("queue:interests") == {"X"}


async def test_a_sweep_removes_every_lapsed_waiter_and_only_them(clean_redis, clock):
    for n in range(7):
        lease_ms = 1_000 if n % 2 == 0 else 600_000
        await join(f"u{n}", f"I{n}", lease_ms=lease_ms)
        clock.advance(0.001)
    clock.advance(2)
    assert services.sweep_lapsed_waiters(clean_redis, batch=2) == 4
    assert list(waiting(clean_redis)) == ["u1", "u3", "u5"]
    assert clean_redis.smembers("queue:interests") == {"I1", "I3", "I5"}
    assert not clean_redis.exists("interest:I0", "user_interests:u0")
    assert services.sweep_lapsed_waiters(clean_redis, batch=2) == 0


async def test_a_sweep_batch_returns_where_the_next_one_starts(clean_redis, clock):
    for n in range(3):
        await join(f"u{n}", f"I{n}", lease_ms=1_000 if n == 0 else 600_000)
        clock.advance(0.001)
    clock.advance(2)
    assert store.sweep_lapsed_waiters(clean_redis, 0, 2) == (1, 1)  # u0 removed: u2 is rank 1
    assert store.sweep_lapsed_waiters(clean_redis, 1, 2) == (-1, 0)


def test_the_sweep_command_sweeps_with_the_client_it_is_handed(clean_redis, clock):
    clean_redis.zadd("queue:waiting", {"ghost": 1, "live": 2})
    clean_redis.sadd("user_interests:ghost", "X")
    clean_redis.zadd("interest:X", {"ghost": 1})
    clean_redis.set("lease:live", "t")
    assert services.sweep_lapsed_waiters(clean_redis, batch=1) == 1
    assert list(waiting(clean_redis)) == ["live"]
    assert not clean_redis.exists("interest:X", "user_interests:ghost")

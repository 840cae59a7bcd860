"""Redis access for matchmaking: key names and the Lua scripts, nothing else.

The key layout is documented in ``matchmaking/lua/lib.lua`` (the session keys in
``sessions_app/lua/lib.lua``) and the README. The queues, leases, sessions and counters
belong to a match pool and carry its prefix (:mod:`animochat.pools`); every script call
passes the pool's keys in ``KEYS`` (:func:`pool_keys`, then the call's own), so on Redis
Cluster it runs on the primary of the pool's slot. Reads for ``/status``, ``/metrics``,
popularity and the admin add the pools up. Tickets and stream slots are not a pool's.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

import redis

from animochat.pools import default_pool, key_prefix, pools
from animochat.redis_client import LuaScript, cluster_mode, command_batcher, get_redis
from sessions_app import store as session_store

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Every script gets the session library (the matcher ends and creates sessions) and the
# matching one.
LUA_LIBRARIES = (session_store.LUA_LIBRARY, LUA_DIR / "lib.lua")


def lua_script(name: str) -> LuaScript:
    return LuaScript(LUA_DIR / f"{name}.lua", libraries=LUA_LIBRARIES)


ENQUEUE_OR_MATCH = lua_script("enqueue_or_match")
RENEW_LEASE = lua_script("renew_lease")
ENTER_FALLBACK = lua_script("enter_fallback")
CONFIRM_MATCH = lua_script("confirm_match")
UNDO_MATCH = lua_script("undo_match")
LEAVE_QUEUES = lua_script("leave_queues")
BOOKKEEPING = lua_script("bookkeeping")
LEAVE_POOL = lua_script("leave_pool")
STREAM_SLOT = LuaScript(LUA_DIR / "stream_slot.lua")  # no pool's: no library
SWEEP_LAPSED_WAITERS = lua_script("sweep_lapsed_waiters")

# A pool's keys without its prefix (see pool_key).
MAINTENANCE_KEY = "service:maintenance"
WAITING_KEY = "queue:waiting"
QUEUED_INTERESTS_KEY = "queue:interests"
QUEUE_SIZES_KEY = "queue:sizes"
FALLBACK_KEY = "queue:fallback"
DISCOVERED_KEY = "chat_servers:discovered"  # discovery's heartbeat writes each pool's copy
TURN_KEY = "chat_servers:rr"


def pool_key(name: str, pool: str | None = None) -> str:
    """``name`` in ``pool`` (default: the first of ``MATCH_POOLS``)."""
    return key_prefix(pool if pool is not None else default_pool()) + name


def pool_keys(pool: str | None = None) -> list[str]:
    """``KEYS[1..9]`` of every script using ``lua/lib.lua``, in its order."""
    return list(_pool_keys(key_prefix(pool if pool is not None else default_pool())))


@functools.cache
def _pool_keys(prefix: str) -> tuple[str, ...]:
    # Every script call sends them: made once per prefix, not per call.
    return (
        prefix,
        prefix + session_store.ACTIVE_SESSIONS_KEY,
        *(
            prefix + name
            for name in (
                WAITING_KEY,
                QUEUED_INTERESTS_KEY,
                QUEUE_SIZES_KEY,
                FALLBACK_KEY,
                DISCOVERED_KEY,
                TURN_KEY,
                MAINTENANCE_KEY,
            )
        ),
    )


def call_keys(pool: str | None, chat_id: str, user_id: str) -> list[str]:
    """``KEYS[1..15]`` of a call for ``user_id`` given ``chat_id`` (see its script)."""
    return [
        *pool_keys(pool),
        attempt_key(chat_id, pool),
        pool_key(f"undone:{chat_id}", pool),
        lease_key(user_id, pool),
        user_interests_key(user_id, pool),
        session_store.user_session_key(user_id, pool),
        pool_key(f"recent:{user_id}", pool),
    ]


TICKET_USED = "used"  # never a ticket's value otherwise: those are "user:<userId>"


def ticket_key(ticket_hash: str) -> str:
    return f"ticket:{ticket_hash}"


async def store_ticket(ticket_hash: str, user_id: str, ttl_s: int) -> None:
    await get_redis().set(ticket_key(ticket_hash), f"user:{user_id}", ex=ttl_s)


async def use_ticket(ticket_hash: str, used_ttl_s: int) -> str | None:
    """Mark the ticket used and return what it held before (one atomic ``SET XX GET``):
    ``"user:<userId>"`` the first time, :data:`TICKET_USED` after, None if unknown."""
    return await get_redis().set(
        ticket_key(ticket_hash), TICKET_USED, xx=True, get=True, ex=used_ttl_s
    )


def queue_key(interest: str, pool: str | None = None) -> str:
    return pool_key(f"interest:{interest}", pool)


def user_interests_key(user_id: str, pool: str | None = None) -> str:
    return pool_key(f"user_interests:{user_id}", pool)


def lease_key(user_id: str, pool: str | None = None) -> str:
    return pool_key(f"lease:{user_id}", pool)


async def enqueue_or_match(
    user_id: str,
    interests: list[str],
    token: str,
    chat_id: str,
    *,
    lease_ms: int,
    session_ttl_s: int,
    maintenance_default: bool,
    cooldown_ms: int,
    fallback_after_ms: int,
    fallback_servers: tuple[str, ...],
    pool: str | None = None,
) -> list:
    return await ENQUEUE_OR_MATCH(
        user_id,
        token,
        lease_ms,
        chat_id,
        session_ttl_s,
        "1" if maintenance_default else "0",
        cooldown_ms,
        fallback_after_ms,
        len(fallback_servers),
        *fallback_servers,
        *interests,
        keys=(*call_keys(pool, chat_id, user_id), *(queue_key(i, pool) for i in interests)),
    )


async def enter_fallback(
    user_id: str,
    token: str,
    chat_id: str,
    *,
    session_ttl_s: int,
    cooldown_ms: int,
    fallback_servers: tuple[str, ...],
    pool: str | None = None,
) -> list:
    return await ENTER_FALLBACK(
        user_id,
        token,
        chat_id,
        session_ttl_s,
        cooldown_ms,
        len(fallback_servers),
        *fallback_servers,
        keys=call_keys(pool, chat_id, user_id),
    )


# What confirm_match.lua answers.
UNDONE, CONFIRMED_BEFORE, CONFIRMED_NOW = 0, 1, 2


async def confirm_match(chat_id: str, pool: str | None = None) -> int:
    """See ``lua/confirm_match.lua``: UNDONE, CONFIRMED_BEFORE or CONFIRMED_NOW."""
    keys = (*pool_keys(pool), attempt_key(chat_id, pool), pool_key(f"undone:{chat_id}", pool))
    return int(await CONFIRM_MATCH(keys=keys))


async def undo_match(
    chat_id: str, user_id: str, token: str, lease_ms: int, pool: str | None = None
) -> list:
    """See ``lua/undo_match.lua``."""
    return await UNDO_MATCH(
        chat_id, user_id, token, lease_ms, keys=call_keys(pool, chat_id, user_id)
    )


def attempt_key(chat_id: str, pool: str | None = None) -> str:
    return pool_key(f"attempt:{chat_id}", pool)


async def user_session_and_pending(
    user_id: str, pool: str | None = None
) -> tuple[dict[str, Any] | None, bool]:
    """The user's session in ``pool``, and whether its match still waits for its
    confirmation.

    Both are read in one transaction (the keys share the pool's slot): an undo between
    two separate reads would show a session just undone as a confirmed one.
    """
    redis = get_redis()
    chat_id = await redis.get(session_store.user_session_key(user_id, pool))
    if chat_id is None:
        return None, False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(session_store.session_key(chat_id, pool))
        pipe.exists(attempt_key(chat_id, pool))
        raw, pending = await pipe.execute()
    return (json.loads(raw), bool(pending)) if raw else (None, False)


def user_keys(user_id: str, pool: str | None = None) -> tuple[str, ...]:
    """The pool's keys, then the user's lease and interests."""
    return (*pool_keys(pool), lease_key(user_id, pool), user_interests_key(user_id, pool))


async def renew_lease(user_id: str, token: str, lease_ms: int, pool: str | None = None) -> list:
    return await RENEW_LEASE(user_id, token, lease_ms, keys=user_keys(user_id, pool))


async def leave_queues(user_id: str, token: str, pool: str | None = None) -> bool:
    """Whether the user was waiting and is removed; see ``lua/leave_queues.lua``."""
    removed, _ = await LEAVE_QUEUES(user_id, token, keys=user_keys(user_id, pool))
    return bool(removed)


async def cancel_waiting(user_id: str) -> tuple[bool, list[str]]:
    """:func:`leave_queues` for whichever stream holds the place, in every pool: whether
    the user was waiting, and the tokens of the streams that held a place (the channels
    to tell)."""
    replies = await asyncio.gather(
        *(LEAVE_QUEUES(user_id, "", keys=user_keys(user_id, pool)) for pool in pools())
    )
    return any(removed for removed, _ in replies), [owner for _, owner in replies if owner]


async def leave_other_pools(user_id: str, pool: str) -> list[str]:
    """A user arriving in ``pool`` gives up their place and ends their session in every
    other pool (``lua/leave_pool.lua``); the tokens of the streams that held a place."""
    others = [other for other in pools() if other != pool]
    owners = await asyncio.gather(
        *(
            LEAVE_POOL(
                user_id,
                keys=(
                    *pool_keys(other),
                    lease_key(user_id, other),
                    session_store.user_session_key(user_id, other),
                ),
            )
            for other in others
        )
    )
    return [owner for owner in owners if owner]


def sweep_lapsed_waiters(
    client: redis.Redis, cursor: int, count: int, pool: str | None = None
) -> tuple[int, int]:
    """One batch of the sweep of ``pool``, on ``manage.py sweep_queues``' synchronous
    client; see ``lua/sweep_lapsed_waiters.lua``."""
    next_cursor, removed = SWEEP_LAPSED_WAITERS.call_sync(
        client, cursor, count, keys=tuple(pool_keys(pool))
    )
    return int(next_cursor), int(removed)


def stream_slots_key(client: str) -> str:
    return f"streams:{client}"


async def claim_stream_slot(client: str, token: str, most: int, lease_ms: int) -> bool:
    keys = (stream_slots_key(client),)
    return bool(await STREAM_SLOT(token, lease_ms, "claim", most, keys=keys))


async def renew_stream_slot(client: str, token: str, lease_ms: int) -> bool:
    return bool(await STREAM_SLOT(token, lease_ms, "renew", keys=(stream_slots_key(client),)))


async def release_stream_slot(client: str, token: str) -> None:
    await command_batcher().execute("ZREM", stream_slots_key(client), token)


MATCH_METRICS_KEY = "metrics:matches"
TIME_TO_MATCH_KEY = "metrics:time_to_match"


def _add_up(counters: list[dict[str, str]]) -> dict[str, str]:
    """Counters of every pool, field by field."""
    total: Counter[str] = Counter()
    for counter in counters:
        total.update({field: int(value) for field, value in counter.items()})
    return {field: str(value) for field, value in total.items()}


async def match_metrics() -> tuple[dict[str, str], dict[str, str], int]:
    """The matcher's counters (see lib.lua) and the number of users waiting, added up
    over every pool."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.hgetall(pool_key(MATCH_METRICS_KEY, pool))
            pipe.hgetall(pool_key(TIME_TO_MATCH_KEY, pool))
            pipe.zcard(pool_key(WAITING_KEY, pool))
        replies = await pipe.execute()
    return _add_up(replies[0::3]), _add_up(replies[1::3]), sum(replies[2::3])


# The last hour, per minute (the admin's Overview): one sorted set per minute and pool
# whose members are counters (ZINCRBY: matches, one time-to-match bucket per match, Redis
# errors) and a maximum (ZADD GT: users waiting). Each expires an hour after its minute,
# so at most 61 per pool exist whatever the traffic.
HISTORY_KEEP_SECONDS = 3600
HISTORY_MATCHES = "matches"
HISTORY_WAITING = "waiting"
HISTORY_REDIS_ERRORS = "redis_errors"


def history_key(minute: int, pool: str | None = None) -> str:
    """``minute``: whole minutes since the epoch."""
    return pool_key(f"history:{minute}", pool)


async def record_history(
    minute: int, counts: dict[str, int], sample_waiting: bool, pool: str | None = None
) -> int:
    """Add ``counts`` (member -> increment) to ``minute`` and, if ``sample_waiting``, the
    users waiting now as a candidate maximum; returns that number (-1 if not sampled)."""
    return await record_bookkeeping(minute, counts, sample_waiting, pool=pool)


# Distinct interests counted per bookkeeping call: each costs a few sorted-set
# commands inside the script, so a call stays well under a millisecond.
BOOKKEEPING_INTERESTS_PER_CALL = 64


def _pairs(counts: Mapping[str, int]) -> list[Any]:
    return [len(counts), *(item for pair in counts.items() for item in pair)]


async def record_bookkeeping(
    minute: int,
    counts: Mapping[str, int],
    sample_waiting: bool,
    interests: Mapping[str, int] | None = None,
    window_s: int = 0,
    now_s: float = 0.0,
    matches: Mapping[str, int] | None = None,
    time_to_match: Mapping[str, int] | None = None,
    pool: str | None = None,
) -> int:
    """Calls of ``lua/bookkeeping.lua`` in ``pool``: :func:`record_history`'s ``counts``
    and sample; requests per interest (``interests``) in the popularity bucket of
    ``now_s``; the match counters ``/metrics`` reads (field -> increment). Returns the
    users waiting recorded, or -1.

    One call, unless a turn brought more than ``BOOKKEEPING_INTERESTS_PER_CALL``
    distinct interests: a script blocks Redis while it runs, so a burst of rare
    interests is counted in several short calls rather than one long one.
    """
    pool = pool if pool is not None else default_pool()
    bucket_s = popular_bucket_seconds(window_s) if interests else 1
    bucket = popular_bucket_key(bucket_s, int(now_s // bucket_s), pool)
    keys = (
        *pool_keys(pool),
        history_key(minute, pool),
        bucket,
        f"{bucket}:over",
        pool_key(MATCH_METRICS_KEY, pool),
        pool_key(TIME_TO_MATCH_KEY, pool),
    )
    items = list((interests or {}).items())
    chunks = [
        dict(items[start : start + BOOKKEEPING_INTERESTS_PER_CALL])
        for start in range(0, len(items), BOOKKEEPING_INTERESTS_PER_CALL)
    ] or [{}]

    def call(chunk: Mapping[str, int], first: bool) -> Awaitable[Any]:
        return BOOKKEEPING(
            (minute + 1) * 60 + HISTORY_KEEP_SECONDS,
            "1" if sample_waiting and first else "0",
            *_pairs(counts if first else {}),
            POPULAR_CAPACITY,
            # Kept until the window no longer reaches it: the bucket ends within bucket_s.
            window_s + bucket_s + 1,
            *_pairs(chunk),
            *_pairs((matches or {}) if first else {}),
            *_pairs((time_to_match or {}) if first else {}),
            keys=keys,
        )

    replies = await asyncio.gather(*(call(chunk, n == 0) for n, chunk in enumerate(chunks)))
    return int(replies[0])


async def history(minutes: list[int]) -> list[dict[str, float]]:
    """Each minute's members and values, in the order of ``minutes``, added up over
    every pool (users waiting: the sum of each pool's most)."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for minute in minutes:
            for pool in pools():
                pipe.zrange(history_key(minute, pool), 0, -1, withscores=True)
        replies = await pipe.execute()
    per_pool = len(pools())
    added: list[dict[str, float]] = []
    for start in range(0, len(replies), per_pool):
        total: dict[str, float] = {}
        for reply in replies[start : start + per_pool]:
            for member, value in reply:
                total[member] = total.get(member, 0.0) + value
        added.append(total)
    return added


async def get_maintenance_flag() -> str | None:
    """The flag as the first pool holds it (every pool holds the same)."""
    return await get_redis().get(pool_key(MAINTENANCE_KEY))


async def set_maintenance_flag(on: bool) -> None:
    """In every pool: each pool's matcher reads its own copy, in its slot."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.set(pool_key(MAINTENANCE_KEY, pool), "1" if on else "0")
        await pipe.execute()


# Popularity: requests per interest counted in time buckets (see bookkeeping.lua), per
# pool; read added up over the pools.
# A bucket tracks at most POPULAR_CAPACITY interests, and a window is covered by at most
# POPULAR_MAX_BUCKETS + 1 buckets, so both counting an arrival and reading the window
# cost the same whatever the number of distinct interests ever asked for.
POPULAR_CAPACITY = 300
POPULAR_MAX_BUCKETS = 20
POPULAR_MIN_BUCKET_SECONDS = 60
HIDDEN_INTERESTS_KEY = "popular:hidden"  # SET: interests the admin hid (no pool's)
SHOWN_INTERESTS_KEY = "popular:shown"  # SET: interests of POPULAR_BLOCKLIST the admin showed


def popular_bucket_seconds(window_s: int) -> int:
    """One minute, or longer for windows of over 20 minutes (at most 21 buckets)."""
    return max(POPULAR_MIN_BUCKET_SECONDS, -(-window_s // POPULAR_MAX_BUCKETS))


def popular_bucket_key(bucket_s: int, number: int, pool: str | None = None) -> str:
    return pool_key(f"popular:{bucket_s}s:{number}", pool)


def popular_window_keys(window_s: int, now_s: float, pool: str | None = None) -> list[str]:
    """The buckets covering the window up to ``now_s``, newest first."""
    bucket_s = popular_bucket_seconds(window_s)
    current = int(now_s // bucket_s)
    first = int((now_s - window_s) // bucket_s)
    return [popular_bucket_key(bucket_s, n, pool) for n in range(current, first - 1, -1)]


async def count_interests(
    interests: list[str], window_s: int, now_s: float, pool: str | None = None
) -> None:
    """Count one request for each of ``interests`` (see :func:`record_bookkeeping`)."""
    minute = int(now_s // 60)
    await record_bookkeeping(
        minute, {}, False, dict.fromkeys(interests, 1), window_s, now_s, pool=pool
    )


async def popular_counts(window_s: int, now_s: float) -> tuple[dict[str, int], set[str], set[str]]:
    """Requests per interest within the window over every pool (at least; at most
    POPULAR_CAPACITY per bucket tracked), and the interests hidden and shown by the
    admin: one round trip."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for pool in pools():
            keys = popular_window_keys(window_s, now_s, pool)
            # Counts less what a full bucket may have over-counted (bookkeeping.lua); one
            # pool's buckets share its slot, so one ZUNION adds them.
            pipe.zunion(
                {key: 1 for key in keys} | {f"{key}:over": -1 for key in keys}, withscores=True
            )
        pipe.smembers(HIDDEN_INTERESTS_KEY)
        pipe.smembers(SHOWN_INTERESTS_KEY)
        *per_pool, hidden, shown = await pipe.execute()
    counted: Counter[str] = Counter()
    for counts in per_pool:
        counted.update({interest: int(count) for interest, count in counts if count > 0})
    return dict(counted), hidden, shown


async def hide_interest(interest: str, hidden: bool) -> None:
    """Hide ``interest`` from popular interests (or show it again), for every instance."""
    add, remove = (
        (HIDDEN_INTERESTS_KEY, SHOWN_INTERESTS_KEY)
        if hidden
        else (SHOWN_INTERESTS_KEY, HIDDEN_INTERESTS_KEY)
    )
    # One transaction on a single Redis; on a cluster the two sets are in different
    # slots, so the two writes go apart (a reader between them sees the interest in
    # both sets, or in neither, for an instant).
    async with get_redis().pipeline(transaction=not cluster_mode()) as pipe:
        pipe.sadd(add, interest)
        pipe.srem(remove, interest)
        await pipe.execute()


async def largest_queues(count: int) -> tuple[int, int, dict[str, int]]:
    """Users waiting overall, the number of queues (an interest's queue in each pool
    where it has one) and the ``count`` largest interests, their queues added up over
    the pools (largest first): O(pools * (log n + count))."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.zcard(pool_key(WAITING_KEY, pool))
            pipe.zcard(pool_key(QUEUE_SIZES_KEY, pool))
            pipe.zrange(pool_key(QUEUE_SIZES_KEY, pool), 0, count - 1, desc=True, withscores=True)
        replies = await pipe.execute()
    sizes: Counter[str] = Counter()
    for largest in replies[2::3]:
        sizes.update({interest: int(size) for interest, size in largest})
    return sum(replies[0::3]), sum(replies[1::3]), dict(sizes.most_common(count))


# Reads for the admin dashboard, added up over every pool. Times are Redis TIME (µs),
# the clock of the scores.


async def queue_heads() -> tuple[int, int, float | None, list[tuple[str, int, float | None]]]:
    """Now, users waiting, the oldest enqueue time, and ``(interest, size, oldest)``
    for every interest with a queue in any pool: O(pools * interests with a queue)."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for pool in pools():
            pipe.smembers(pool_key(QUEUED_INTERESTS_KEY, pool))
        (seconds, micros), *queued = await pipe.execute()
    keys = {None: [pool_key(WAITING_KEY, pool) for pool in pools()]}
    for pool, interests in zip(pools(), queued, strict=True):
        for interest in interests:
            keys.setdefault(interest, []).append(queue_key(interest, pool))
    async with redis.pipeline(transaction=False) as pipe:
        for key in (key for group in keys.values() for key in group):
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
        replies = iter(await pipe.execute())
    heads = {}
    for interest, group in keys.items():
        size, oldest = 0, None
        for _ in group:
            queue_size, head = next(replies), next(replies)
            size += queue_size
            if head and (oldest is None or head[0][1] < oldest):
                oldest = head[0][1]
        heads[interest] = (size, oldest)
    total, oldest = heads.pop(None)
    rows = [(interest, *heads[interest]) for interest in sorted(heads)]
    return seconds * 1_000_000 + micros, total, oldest, rows


async def queue_page(
    interest: str | None, offset: int, count: int
) -> tuple[int, int, list[tuple[str, float, set[str], int]]]:
    """Now, the queue's size and ``count`` of its users from ``offset``, longest waiting
    first, as ``(user, enqueued, interests, lease ms left)``; ``interest=None`` is the
    queue of every waiting user. Every pool's queue of the interest, merged by enqueue
    time: O(pools * (log n + offset + count))."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for pool in pools():
            key = queue_key(interest, pool) if interest is not None else pool_key(WAITING_KEY, pool)
            pipe.zcard(key)
            pipe.zrange(key, 0, offset + count - 1, withscores=True)
        (seconds, micros), *replies = await pipe.execute()
    size = sum(replies[0::2])
    entries = sorted(
        (since, user, pool)
        for pool, page in zip(pools(), replies[1::2], strict=True)
        for user, since in page
    )[offset : offset + count]
    details = await _waiting_details([(user, pool) for _, user, pool in entries])
    rows = [
        (user, since, *detail) for (since, user, _), detail in zip(entries, details, strict=True)
    ]
    return seconds * 1_000_000 + micros, size, rows


async def waiting_user(user_id: str) -> tuple[int, tuple[str, float, set[str], int] | None]:
    """Now and the user's queue entry (as in :func:`queue_page`) in whichever pool they
    wait, or None if not waiting."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for pool in pools():
            pipe.zscore(pool_key(WAITING_KEY, pool), user_id)
        (seconds, micros), *scores = await pipe.execute()
    now = seconds * 1_000_000 + micros
    found = [
        (pool, since) for pool, since in zip(pools(), scores, strict=True) if since is not None
    ]
    if not found:
        return now, None
    pool, since = found[0]
    [detail] = await _waiting_details([(user_id, pool)])
    return now, (user_id, since, *detail)


async def _waiting_details(users: list[tuple[str, str]]) -> list[tuple[set[str], int]]:
    """``(interests, lease ms left)`` per ``(user, pool)`` in one round trip; -2 means
    no lease."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for user_id, pool in users:
            pipe.smembers(user_interests_key(user_id, pool))
            pipe.pttl(lease_key(user_id, pool))
        replies = await pipe.execute()
    return list(zip(replies[::2], replies[1::2], strict=True))

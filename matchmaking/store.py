"""Redis access for matchmaking: key names and the Lua scripts, nothing else.

The key layout is documented in ``matchmaking/lua/lib.lua`` (the session keys in
``sessions_app/lua/lib.lua``) and the README.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

import redis

from animochat.redis_client import LuaScript, command_batcher, get_redis
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
STREAM_SLOT = lua_script("stream_slot")
SWEEP_LAPSED_WAITERS = lua_script("sweep_lapsed_waiters")

MAINTENANCE_KEY = "service:maintenance"
WAITING_KEY = "queue:waiting"
QUEUED_INTERESTS_KEY = "queue:interests"
QUEUE_SIZES_KEY = "queue:sizes"


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


def queue_key(interest: str) -> str:
    return f"interest:{interest}"


def user_interests_key(user_id: str) -> str:
    return f"user_interests:{user_id}"


def lease_key(user_id: str) -> str:
    return f"lease:{user_id}"


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
    )


async def enter_fallback(
    user_id: str,
    token: str,
    chat_id: str,
    *,
    session_ttl_s: int,
    cooldown_ms: int,
    fallback_servers: tuple[str, ...],
) -> list:
    return await ENTER_FALLBACK(
        user_id,
        token,
        chat_id,
        session_ttl_s,
        cooldown_ms,
        len(fallback_servers),
        *fallback_servers,
    )


# What confirm_match.lua answers.
UNDONE, CONFIRMED_BEFORE, CONFIRMED_NOW = 0, 1, 2


async def confirm_match(chat_id: str) -> int:
    """See ``lua/confirm_match.lua``: UNDONE, CONFIRMED_BEFORE or CONFIRMED_NOW."""
    return int(await CONFIRM_MATCH(chat_id))


async def undo_match(chat_id: str, user_id: str, token: str, lease_ms: int) -> list:
    """See ``lua/undo_match.lua``."""
    return await UNDO_MATCH(chat_id, user_id, token, lease_ms)


def attempt_key(chat_id: str) -> str:
    return f"attempt:{chat_id}"


async def user_session_and_pending(user_id: str) -> tuple[dict[str, Any] | None, bool]:
    """The user's session, and whether its match still waits for its confirmation.

    Both are read in one transaction: an undo between two separate reads would show a
    session just undone as a confirmed one.
    """
    redis = get_redis()
    chat_id = await redis.get(session_store.user_session_key(user_id))
    if chat_id is None:
        return None, False
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(session_store.session_key(chat_id))
        pipe.exists(attempt_key(chat_id))
        raw, pending = await pipe.execute()
    return (json.loads(raw), bool(pending)) if raw else (None, False)


async def renew_lease(user_id: str, token: str, lease_ms: int) -> list:
    return await RENEW_LEASE(user_id, token, lease_ms)


async def leave_queues(user_id: str, token: str) -> bool:
    """Whether the user was waiting and is removed; see ``lua/leave_queues.lua``."""
    removed, _ = await LEAVE_QUEUES(user_id, token)
    return bool(removed)


async def cancel_waiting(user_id: str) -> tuple[bool, str]:
    """:func:`leave_queues` for whichever stream holds the place: whether the user was
    waiting, and that stream's token ('' if none), which is the channel to tell."""
    removed, owner = await LEAVE_QUEUES(user_id, "")
    return bool(removed), owner


def sweep_lapsed_waiters(client: redis.Redis, cursor: int, count: int) -> tuple[int, int]:
    """One batch of the sweep, on ``manage.py sweep_queues``' synchronous client; see
    ``lua/sweep_lapsed_waiters.lua``."""
    next_cursor, removed = SWEEP_LAPSED_WAITERS.call_sync(client, cursor, count)
    return int(next_cursor), int(removed)


def stream_slots_key(client: str) -> str:
    return f"streams:{client}"


async def claim_stream_slot(client: str, token: str, most: int, lease_ms: int) -> bool:
    return bool(await STREAM_SLOT(stream_slots_key(client), token, lease_ms, "claim", most))


async def renew_stream_slot(client: str, token: str, lease_ms: int) -> bool:
    return bool(await STREAM_SLOT(stream_slots_key(client), token, lease_ms, "renew"))


async def release_stream_slot(client: str, token: str) -> None:
    await command_batcher().execute("ZREM", stream_slots_key(client), token)


MATCH_METRICS_KEY = "metrics:matches"
TIME_TO_MATCH_KEY = "metrics:time_to_match"


async def match_metrics() -> tuple[dict[str, str], dict[str, str], int]:
    """The matcher's counters (see lib.lua) and the number of users waiting."""
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.hgetall(MATCH_METRICS_KEY)
        pipe.hgetall(TIME_TO_MATCH_KEY)
        pipe.zcard(WAITING_KEY)
        matches, time_to_match, waiting = await pipe.execute()
    return matches, time_to_match, waiting


# The last hour, per minute (the admin's Overview): one sorted set per minute whose
# members are counters (ZINCRBY: matches, one time-to-match bucket per match, Redis
# errors) and a maximum (ZADD GT: users waiting). Each expires an hour after its minute,
# so at most 61 exist whatever the traffic.
HISTORY_KEEP_SECONDS = 3600
HISTORY_MATCHES = "matches"
HISTORY_WAITING = "waiting"
HISTORY_REDIS_ERRORS = "redis_errors"


def history_key(minute: int) -> str:
    """``minute``: whole minutes since the epoch."""
    return f"history:{minute}"


async def record_history(minute: int, counts: dict[str, int], sample_waiting: bool) -> int:
    """Add ``counts`` (member -> increment) to ``minute`` and, if ``sample_waiting``, the
    users waiting now as a candidate maximum; returns that number (-1 if not sampled)."""
    return await record_bookkeeping(minute, counts, sample_waiting)


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
) -> int:
    """Calls of ``lua/bookkeeping.lua``: :func:`record_history`'s ``counts`` and
    sample; requests per interest (``interests``) in the popularity bucket of
    ``now_s``; the match counters ``/metrics`` reads (field -> increment). Returns the
    users waiting recorded, or -1.

    One call, unless a turn brought more than ``BOOKKEEPING_INTERESTS_PER_CALL``
    distinct interests: a script blocks Redis while it runs, so a burst of rare
    interests is counted in several short calls rather than one long one.
    """
    bucket_s = popular_bucket_seconds(window_s) if interests else 1
    items = list((interests or {}).items())
    chunks = [
        dict(items[start : start + BOOKKEEPING_INTERESTS_PER_CALL])
        for start in range(0, len(items), BOOKKEEPING_INTERESTS_PER_CALL)
    ] or [{}]

    def call(chunk: Mapping[str, int], first: bool) -> Awaitable[Any]:
        return BOOKKEEPING(
            history_key(minute),
            (minute + 1) * 60 + HISTORY_KEEP_SECONDS,
            "1" if sample_waiting and first else "0",
            *_pairs(counts if first else {}),
            popular_bucket_key(bucket_s, int(now_s // bucket_s)),
            POPULAR_CAPACITY,
            # Kept until the window no longer reaches it: the bucket ends within bucket_s.
            window_s + bucket_s + 1,
            *_pairs(chunk),
            *_pairs((matches or {}) if first else {}),
            *_pairs((time_to_match or {}) if first else {}),
        )

    replies = await asyncio.gather(*(call(chunk, n == 0) for n, chunk in enumerate(chunks)))
    return int(replies[0])


async def history(minutes: list[int]) -> list[dict[str, float]]:
    """Each minute's members and values, in the order of ``minutes``."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for minute in minutes:
            pipe.zrange(history_key(minute), 0, -1, withscores=True)
        replies = await pipe.execute()
    return [dict(reply) for reply in replies]


async def get_maintenance_flag() -> str | None:
    return await get_redis().get(MAINTENANCE_KEY)


async def set_maintenance_flag(on: bool) -> None:
    await get_redis().set(MAINTENANCE_KEY, "1" if on else "0")


# Popularity: requests per interest counted in time buckets (see bookkeeping.lua).
# A bucket tracks at most POPULAR_CAPACITY interests, and a window is covered by at most
# POPULAR_MAX_BUCKETS + 1 buckets, so both counting an arrival and reading the window
# cost the same whatever the number of distinct interests ever asked for.
POPULAR_CAPACITY = 300
POPULAR_MAX_BUCKETS = 20
POPULAR_MIN_BUCKET_SECONDS = 60
HIDDEN_INTERESTS_KEY = "popular:hidden"  # SET: interests the admin hid
SHOWN_INTERESTS_KEY = "popular:shown"  # SET: interests of POPULAR_BLOCKLIST the admin showed


def popular_bucket_seconds(window_s: int) -> int:
    """One minute, or longer for windows of over 20 minutes (at most 21 buckets)."""
    return max(POPULAR_MIN_BUCKET_SECONDS, -(-window_s // POPULAR_MAX_BUCKETS))


def popular_bucket_key(bucket_s: int, number: int) -> str:
    return f"popular:{bucket_s}s:{number}"


def popular_window_keys(window_s: int, now_s: float) -> list[str]:
    """The buckets covering the window up to ``now_s``, newest first."""
    bucket_s = popular_bucket_seconds(window_s)
    current = int(now_s // bucket_s)
    first = int((now_s - window_s) // bucket_s)
    return [popular_bucket_key(bucket_s, n) for n in range(current, first - 1, -1)]


async def count_interests(interests: list[str], window_s: int, now_s: float) -> None:
    """Count one request for each of ``interests`` (see :func:`record_bookkeeping`)."""
    minute = int(now_s // 60)
    await record_bookkeeping(minute, {}, False, dict.fromkeys(interests, 1), window_s, now_s)


async def popular_counts(window_s: int, now_s: float) -> tuple[dict[str, int], set[str], set[str]]:
    """Requests per interest within the window (at least; at most POPULAR_CAPACITY per
    bucket tracked), and the interests hidden and shown by the admin: one round trip."""
    keys = popular_window_keys(window_s, now_s)
    # Counts less what a full bucket may have over-counted (bookkeeping.lua).
    weights = {key: 1 for key in keys} | {f"{key}:over": -1 for key in keys}
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.zunion(weights, withscores=True)
        pipe.smembers(HIDDEN_INTERESTS_KEY)
        pipe.smembers(SHOWN_INTERESTS_KEY)
        counts, hidden, shown = await pipe.execute()
    counted = {interest: int(count) for interest, count in counts if count > 0}
    return counted, hidden, shown


async def hide_interest(interest: str, hidden: bool) -> None:
    """Hide ``interest`` from popular interests (or show it again), for every instance."""
    add, remove = (
        (HIDDEN_INTERESTS_KEY, SHOWN_INTERESTS_KEY)
        if hidden
        else (SHOWN_INTERESTS_KEY, HIDDEN_INTERESTS_KEY)
    )
    async with get_redis().pipeline(transaction=True) as pipe:
        pipe.sadd(add, interest)
        pipe.srem(remove, interest)
        await pipe.execute()


async def largest_queues(count: int) -> tuple[int, int, dict[str, int]]:
    """Users waiting overall, the number of interests with a queue, and the ``count``
    largest queues (largest first): O(log n + count), whatever the number of queues."""
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.zcard(WAITING_KEY)
        pipe.zcard(QUEUE_SIZES_KEY)
        pipe.zrange(QUEUE_SIZES_KEY, 0, count - 1, desc=True, withscores=True)
        waiting, queues, largest = await pipe.execute()
    return waiting, queues, {interest: int(size) for interest, size in largest}


# Reads for the admin dashboard. Times are Redis TIME (µs), the clock of the scores.


async def queue_heads() -> tuple[int, int, float | None, list[tuple[str, int, float | None]]]:
    """Now, users waiting, the oldest enqueue time, and ``(interest, size, oldest)``
    for every interest with a queue: O(interests with a queue)."""
    redis = get_redis()
    interests = sorted(await redis.smembers(QUEUED_INTERESTS_KEY))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for key in [WAITING_KEY, *map(queue_key, interests)]:
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
        replies = await pipe.execute()
    (seconds, micros), rest = replies[0], replies[1:]
    heads = [
        (size, head[0][1] if head else None)
        for size, head in zip(rest[::2], rest[1::2], strict=True)
    ]
    (total, oldest), per_interest = heads[0], heads[1:]
    rows = [(i, size, since) for i, (size, since) in zip(interests, per_interest, strict=True)]
    return seconds * 1_000_000 + micros, total, oldest, rows


async def queue_page(
    interest: str | None, offset: int, count: int
) -> tuple[int, int, list[tuple[str, float, set[str], int]]]:
    """Now, the queue's size and ``count`` of its users from ``offset``, longest waiting
    first, as ``(user, enqueued, interests, lease ms left)``; ``interest=None`` is the
    queue of every waiting user. O(log n + count)."""
    redis = get_redis()
    key = queue_key(interest) if interest is not None else WAITING_KEY
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zcard(key)
        pipe.zrange(key, offset, offset + count - 1, withscores=True)
        (seconds, micros), size, entries = await pipe.execute()
    details = await _waiting_details([user for user, _ in entries])
    rows = [(user, since, *detail) for (user, since), detail in zip(entries, details, strict=True)]
    return seconds * 1_000_000 + micros, size, rows


async def waiting_user(user_id: str) -> tuple[int, tuple[str, float, set[str], int] | None]:
    """Now and the user's queue entry (as in :func:`queue_page`), or None if not waiting."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zscore(WAITING_KEY, user_id)
        (seconds, micros), since = await pipe.execute()
    now = seconds * 1_000_000 + micros
    if since is None:
        return now, None
    [detail] = await _waiting_details([user_id])
    return now, (user_id, since, *detail)


async def _waiting_details(user_ids: list[str]) -> list[tuple[set[str], int]]:
    """``(interests, lease ms left)`` per user in one round trip; -2 means no lease."""
    async with get_redis().pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            pipe.smembers(user_interests_key(user_id))
            pipe.pttl(lease_key(user_id))
        replies = await pipe.execute()
    return list(zip(replies[::2], replies[1::2], strict=True))

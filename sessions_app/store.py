"""Redis access for chat sessions (written by the matcher, read and ended here)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from animochat.pools import default_pool, key_prefix, pools
from animochat.redis_client import LuaScript, get_redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Session keys and end_session, also prepended to matchmaking's scripts.
LUA_LIBRARY = LUA_DIR / "lib.lua"
END_SESSION = LuaScript(LUA_DIR / "end_session.lua", libraries=(LUA_LIBRARY,))
ACTIVE_SESSIONS_KEY = "sessions:active"

# A session lives in the match pool it was made in (the matcher writes it atomically with
# the match), under the pool's key prefix; reads by user or chat id look in every pool
# (MATCH_POOLS is a short list), in one round trip.


def session_key(chat_id: str, pool: str | None = None) -> str:
    return f"{_prefix(pool)}chat_session:{chat_id}"


def user_session_key(user_id: str, pool: str | None = None) -> str:
    return f"{_prefix(pool)}user_session:{user_id}"


def active_sessions_key(pool: str | None = None) -> str:
    return f"{_prefix(pool)}{ACTIVE_SESSIONS_KEY}"


def pool_keys(pool: str | None = None) -> list[str]:
    """``KEYS[1..2]`` of every script using ``lua/lib.lua``: the pool's prefix and its
    set of active sessions."""
    return [_prefix(pool), active_sessions_key(pool)]


def _prefix(pool: str | None) -> str:
    return key_prefix(pool if pool is not None else default_pool())


async def _user_sessions(user_id: str) -> list[tuple[str, dict[str, Any]]]:
    """``(pool, session)`` for each pool where the user has one, newest first."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.get(user_session_key(user_id, pool))
        chat_ids = await pipe.execute()
    found = [(pool, chat_id) for pool, chat_id in zip(pools(), chat_ids, strict=True) if chat_id]
    if not found:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for pool, chat_id in found:
            pipe.get(session_key(chat_id, pool))
        raws = await pipe.execute()
    sessions = [(pool, json.loads(raw)) for (pool, _), raw in zip(found, raws, strict=True) if raw]
    return sorted(sessions, key=lambda item: -item[1].get("createdAt", 0))


async def get_user_session(user_id: str) -> dict[str, Any] | None:
    """The user's session, whatever pool it was made in (the newest, should there be
    two: a user who moved to another pool has their old session ended by the move)."""
    sessions = await _user_sessions(user_id)
    return sessions[0][1] if sessions else None


async def end_user_session(user_id: str) -> dict[str, Any] | None:
    """End the user's session in every pool; the one ended, or None."""
    raws = await asyncio.gather(
        *(END_SESSION(keys=(*pool_keys(pool), user_session_key(user_id, pool))) for pool in pools())
    )
    ended = [json.loads(raw) for raw in raws if raw]
    return max(ended, key=lambda session: session.get("createdAt", 0)) if ended else None


async def _now_ms() -> int:
    seconds, micros = await get_redis().time()
    return seconds * 1000 + micros // 1000


async def count_active_sessions(ttl_seconds: int) -> int:
    """Sessions created within their time-to-live, in every pool; O(pools * log n)."""
    cutoff_ms = await _now_ms() - ttl_seconds * 1000
    async with get_redis().pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.zcount(active_sessions_key(pool), f"({cutoff_ms}", "+inf")
        return sum(await pipe.execute())


# Reads for the admin dashboard, over every pool.


async def find_sessions(query: str) -> tuple[int, list[dict[str, Any]]]:
    """Now (ms), and the session whose chat id is ``query`` and that of user ``query``."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        for pool in pools():
            pipe.get(session_key(query, pool))
        by_chat_id = [raw for raw in await pipe.execute() if raw]
    sessions = [json.loads(raw) for raw in by_chat_id]
    sessions += [
        session for _, session in await _user_sessions(query) if session["chatId"] != query
    ]
    return await _now_ms(), sessions


async def recent_sessions(
    ttl_seconds: int, offset: int, count: int
) -> tuple[int, int, list[dict[str, Any]]]:
    """Now (ms), the number of sessions within their time-to-live, and ``count`` of them
    from ``offset``, newest first, over every pool: O(pools * (log n + offset + count))."""
    redis = get_redis()
    now_ms = await _now_ms()
    cutoff = f"({now_ms - ttl_seconds * 1000}"
    async with redis.pipeline(transaction=False) as pipe:
        for pool in pools():
            key = active_sessions_key(pool)
            pipe.zcount(key, cutoff, "+inf")
            # Each pool's newest offset + count: the page is among them.
            pipe.zrevrangebyscore(key, "+inf", cutoff, start=0, num=offset + count, withscores=True)
        replies = await pipe.execute()
    total = sum(replies[::2])
    newest = sorted(
        (
            (-created, chat_id, pool)
            for pool, entries in zip(pools(), replies[1::2], strict=True)
            for chat_id, created in entries
        )
    )[offset : offset + count]
    async with redis.pipeline(transaction=False) as pipe:
        for _, chat_id, pool in newest:
            pipe.get(session_key(chat_id, pool))
        raws = await pipe.execute()
    # A session ended between the two round trips is simply left out.
    return now_ms, total, [json.loads(raw) for raw in raws if raw]

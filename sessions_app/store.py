"""Redis access for chat sessions (written by the matcher, read and ended here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from animochat.redis_client import LuaScript, get_redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Session keys and end_session, also prepended to matchmaking's scripts.
LUA_LIBRARY = LUA_DIR / "lib.lua"
END_SESSION = LuaScript(LUA_DIR / "end_session.lua", libraries=(LUA_LIBRARY,))
ACTIVE_SESSIONS_KEY = "sessions:active"


def session_key(chat_id: str) -> str:
    return f"chat_session:{chat_id}"


def user_session_key(user_id: str) -> str:
    return f"user_session:{user_id}"


async def get_user_session(user_id: str) -> dict[str, Any] | None:
    redis = get_redis()
    chat_id = await redis.get(user_session_key(user_id))
    if chat_id is None:
        return None
    raw = await redis.get(session_key(chat_id))
    return json.loads(raw) if raw else None


async def end_user_session(user_id: str) -> dict[str, Any] | None:
    raw = await END_SESSION(user_id)
    return json.loads(raw) if raw else None


async def count_active_sessions(ttl_seconds: int) -> int:
    """Sessions created within their time-to-live; O(log n)."""
    redis = get_redis()
    now_s, now_us = await redis.time()
    cutoff_ms = now_s * 1000 + now_us // 1000 - ttl_seconds * 1000
    return await redis.zcount(ACTIVE_SESSIONS_KEY, f"({cutoff_ms}", "+inf")


# Reads for the admin dashboard.


async def find_sessions(query: str) -> tuple[int, list[dict[str, Any]]]:
    """Now (ms), and the session whose chat id is ``query`` and that of user ``query``."""
    redis = get_redis()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.get(session_key(query))
        pipe.get(user_session_key(query))
        (seconds, micros), by_chat_id, user_chat_id = await pipe.execute()
    raws = [by_chat_id]
    if user_chat_id is not None and user_chat_id != query:
        raws.append(await redis.get(session_key(user_chat_id)))
    return seconds * 1000 + micros // 1000, [json.loads(raw) for raw in raws if raw]


async def recent_sessions(
    ttl_seconds: int, offset: int, count: int
) -> tuple[int, int, list[dict[str, Any]]]:
    """Now (ms), the number of sessions within their time-to-live, and ``count`` of them
    from ``offset``, newest first: O(log n + count)."""
    redis = get_redis()
    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    cutoff = f"({now_ms - ttl_seconds * 1000}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcount(ACTIVE_SESSIONS_KEY, cutoff, "+inf")
        pipe.zrevrangebyscore(ACTIVE_SESSIONS_KEY, "+inf", cutoff, start=offset, num=count)
        total, chat_ids = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for chat_id in chat_ids:
            pipe.get(session_key(chat_id))
        raws = await pipe.execute()
    # A session ended between the two round trips is simply left out.
    return now_ms, total, [json.loads(raw) for raw in raws if raw]

"""Redis access for chat sessions (written by the matcher, read and ended here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from animochat.redis_client import LuaScript, get_redis

END_SESSION = LuaScript(Path(__file__).resolve().parent / "lua" / "end_session.lua")
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
    raw = await END_SESSION(get_redis(), user_id)
    return json.loads(raw) if raw else None


async def count_active_sessions(ttl_seconds: int) -> int:
    """Sessions created within their time-to-live; O(log n)."""
    redis = get_redis()
    now_s, now_us = await redis.time()
    cutoff_ms = now_s * 1000 + now_us // 1000 - ttl_seconds * 1000
    return await redis.zcount(ACTIVE_SESSIONS_KEY, f"({cutoff_ms}", "+inf")

"""Redis access for matchmaking: key names and the Lua scripts, nothing else.

The key layout is documented in ``animochat/lua/lib.lua`` and the README.
"""

from __future__ import annotations

from pathlib import Path

from animochat.redis_client import LuaScript, get_redis

LUA_DIR = Path(__file__).resolve().parent / "lua"
ENQUEUE_OR_MATCH = LuaScript(LUA_DIR / "enqueue_or_match.lua")
RENEW_LEASE = LuaScript(LUA_DIR / "renew_lease.lua")
LEAVE_QUEUES = LuaScript(LUA_DIR / "leave_queues.lua")
POPULAR_INTERESTS = LuaScript(LUA_DIR / "popular_interests.lua")

MAINTENANCE_KEY = "service:maintenance"
WAITING_KEY = "queue:waiting"
QUEUED_INTERESTS_KEY = "queue:interests"


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
    window_ms: int,
    session_ttl_s: int,
    maintenance_default: bool,
    fallback_servers: tuple[str, ...],
) -> list[str]:
    return await ENQUEUE_OR_MATCH(
        get_redis(),
        user_id,
        token,
        lease_ms,
        chat_id,
        window_ms,
        session_ttl_s,
        "1" if maintenance_default else "0",
        len(fallback_servers),
        *fallback_servers,
        *interests,
    )


async def renew_lease(user_id: str, token: str, lease_ms: int) -> int:
    return int(await RENEW_LEASE(get_redis(), user_id, token, lease_ms))


async def leave_queues(user_id: str, token: str) -> bool:
    return bool(await LEAVE_QUEUES(get_redis(), user_id, token))


async def get_maintenance_flag() -> str | None:
    return await get_redis().get(MAINTENANCE_KEY)


async def set_maintenance_flag(on: bool) -> None:
    await get_redis().set(MAINTENANCE_KEY, "1" if on else "0")


async def popular_interests(window_ms: int, limit: int) -> list[tuple[str, int]]:
    flat = await POPULAR_INTERESTS(get_redis(), window_ms, limit)
    return [(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]


async def queue_sizes() -> tuple[int, dict[str, int]]:
    """Users waiting overall, and per interest: O(interests with a queue)."""
    redis = get_redis()
    interests = sorted(await redis.smembers(QUEUED_INTERESTS_KEY))
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(WAITING_KEY)
        for interest in interests:
            pipe.zcard(queue_key(interest))
        counts = await pipe.execute()
    return counts[0], dict(zip(interests, counts[1:], strict=True))

"""The matcher's scripts called as the services call them, with the tests' defaults,
their replies read by the services' own reader (``MatcherReply``)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import redis

from matchmaking import services, store

SERVERS = ("http://chat-a.test", "http://chat-b.test")
LEASE_MS = 30_000
SESSION_TTL_S = 3600
OFF = -1  # fallback_after_ms: no fallback

_chat_ids = itertools.count(1)


def new_chat_id() -> str:
    return f"chat-{next(_chat_ids)}"


async def join(
    user: str,
    *interests: str,
    token: str | None = None,
    chat_id: str | None = None,
    lease_ms: int = LEASE_MS,
    cooldown_ms: int = 0,
    fallback_after_ms: int = OFF,
    servers: tuple[str, ...] = SERVERS,
    maintenance_default: bool = False,
    pool: str | None = None,
) -> services.MatcherReply:
    """``user`` arrives with ``interests`` (none: random chat), on stream ``t-<user>``,
    in ``pool`` (default: the first of MATCH_POOLS)."""
    reply = await store.enqueue_or_match(
        user,
        list(interests) or ["GLOBAL_CHAT"],
        token or f"t-{user}",
        chat_id or new_chat_id(),
        lease_ms=lease_ms,
        session_ttl_s=SESSION_TTL_S,
        maintenance_default=maintenance_default,
        cooldown_ms=cooldown_ms,
        fallback_after_ms=fallback_after_ms,
        fallback_servers=servers,
        pool=pool,
    )
    return services._matcher_reply(reply)


async def enter_fallback(
    user: str,
    token: str | None = None,
    chat_id: str | None = None,
    cooldown_ms: int = 0,
    servers: tuple[str, ...] = SERVERS,
) -> services.MatcherReply:
    reply = await store.enter_fallback(
        user,
        token or f"t-{user}",
        chat_id or new_chat_id(),
        session_ttl_s=SESSION_TTL_S,
        cooldown_ms=cooldown_ms,
        fallback_servers=servers,
    )
    return services._matcher_reply(reply)


def waiting(client: redis.Redis) -> dict[str, float]:
    """Every waiting user and their enqueue time (µs)."""
    return dict(client.zrange(store.WAITING_KEY, 0, -1, withscores=True))


def session(client: redis.Redis, chat_id: str) -> dict[str, Any] | None:
    raw = client.get(f"chat_session:{chat_id}")
    return json.loads(raw) if raw else None


def snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key with its value and time to live, to show a script changed nothing."""
    readers = {
        "string": client.get,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        "hash": client.hgetall,
    }
    return {
        key: (readers[client.type(key)](key), client.pttl(key)) for key in sorted(client.keys())
    }

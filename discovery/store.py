"""Redis access for discovery: the shared chat-server list and the heartbeat's state.

Keys:
  chat_servers:discovered  LIST   chat-server URLs from discovery, sorted; read by the
                                  matcher (matchmaking/lua/enqueue_or_match.lua), which
                                  uses CHAT_SERVER_URLS while it is empty or missing.
                                  Replaced whole on every refresh and given a TTL, so a
                                  dead heartbeat or registry falls back by itself. One
                                  copy per match pool, under the pool's prefix
                                  (animochat/pools.py), in the slot its matcher runs on.
  discovery:state          HASH   what the heartbeat last did (``Heartbeat.state`` in
                                  services.py), so every instance's /status reports
                                  the same.

The matcher's round-robin counter over this list, ``chat_servers:rr``, is its own:
only the Lua scripts touch it.

The heartbeat is synchronous (a plain redis-py client is passed in); ``/status`` reads
with the project's asyncio client.
"""

from __future__ import annotations

import redis

from animochat.pools import default_pool, key_prefix, pools
from animochat.redis_client import get_redis

DISCOVERED_KEY = "chat_servers:discovered"
STATE_KEY = "discovery:state"


def discovered_key(pool: str | None = None) -> str:
    return key_prefix(pool if pool is not None else default_pool()) + DISCOVERED_KEY


def save_chat_servers(
    client: redis.Redis, urls: list[str], ttl_ms: int, state: dict[str, str]
) -> list[str]:
    """Replace every pool's discovered list (or delete it when ``urls`` is empty) and
    the state.

    One MULTI/EXEC per pool (a pool's copy is in its own slot), so a matcher never sees
    a half-written list. Returns the list as the first pool's matcher now sees it.
    """
    for pool in pools():
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(discovered_key(pool))
            if urls:
                pipe.rpush(discovered_key(pool), *urls)
                pipe.pexpire(discovered_key(pool), ttl_ms)
            pipe.execute()
    return save_state(client, state)


def save_state(client: redis.Redis, state: dict[str, str]) -> list[str]:
    """Update the heartbeat state; returns the discovered list as the first pool's
    matcher sees it."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(STATE_KEY, mapping=state)
        pipe.lrange(discovered_key(), 0, -1)
        return pipe.execute()[-1]


async def read_discovery() -> tuple[list[str], dict[str, str]]:
    """The discovered chat-server list (the first pool's copy) and the heartbeat state,
    in one round trip."""
    async with get_redis().pipeline(transaction=False) as pipe:
        pipe.lrange(discovered_key(), 0, -1)
        pipe.hgetall(STATE_KEY)
        servers, state = await pipe.execute()
    return servers, state

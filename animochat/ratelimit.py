"""Per-client request limits kept in Redis, so they hold across server processes.

A fixed one-minute window per client address and endpoint group: one script call
(``lua/rate_limit.lua``) in the command batch of its event-loop turn, where a
``MULTI``/``EXEC`` pipeline of its own cost the request several times the client's
CPU. ``RATE_LIMIT_PER_MINUTE=0`` turns limiting off; the read endpoints have their own
group and limit (``READ_RATE_LIMIT_PER_MINUTE``). Clients are counted by
:func:`~animochat.clientaddr.client_bucket` (an IPv6 client per /64).
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from redis.exceptions import RedisError

from animochat.clientaddr import client_bucket
from animochat.errors import ApiError
from animochat.redis_client import LuaScript

WINDOW_SECONDS = 60
RATE_LIMIT = LuaScript(Path(__file__).resolve().parent / "lua" / "rate_limit.lua")


class RateLimited(ApiError):
    """The client spent its allowance; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "RATE_LIMITED",
            f"Too many requests; retry in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


async def check_rate_limit(group: str, client: str, limit: int | None = None) -> None:
    """Count one request of ``client`` to ``group``; raise :class:`RateLimited` past
    ``limit`` (default ``RATE_LIMIT_PER_MINUTE``)."""
    if limit is None:
        limit = settings.RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"ratelimit:{group}:{client_bucket(client)}:{window}"
    count = int(await RATE_LIMIT(WINDOW_SECONDS + 1, keys=(key,)))
    if count > limit:
        raise RateLimited(max(1, int((window + 1) * WINDOW_SECONDS - now) + 1))


async def check_read_rate_limit(client: str) -> None:
    """The read endpoints' own, higher limit (``READ_RATE_LIMIT_PER_MINUTE``).

    A count that cannot be made (Redis down) lets the read through: each read endpoint
    reports an unreachable Redis itself (``/status`` with its full document).
    """
    try:
        await check_rate_limit("read", client, settings.READ_RATE_LIMIT_PER_MINUTE)
    except (RedisError, OSError):
        return

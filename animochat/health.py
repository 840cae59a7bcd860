"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness) for process managers
and load balancers.

Both are raw ASGI applications routed before Django, as ``/matchmaking`` is: a probe
costs no middleware, is never rate limited, and is answered whatever ``Host`` header the
prober sends (health checkers often use the machine's address, which ``ALLOWED_HOSTS``
would refuse).

``/healthz`` makes no Redis call: it answers while the process's event loop runs.
``/readyz`` answers 200 only when Redis answers, this process's pub/sub listener is
connected (started here if no stream has started it yet) and every Lua script is in
Redis (any missing, after a Redis restart or failover, is loaded first). Otherwise 503
with ``code`` ``NOT_READY`` and each check's state, so an orchestrator sends traffic
only to processes that can match.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from animochat import ratelimit
from animochat.apps import app_modules
from animochat.redis_client import LuaScript, cluster_mode, get_redis

READY, DOWN, UNKNOWN = "ready", "down", "unknown"
# Probes have short timeouts of their own: answer within about two seconds, whatever
# state Redis is in (a blackholed Redis would otherwise hold the probe 4 s or more).
REDIS_CHECK_TIMEOUT = 1.5
LISTENER_CHECK_TIMEOUT = 0.5
NOT_READY_MESSAGES = {
    "redis": "Redis does not answer",
    "scripts": "the Lua scripts could not be loaded into Redis",
    "pubsub": "the pub/sub listener is not connected",
}


async def send_json(send, status: int, payload: dict[str, Any], **headers: str) -> None:
    head = {"Content-Type": "application/json", "Cache-Control": "no-store", **headers}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in head.items()],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


def probe(check):
    """An ASGI app answering ``GET`` with ``check()``'s ``(status, payload)``."""

    async def app(scope, receive, send) -> None:
        if scope["method"] != "GET":
            await send_json(
                send,
                405,
                {"code": "METHOD_NOT_ALLOWED", "message": f"Use GET for {scope['path']}."},
                Allow="GET",
            )
            return
        status, payload = await check()
        await send_json(send, status, payload)

    return app


async def liveness() -> tuple[int, dict[str, Any]]:
    return 200, {"status": "ok"}


@functools.cache
def shipped_scripts() -> tuple[LuaScript, ...]:
    """Every Lua script of the service, whether or not a request has needed it yet: the
    project's and those each app declares in its ``store`` module."""
    modules = [ratelimit, *app_modules("store")]
    return tuple(
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, LuaScript)
    )


async def redis_and_scripts() -> tuple[str, str]:
    """(Redis, scripts) states: one round trip, plus one more to load missing scripts
    (on a cluster, each goes to every primary)."""
    scripts = shipped_scripts()
    client = get_redis()
    shas = [script.sha for script in scripts]
    try:
        async with asyncio.timeout(REDIS_CHECK_TIMEOUT):
            # A refusal of the scripting commands alone (an ACL) is the scripts' check.
            if cluster_mode():  # a cluster pipeline sends keyless commands to one node
                pong, present = await asyncio.gather(
                    client.ping(), client.script_exists(*shas), return_exceptions=True
                )
            else:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.ping()
                    pipe.script_exists(*shas)
                    pong, present = await pipe.execute(raise_on_error=False)
            if isinstance(pong, Exception):
                return DOWN, UNKNOWN
            if isinstance(present, Exception):
                return READY, DOWN
            missing = [script for script, there in zip(scripts, present, strict=True) if not there]
            loads = await asyncio.gather(
                *(client.script_load(script.source) for script in missing),
                return_exceptions=True,
            )
            if any(isinstance(load, Exception) for load in loads):
                return READY, DOWN  # a script Redis refuses to compile, say
    except (RedisError, OSError):  # unreachable; OSError includes TimeoutError
        return DOWN, UNKNOWN
    return READY, READY


async def listener_state() -> str:
    connected = getattr(get_channel_layer(), "listener_connected", None)
    if connected is None:  # a layer without a listener of its own
        return READY
    return READY if await connected(LISTENER_CHECK_TIMEOUT) else DOWN


async def readiness() -> tuple[int, dict[str, Any]]:
    (redis_state, scripts_state), pubsub_state = await asyncio.gather(
        redis_and_scripts(), listener_state()
    )
    checks = {"redis": redis_state, "scripts": scripts_state, "pubsub": pubsub_state}
    not_ready = [name for name, state in checks.items() if state != READY]
    if not not_ready:
        return 200, {"status": "ready", "checks": checks}
    # "unknown" follows from another check being down: name only what is down.
    reasons = "; ".join(NOT_READY_MESSAGES[name] for name in not_ready if checks[name] == DOWN)
    return 503, {"code": "NOT_READY", "message": f"Not ready: {reasons}.", "checks": checks}


healthz = probe(liveness)
readyz = probe(readiness)

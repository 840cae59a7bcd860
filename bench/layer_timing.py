"""DIAGNOSTIC ONLY: the product's ASGI application with its channel-layer calls timed.

Run Daphne with ``bench.layer_timing:application`` (``bench.stream ... --app timing``)
and every two seconds this writes, to ``bench/results/layer-timing-<pid>.json``, the
median, p99 and count (ms) of each channels_redis pub/sub call, the Redis commands
under them and the matcher call. It showed where a stream's time goes: waiting for
the shard lock, not in Redis (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from pathlib import Path

import redis.asyncio.client as redis_client
from channels_redis import pubsub

from animochat.asgi import application as product_application
from bench.common import RESULTS_DIR, median, percentile
from matchmaking import services

TIMINGS: dict[str, list[float]] = {}


def timed(owner: object, name: str, label: str | None = None) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            key = label or name
            if label == "redis":
                key = f"redis {args[1]}"
            TIMINGS.setdefault(key, []).append((time.perf_counter() - started) * 1000)

    setattr(owner, name, wrapper)


for method in ("new_channel", "group_add", "group_send", "group_discard"):
    timed(pubsub.RedisPubSubLoopLayer, method, f"layer.{method}")
for method in ("publish", "subscribe", "unsubscribe"):
    timed(pubsub.RedisSingleShardConnection, method, f"shard.{method} (with lock)")
timed(redis_client.PubSub, "execute_command", "pubsub connection write")
timed(redis_client.Redis, "execute_command", "redis")
timed(services, "enqueue_or_match", "services.enqueue_or_match")


async def write_timings() -> None:
    path = RESULTS_DIR / f"layer-timing-{os.getpid()}.json"
    RESULTS_DIR.mkdir(exist_ok=True)
    while True:
        await asyncio.sleep(2)
        table = {
            key: {"p50": round(median(v), 2), "p99": round(percentile(v, 99), 2), "n": len(v)}
            for key, v in TIMINGS.items()
        }
        Path(path).write_text(json.dumps(table, indent=1))


_writer: asyncio.Task | None = None


async def application(scope, receive, send):
    global _writer
    if _writer is None:
        _writer = asyncio.ensure_future(write_timings())
    await product_application(scope, receive, send)

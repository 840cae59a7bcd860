"""One OS process of the matcher concurrency test.

``python -m tests.support.matcher_worker <spec.json> <out.json>`` calls
``enqueue_or_match`` for its share of users with many concurrent callers, starting
at the shared start time, and writes every result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from animochat.redis_client import get_redis  # noqa: E402
from matchmaking import services  # noqa: E402


async def run(users: list[dict], start_at: float, concurrency: int) -> list[dict]:
    results: list[dict] = []
    queue: asyncio.Queue = asyncio.Queue()
    for user in users:
        queue.put_nowait(user)

    async def caller() -> None:
        while not queue.empty():
            user = queue.get_nowait()
            result = await services.enqueue_or_match(
                user["id"], user["interests"], "t-" + user["id"], user.get("fallbackAfter")
            )
            results.append(
                {
                    "user": user["id"],
                    "state": result.state,
                    "partner": result.partner,
                    "chatId": result.chat_id,
                    "interest": result.interest,
                    "fallback": result.fallback,
                }
            )

    # Open the pool's connections before the start, so the burst is all matcher calls.
    # A few at a time: a loaded machine can be slow to accept a crowd of connections.
    redis = get_redis()
    for _ in range(0, concurrency, 8):
        await asyncio.gather(*(redis.execute_command("PING") for _ in range(8)))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return results


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    results = asyncio.run(run(spec["users"], spec["start_at"], spec.get("concurrency", 32)))
    Path(sys.argv[2]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()

"""Popularity benchmark: cost of popular interests with 10 and with 20,000 interests.

A private Redis (its SLOWLOG is server-wide, so the benchmark owns the server) and one
Daphne process serving it. For each case (10 distinct interests asked for, then
20,000: 2,000 users naming 10 interests nobody else names, all left waiting):

* ``GET /interests/popular`` answered by Daphne, 2,000 sequential requests on one
  keep-alive connection (p50/p99 ms): what a client sees, from the 2 s cache;
* the uncached read behind it (``store.popular_counts``, the ``ZUNION`` of the
  window's buckets), 200 times (p50/p99 ms from Python; Redis' own µs for the
  ``ZUNION`` from SLOWLOG, logging every command during those reads);
* ``GET /status`` (p50/p99 ms), whose queue list is bounded too;
* Redis' mean time per call of each command while asking and reading (``INFO
  commandstats``; scripts count as one command, ``evalsha``);
* every command over 5 ms in SLOWLOG (``slowlog-log-slower-than 5000``) while the
  interests were asked for and read: the issue's target is none.

SLOWLOG measures wall time inside Redis, so on a busy machine a few commands, however
cheap, are logged while Redis waits for a core: the result lists them by kind, beside
how busy the machine was.

Run (about a minute)::

    .venv/bin/python -m bench.popularity            # 3 runs

Results go to ``bench/results/popularity-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter

import requests

from bench.common import (
    machine_conditions,
    median,
    percentile,
    print_json_summary,
    save_results,
    wait_for_quiet,
)

PER_USER = 10
HTTP_REQUESTS = 2000
RAW_READS = 200


def kind(command: str) -> str:
    words = command.split(" ")
    return " ".join(words[:2])[:20] if words[0].upper() == "EVALSHA" else words[0].upper()


def text(entry: dict) -> str:
    command = entry["command"]
    return command.decode(errors="replace") if isinstance(command, bytes) else command


def timings(samples: list[float]) -> dict:
    return {
        "p50_ms": round(median(samples) * 1000, 3),
        "p99_ms": round(percentile(samples, 99) * 1000, 3),
    }


def http_timings(url: str, count: int) -> dict:
    session = requests.Session()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, timeout=10)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    session.close()
    return timings(samples)


async def ask_for(distinct: int) -> None:
    from animochat.redis_client import close_redis
    from matchmaking import services

    try:
        users = max(1, distinct // PER_USER)
        per_user = min(PER_USER, distinct)
        for start in range(0, users, 100):
            await asyncio.gather(
                *(
                    services.enqueue_or_match(
                        f"u{n}", [f"I{n}-{k}" for k in range(per_user)], f"t{n}"
                    )
                    for n in range(start, min(users, start + 100))
                )
            )
    finally:
        await close_redis()  # after the background counts


async def raw_reads(count: int) -> list[float]:
    from django.conf import settings

    from animochat.redis_client import close_redis
    from matchmaking import store

    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            await store.popular_counts(settings.POPULAR_WINDOW_SECONDS, time.time())
            samples.append(time.perf_counter() - started)
    finally:
        await close_redis()
    return samples


def one_case(client, server, distinct: int) -> dict:
    client.flushdb()
    client.config_set("slowlog-max-len", 10_000)
    client.config_set("slowlog-log-slower-than", 5000)
    client.slowlog_reset()
    client.config_resetstat()
    started = time.monotonic()
    asyncio.run(ask_for(distinct))
    asked_s = time.monotonic() - started
    popular = http_timings(server.url + "/interests/popular?limit=50", HTTP_REQUESTS)
    status = http_timings(server.url + "/status", HTTP_REQUESTS // 10)
    slow = [(entry["duration"], text(entry)) for entry in client.slowlog_get(10_000)]
    # Mean Redis time per call of each command (scripts together), which preemption
    # by other processes barely moves, unlike the single worst call.
    per_call = {
        name.removeprefix("cmdstat_"): {
            "calls": stat["calls"],
            "usec_per_call": stat["usec_per_call"],
        }
        for name, stat in client.info("commandstats").items()
        if stat["calls"] >= 10
    }
    # Redis' own time for the read: log every command while reading, then pick ZUNION.
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    raw = asyncio.run(raw_reads(RAW_READS))
    zunion_us = [
        entry["duration"]
        for entry in client.slowlog_get(10_000)
        if text(entry).upper().startswith("ZUNION")
    ]
    client.config_set("slowlog-log-slower-than", 5000)
    return {
        "distinct_interests": distinct,
        "queues": client.zcard("queue:sizes"),
        "popularity_buckets_largest": max(
            (client.zcard(key) for key in client.scan_iter("popular:*s:*") if b":over" not in key),
            default=0,
        ),
        "asking_s": round(asked_s, 2),
        "http_popular": popular,
        "http_status": status,
        "uncached_read": timings(raw),
        "redis_usec_per_call": per_call,
        "zunion_redis_us": {"p50": median(zunion_us), "max": max(zunion_us, default=None)},
        "slowlog_over_5ms": {
            "count": len(slow),
            "by_kind": dict(Counter(kind(command) for _, command in slow)),
            "slowest": sorted(((us, command[:80]) for us, command in slow), reverse=True)[:5],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    import django
    import redis

    from animochat.embedded_redis import EmbeddedRedis
    from tests.support.servers import DaphneProcess

    redis_server = EmbeddedRedis().start()
    env = {
        "DJANGO_SETTINGS_MODULE": "animochat.settings",
        "SECRET_KEY": "bench",
        "REDIS_URL": redis_server.url,
        "LEASE_SECONDS": "3600",
        "CHAT_SERVER_URLS": "http://chat-a.bench",
        "DISCOVERY_SERVER_URL": "http://127.0.0.1:9/",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "0",
        "READ_RATE_LIMIT_PER_MINUTE": "0",
    }
    os.environ.update(env)
    django.setup()
    client = redis.Redis.from_url(redis_server.url)
    server = DaphneProcess(env).start()
    runs = []
    try:
        for n in range(options.runs):
            quiet = wait_for_quiet()
            conditions = machine_conditions()
            cases = [one_case(client, server, distinct) for distinct in (10, 20_000)]
            runs.append({"run": n + 1, "quiet": quiet, "machine": conditions, "cases": cases})
            for case in cases:
                print(
                    f"run {n + 1}, {case['distinct_interests']} interests: "
                    f"GET /interests/popular {case['http_popular']}, "
                    f"/status {case['http_status']}, uncached read {case['uncached_read']}, "
                    f"ZUNION {case['zunion_redis_us']} µs, "
                    f"µs/call {case['redis_usec_per_call']}, "
                    f"over 5 ms: {case['slowlog_over_5ms']['by_kind']}; "
                    f"load {conditions['load_average']}",
                    flush=True,
                )
    finally:
        server.stop()
        client.close()
        redis_server.stop()
    result = {"benchmark": "popularity", "runs": runs}
    path = save_results("popularity", result)
    print_json_summary({"results": str(path)}, ["results"])


if __name__ == "__main__":
    main()

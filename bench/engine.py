"""Matcher engine benchmark: ``enqueue_or_match`` calls per second against local Redis.

Many concurrent asyncio callers (64 by default, split over ``--processes`` processes)
call :func:`matchmaking.services.enqueue_or_match` — the real Lua script through the
project's asyncio client — for users with 1 to 3 interests drawn from a pool of 20, so
about half the calls match and half queue; each match is confirmed, as the stream
confirms it once it holds the reply (the figures in the README predate the
confirmation, one batched call more per match). Beside it, ``redis-benchmark`` measures a
trivial ``EVALSHA`` (``return 1``) with the same concurrency: the most any client can
get out of this Redis on this machine. It also runs the real matcher script from
``redis-benchmark`` (C client, one interest, random user ids), which separates the
script's cost inside Redis from the cost of the Python client path.

Run (about a minute; flushes Redis database 13 before each run)::

    .venv/bin/python -m bench.engine                      # 1 process, 64 callers, 3 runs
    .venv/bin/python -m bench.engine --processes 2        # the same 64 callers in 2 processes
    .venv/bin/python -m bench.engine --unbatched          # comparison: one EVALSHA per call

Each run first waits (up to 90 s) for the shared machine to be mostly idle, and
records the CPU other users took meanwhile (``others_cpu_share``, in cores).

Results go to ``bench/results/engine-<processes>p-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import time
import uuid
from urllib.parse import urlsplit

import psutil

from bench.common import (
    BENCH_REDIS_URL,
    machine_conditions,
    print_json_summary,
    save_results,
    wait_for_quiet,
)

INTEREST_POOL = [f"TOPIC{n:02d}" for n in range(20)]
REDIS_BENCHMARK_REQUESTS = 200_000
ENGINE_ENV = {
    "DJANGO_SETTINGS_MODULE": "animochat.settings",
    "SECRET_KEY": "bench",
    "REDIS_URL": BENCH_REDIS_URL,
    # Waiting users must stay matchable for the whole run.
    "LEASE_SECONDS": "3600",
    "CHAT_SERVER_URLS": "http://chat-a.bench,http://chat-b.bench",
    "LOG_LEVEL": "WARNING",
}


def interests_for(rng: random.Random) -> list[str]:
    return sorted(rng.sample(INTEREST_POOL, rng.randint(1, 3)))


class UnbatchedScripts:
    """Comparison only: each script call as its own ``EVALSHA`` through redis-py."""

    def evalsha(self, sha: str, keys: tuple[str, ...], *args):
        from animochat.redis_client import get_redis

        return get_redis().evalsha(sha, len(keys), *keys, *args)


async def drive(
    worker: int, callers: int, calls: int, seed: int, unbatched: bool, pools: tuple[str, ...] = ()
) -> dict:
    """``calls`` enqueue_or_match calls from ``callers`` tasks; returns counts and times.
    With ``pools``, the users are spread over those match pools in turn."""
    from animochat import redis_client
    from animochat.redis_client import close_redis, get_redis
    from matchmaking import services

    if unbatched:  # what the product did before animochat.redis_client.CommandBatcher
        redis_client.command_batcher = UnbatchedScripts

    rng = random.Random(seed)
    in_pool = pools or (None,)
    users = [
        (f"w{worker}-u{n}", interests_for(rng), uuid.uuid4().hex, in_pool[n % len(in_pool)])
        for n in range(calls)
    ]
    # Load the script and open every pooled connection before the clock starts.
    redis = get_redis()
    for pool in in_pool:
        await services.enqueue_or_match("warmup", ["WARMUP"], uuid.uuid4().hex, pool=pool)
        await services.leave_queues("warmup", pool=pool)
    await asyncio.gather(*(redis.ping() for _ in range(callers)))

    states: dict[str, int] = {}
    next_user = iter(users)

    async def caller() -> None:
        for user_id, interests, token, pool in next_user:
            result = await services.enqueue_or_match(user_id, interests, token, pool=pool)
            if result.state == services.MATCHED_STATE:  # as the stream does, holding the reply
                await services.confirm_match(result, user_id, token)
            states[result.state] = states.get(result.state, 0) + 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    started = time.time()
    await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(callers))), 300)
    finished = time.time()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close_redis()
    return {
        "worker": worker,
        "calls": calls,
        "states": states,
        "started": started,
        "finished": finished,
        "client_cpu_s": cpu,
        "wall_s": wall,
    }


def worker_main(
    worker, callers, calls, seed, unbatched, barrier, results, env=ENGINE_ENV, pools=()
) -> None:
    os.environ.update(env)
    import django

    django.setup()
    barrier.wait(timeout=60)
    results.put(asyncio.run(drive(worker, callers, calls, seed, unbatched, pools)))


def redis_cpu(client) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def run_engine(
    processes: int,
    callers: int,
    calls: int,
    seed: int,
    unbatched: bool,
    env: dict[str, str] = ENGINE_ENV,
    pools: tuple[str, ...] = (),
    servers: list | None = None,
) -> dict:
    """One run; ``servers`` (plain clients of every Redis serving it, flushed before the
    run: default, the one at BENCH_REDIS_URL) give Redis' CPU, summed."""
    import redis

    servers = servers or [redis.Redis.from_url(BENCH_REDIS_URL)]
    for client in servers:
        client.flushdb()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes + 1), ctx.Queue()
    per_worker = [callers // processes + (i < callers % processes) for i in range(processes)]
    workers = [
        ctx.Process(
            target=worker_main,
            args=(
                i,
                per_worker[i],
                calls // processes,
                seed + i,
                unbatched,
                barrier,
                results,
                env,
                pools,
            ),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=90)
        cpu0, machine0 = sum(map(redis_cpu, servers)), psutil.cpu_times()
        reports = [results.get(timeout=360) for _ in workers]
        redis_cpu_s, machine1 = sum(map(redis_cpu, servers)) - cpu0, psutil.cpu_times()
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    for client in servers:
        client.close()
    total = sum(r["calls"] for r in reports)
    wall = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    states: dict[str, int] = {}
    for report in reports:
        for state, count in report["states"].items():
            states[state] = states.get(state, 0) + count
    busy = sum(machine1) - machine1.idle - sum(machine0) + machine0.idle
    ours = sum(r["client_cpu_s"] for r in reports) + redis_cpu_s
    return {
        "ops_per_s": total / wall,
        "calls": total,
        "wall_s": wall,
        "states": states,
        "matched_share": states.get("MATCHED", 0) / total,
        "client_cpu_s": [round(r["client_cpu_s"], 2) for r in reports],
        "client_cpu_share": [round(r["client_cpu_s"] / r["wall_s"], 2) for r in reports],
        "redis_cpu_share": round(redis_cpu_s / wall, 2),
        # Cores used by everyone else meanwhile (other engineers' test suites).
        "others_cpu_share": round(max(0.0, busy - ours) / wall, 2),
    }


def redis_benchmark(args: list[str], requests: int, clients: int) -> float:
    """Requests per second reported by ``redis-benchmark`` (pipeline 1)."""
    url = urlsplit(BENCH_REDIS_URL)  # the Redis the scripts were loaded into
    command = [
        "redis-benchmark", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379),
        "--dbnum", url.path.lstrip("/") or "0",
        "-n", str(requests), "-c", str(clients), "-P", "1", "--csv", *args,
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    rows = [line for line in out.stdout.splitlines() if line.startswith('"') and "rps" not in line]
    return float(re.findall(r'"([\d.]+)"', rows[-1])[0])


def trivial_evalsha_ceiling(clients: int) -> float:
    import redis

    client = redis.Redis.from_url(BENCH_REDIS_URL)
    sha = client.script_load("return 1")
    client.close()
    return redis_benchmark(["EVALSHA", sha, "0"], REDIS_BENCHMARK_REQUESTS, clients)


class ArgumentRecorder:
    """Stands in for the Redis client to capture the arguments the product sends."""

    async def evalsha(self, sha: str, keys: tuple[str, ...], *args):
        if hasattr(self, "sha"):  # the bookkeeping after the matcher's call: its reply
            return -1
        self.sha, self.args = sha, [str(len(keys)), *keys, *(str(a) for a in args)]
        return ["WAITING", "0", ""]


def matcher_script_from_c_client(clients: int) -> float:
    """The real matcher script from redis-benchmark: one interest, so calls alternate.

    The arguments are whatever ``services.enqueue_or_match`` sends (captured, not
    copied), with the user id randomised by redis-benchmark's ``__rand_int__``.
    """
    import django
    import redis

    os.environ.update(ENGINE_ENV)
    django.setup()
    from animochat import redis_client
    from matchmaking import services, store

    recorder = ArgumentRecorder()
    real_batcher = redis_client.command_batcher
    redis_client.command_batcher = lambda: recorder
    try:
        asyncio.run(services.enqueue_or_match("u:__rand_int__", ["TOPIC00"], "tok"))
    finally:
        redis_client.command_batcher = real_batcher
    client = redis.Redis.from_url(BENCH_REDIS_URL)
    client.flushdb()
    client.script_load(store.ENQUEUE_OR_MATCH.source)
    client.close()
    args = ["EVALSHA", recorder.sha, *recorder.args]
    return redis_benchmark(["-r", "100000000", *args], 100_000, clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--callers", type=int, default=64, help="concurrent tasks in all")
    parser.add_argument("--calls", type=int, default=60_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="comparison: one EVALSHA per call instead of the product's batches",
    )
    options = parser.parse_args()

    runs, ceilings, c_client = [], [], []
    for n in range(options.runs):
        quiet = wait_for_quiet()
        runs.append(
            run_engine(
                options.processes, options.callers, options.calls, n * 100, options.unbatched
            )
        )
        runs[-1]["quiet"] = quiet
        ceilings.append(trivial_evalsha_ceiling(options.callers))
        c_client.append(matcher_script_from_c_client(options.callers))
        run = runs[-1]
        print(
            f"run {n + 1}: {run['ops_per_s']:,.0f} ops/s (matched {run['matched_share']:.0%}, "
            f"CPU: client {run['client_cpu_share']}, Redis {run['redis_cpu_share']}, "
            f"others {run['others_cpu_share']}); trivial EVALSHA {ceilings[-1]:,.0f}/s; "
            f"matcher script from redis-benchmark {c_client[-1]:,.0f}/s",
            flush=True,
        )
    engine = statistics.median(r["ops_per_s"] for r in runs)
    ceiling = statistics.median(ceilings)
    summary = {
        "benchmark": "engine",
        "processes": options.processes,
        "client": "unbatched (comparison)" if options.unbatched else "project client",
        "callers": options.callers,
        "calls_per_run": options.calls,
        "engine_ops_per_s_median": round(engine),
        "engine_runs": runs,
        "trivial_evalsha_per_s_median": round(ceiling),
        "trivial_evalsha_runs": ceilings,
        "matcher_script_redis_benchmark_per_s_median": round(statistics.median(c_client)),
        "matcher_script_redis_benchmark_runs": c_client,
        "ratio_engine_to_trivial": round(engine / ceiling, 3),
        "target_ops_per_s": 10_000,
        "target_met": engine >= 10_000,
        "redis_benchmark_options": f"-c {options.callers} -P 1 (EVALSHA <sha of 'return 1'> 0)",
        "conditions": machine_conditions(),
    }
    name = f"engine-{options.processes}p" + ("-unbatched" if options.unbatched else "")
    path = save_results(name, summary)
    print_json_summary(
        summary,
        [
            "engine_ops_per_s_median",
            "trivial_evalsha_per_s_median",
            "matcher_script_redis_benchmark_per_s_median",
            "ratio_engine_to_trivial",
            "target_met",
        ],
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()

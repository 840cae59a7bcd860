"""Matcher calls per second on Redis Cluster: one primary against three.

The same three match pools (``na``, ``eu``, ``us``: their hash tags fall in the three
slot ranges ``redis-cli --cluster create`` gives three primaries) and the same client
path (``REDIS_CLUSTER_NODES``, the project's cluster client and per-primary batches)
both times; only the number of primaries differs. With one primary every pool's
matcher runs on one Redis core; with three, each pool has a primary, a core, of its own.
Two loads, each on both clusters:

* **C client**: one ``redis-benchmark`` per pool at once, each sending that pool's real
  matcher call to the primary serving the pool's slot (the arguments
  ``matchmaking.store`` sends, captured; one interest, random user ids, so half the
  calls match): Redis is the limit, as in ``bench.engine``'s matcher-script figure.
* **Python client**: ``--processes`` generator processes of ``--callers`` asyncio
  callers in all (:func:`bench.engine.drive`: users with 1 to 3 of 20 interests, each
  match confirmed, each arrival first leaving the two other pools), the users spread
  over the pools in turn: the whole service path, where the client is the limit here.

Run (a few minutes; starts its own nodes on ports 7100-7199 and stops them)::

    .venv/bin/python -m bench.cluster                  # 3 generator processes, 3 runs each
    .venv/bin/python -m bench.cluster --processes 4 --runs 1

Each run first waits (up to 90 s) for the shared machine to be mostly idle. The machine
has 2 cores: three primaries and the generators then share them, so the figure says how
far the pools spread the matcher's work, not what three machines would do.

Results go to ``bench/results/cluster-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import time

import redis

from bench.common import machine_conditions, print_json_summary, save_results, wait_for_quiet
from bench.engine import ENGINE_ENV, ArgumentRecorder, run_engine
from tests.support.redis_cluster import RedisCluster

POOLS = ("na", "eu", "us")
C_CLIENT_REQUESTS = 100_000  # per pool and run
C_CLIENT_CONNECTIONS = 32  # per pool


def matcher_calls() -> tuple[str, dict[str, list[str]]]:
    """The matcher script's source and, per pool, the ``EVALSHA`` the service sends
    for a random user (``__rand_int__``) with one interest, as redis-benchmark runs it."""
    import django

    os.environ.update(
        {**ENGINE_ENV, "REDIS_CLUSTER_NODES": "127.0.0.1:7100", "MATCH_POOLS": ",".join(POOLS)}
    )
    django.setup()
    from animochat import redis_client
    from matchmaking import store

    calls = {}
    real_batcher = redis_client.command_batcher
    for pool in POOLS:
        recorder = ArgumentRecorder()
        redis_client.command_batcher = lambda recorder=recorder: recorder
        try:
            asyncio.run(
                store.enqueue_or_match(
                    "u:__rand_int__", ["TOPIC00"], "tok", "c:__rand_int__",
                    lease_ms=3_600_000, session_ttl_s=60, maintenance_default=False,
                    cooldown_ms=0, fallback_after_ms=-1,
                    fallback_servers=("http://chat-a.bench",), pool=pool,
                )
            )  # fmt: skip
        finally:
            redis_client.command_batcher = real_batcher
        calls[pool] = ["EVALSHA", recorder.sha, *recorder.args]
    return store.ENQUEUE_OR_MATCH.source, calls


def c_client_run(cluster: RedisCluster, source: str, calls: dict[str, list[str]]) -> dict:
    """Every pool's redis-benchmark at once; matcher calls/s over them all."""
    cluster.flush()
    loader = cluster.client()
    loader.script_load(source)  # on every primary
    loader.close()
    # Each pool's calls straight to the primary serving its slot: redis-benchmark's own
    # --cluster mode routes EVALSHA by the script's SHA, not by its first key.
    commands = [
        [
            "redis-benchmark", "-h", "127.0.0.1", "-p", str(cluster.primary_of("{p:" + pool + "}")),
            "-n", str(C_CLIENT_REQUESTS), "-c", str(C_CLIENT_CONNECTIONS), "-P", "1",
            "-r", "100000000", "--csv", *calls[pool],
        ]
        for pool in POOLS
    ]  # fmt: skip
    started = time.perf_counter()
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in commands]
    outputs = [process.communicate(timeout=600)[0] for process in running]
    wall = time.perf_counter() - started
    per_pool = [float(re.findall(r'"([\d.]+)"', out.splitlines()[-1])[0]) for out in outputs]
    return {
        "calls_per_s": len(POOLS) * C_CLIENT_REQUESTS / wall,
        "per_pool_rps": per_pool,
        "wall_s": round(wall, 2),
    }


def measure(primaries: int, options: argparse.Namespace, source: str, calls: dict) -> dict:
    cluster = RedisCluster(primaries).start()
    try:
        c_client = []
        for n in range(options.runs):
            quiet = wait_for_quiet()
            run = c_client_run(cluster, source, calls)
            run["quiet"] = quiet
            c_client.append(run)
            print(
                f"{primaries} primar{'y' if primaries == 1 else 'ies'}, C client run {n + 1}: "
                f"{run['calls_per_s']:,.0f} matcher calls/s (per pool {run['per_pool_rps']})",
                flush=True,
            )
        env = {
            **ENGINE_ENV,
            "REDIS_CLUSTER_NODES": cluster.nodes_env,
            "MATCH_POOLS": ",".join(POOLS),
        }
        holders = sorted({cluster.primary_of("{p:" + pool + "}") for pool in POOLS})
        runs = []
        for n in range(options.runs):
            quiet = wait_for_quiet()
            # Plain clients of the nodes: each flushed before the run, their CPU summed.
            servers = [redis.Redis(port=port) for port in cluster.ports]
            run = run_engine(
                options.processes, options.callers, options.calls, n * 100, False, env, POOLS,
                servers,
            )  # fmt: skip
            run["quiet"] = quiet
            run["primaries_holding_the_pools"] = holders
            runs.append(run)
            print(
                f"{primaries} primar{'y' if primaries == 1 else 'ies'}, Python run {n + 1}: "
                f"{run['ops_per_s']:,.0f} calls/s (matched {run['matched_share']:.0%}, "
                f"CPU: clients {run['client_cpu_share']}, Redis {run['redis_cpu_share']}, "
                f"others {run['others_cpu_share']})",
                flush=True,
            )
        return {"c_client": c_client, "python": runs}
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="generator processes")
    parser.add_argument("--callers", type=int, default=96, help="concurrent tasks in all")
    parser.add_argument("--calls", type=int, default=60_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    source, calls = matcher_calls()
    one = measure(1, options, source, calls)
    three = measure(3, options, source, calls)
    summary = {
        "benchmark": "cluster",
        "pools": POOLS,
        "processes": options.processes,
        "callers": options.callers,
        "calls_per_run": options.calls,
        "c_client_connections_per_pool": C_CLIENT_CONNECTIONS,
        "conditions": machine_conditions(),
    }
    for load, key in (("c_client", "calls_per_s"), ("python", "ops_per_s")):
        one_median = statistics.median(run[key] for run in one[load])
        three_median = statistics.median(run[key] for run in three[load])
        summary[f"{load}_one_primary_per_s_median"] = round(one_median)
        summary[f"{load}_three_primaries_per_s_median"] = round(three_median)
        summary[f"{load}_ratio_three_to_one"] = round(three_median / one_median, 2)
        summary[f"{load}_one_primary_runs"] = one[load]
        summary[f"{load}_three_primaries_runs"] = three[load]
    path = save_results("cluster", summary)
    print_json_summary(
        summary,
        [
            f"{load}_{figure}"
            for load in ("c_client", "python")
            for figure in ("one_primary_per_s_median", "three_primaries_per_s_median")
        ]
        + ["c_client_ratio_three_to_one", "python_ratio_three_to_one"],
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()

"""Matcher calls per second on Redis Cluster: one primary against three.

The same three match pools (``na``, ``eu``, ``us``: their hash tags fall in the three
slot ranges ``redis-cli --cluster create`` gives three primaries) and the same client
path (``REDIS_CLUSTER_NODES``, the project's cluster client and per-primary batches)
both times; only the number of primaries differs. With one primary every pool's
matcher runs on one Redis core; with three, each pool has a primary, a core, of its own.
The load comes from ``--processes`` generator processes of ``--callers`` asyncio callers
in all (:func:`bench.engine.drive`: users with 1 to 3 of 20 interests, each match
confirmed), the users spread over the pools in turn.

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
import statistics

import redis

from bench.common import machine_conditions, print_json_summary, save_results, wait_for_quiet
from bench.engine import ENGINE_ENV, run_engine
from tests.support.redis_cluster import RedisCluster

POOLS = ("na", "eu", "us")


def measure(primaries: int, options: argparse.Namespace) -> list[dict]:
    cluster = RedisCluster(primaries).start()
    try:
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
                f"{primaries} primar{'y' if primaries == 1 else 'ies'}, run {n + 1}: "
                f"{run['ops_per_s']:,.0f} calls/s (matched {run['matched_share']:.0%}, "
                f"CPU: clients {run['client_cpu_share']}, Redis {run['redis_cpu_share']}, "
                f"others {run['others_cpu_share']})",
                flush=True,
            )
        return runs
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="generator processes")
    parser.add_argument("--callers", type=int, default=96, help="concurrent tasks in all")
    parser.add_argument("--calls", type=int, default=60_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    one = measure(1, options)
    three = measure(3, options)
    one_median = statistics.median(run["ops_per_s"] for run in one)
    three_median = statistics.median(run["ops_per_s"] for run in three)
    summary = {
        "benchmark": "cluster",
        "pools": POOLS,
        "processes": options.processes,
        "callers": options.callers,
        "calls_per_run": options.calls,
        "one_primary_ops_per_s_median": round(one_median),
        "three_primaries_ops_per_s_median": round(three_median),
        "ratio_three_to_one": round(three_median / one_median, 2),
        "one_primary_runs": one,
        "three_primaries_runs": three,
        "conditions": machine_conditions(),
    }
    path = save_results("cluster", summary)
    print_json_summary(
        summary,
        [
            "one_primary_ops_per_s_median",
            "three_primaries_ops_per_s_median",
            "ratio_three_to_one",
        ],
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()

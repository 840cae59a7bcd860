"""Back-to-back comparison: one benchmark on this checkout and on another, alternately.

On a shared machine two versions measured an hour apart compare the machine, not the
code. This runs the same benchmark command in this checkout (A) and in another one (B,
typically a ``git worktree`` of an older commit), one run at a time, alternately
(A B A B A B), each with its own code and its own load generator, then prints every
run and the medians side by side with B/A… ratios. Before each run it records the load
average and the processes other users kept busy::

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python -m bench.compare --other /tmp/before stream saturation
    .venv/bin/python -m bench.compare --other /tmp/before stream latency
    .venv/bin/python -m bench.compare --other /tmp/before stream capacity
    .venv/bin/python -m bench.compare --other /tmp/before --runs 1 soak --minutes 3

``--here-only "--app floor"`` adds arguments on this checkout's side only: Daphne's own
cost of a pair (``bench/daphne_floor.py``) beside an older version of the product.
Anything after the benchmark's name is passed to it (``--runs 1`` is added for the
stream benchmarks: the alternation is done here). Both sides use ``BENCH_REDIS_URL``
as set for this command: point it at a Redis nobody else uses, since the Redis CPU
per pair is read from its ``INFO``. Results: ``bench/results/compare-<name>-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench import soak
from bench.common import median, save_results

HERE = Path(__file__).resolve().parents[1]
# The load generator's code: if it differs between the checkouts, the comparison
# measures the generators too, so the report says so.
GENERATOR_FILES = ["bench/common.py", "bench/stream.py", "bench/soak.py", "tests/support"]


def daphne_share(cpu: dict[str, float]) -> float:
    return sum(v for k, v in cpu.items() if k.startswith("daphne"))


def redis_us_per_pair(cpu: dict[str, float], daphne_ms_per_pair: float) -> float:
    """Redis CPU per pair, over the same pairs as the benchmark's Daphne figure."""
    daphne = daphne_share(cpu)
    if not daphne or math.isnan(daphne_ms_per_pair):
        return math.nan
    return round(daphne_ms_per_pair * cpu["redis"] / daphne * 1000)


def figures_saturation(result: dict) -> dict:
    run = result["runs"][0]
    best = run["best"]
    cpu = best["cpu_share"]
    daphne = daphne_share(cpu)
    ms_per_pair = best["daphne_cpu_ms_per_pair"]
    return {
        "pairs/s": best["pairs_per_s"],
        "in flight": best["concurrency"],
        "Daphne ms/pair": ms_per_pair,
        # Same denominator as Daphne's figure (pairs completed over the measured time).
        "Redis µs/pair": redis_us_per_pair(cpu, ms_per_pair),
        "Daphne core": round(daphne, 2),
        "Redis core": cpu["redis"],
        "errors": sum(n for point in run["sweep"] for n in point["errors"].values()),
        "others core": cpu["others"],
    }


def figures_latency(result: dict) -> dict:
    run = result["runs"][0]
    cpu = run["cpu_share"]
    daphne = daphne_share(cpu)
    ms_per_pair = run["daphne_cpu_ms_per_pair"]
    return {
        "p99 ms": run["notify_ms"]["p99"],
        "p95 ms": run["notify_ms"]["p95"],
        "p50 ms": run["notify_ms"]["p50"],
        "pairs ok": run["pairs_ok"],
        "errors": sum(run["errors"].values()),
        "Daphne ms/pair": ms_per_pair,
        "Redis µs/pair": redis_us_per_pair(cpu, ms_per_pair),
        "Daphne core": round(daphne, 2),
        "others core": cpu["others"],
    }


def figures_capacity(result: dict) -> dict:
    run = result["runs"][0]
    return {
        "WAITING": run["got_waiting"],
        "open after hold": run["still_open_after_hold"],
        "RSS MB": run["rss_mb_after_hold"],
        "RSS idle MB": run["rss_mb_before"],
        "KB/stream": run["kb_per_stream"],
        "open s": run["open_seconds"],
    }


def figures_soak(result: dict) -> dict:
    memory = result["memory"]
    return {
        "growth after warm-up %": max(m["growth_after_warm_up_pct"] for m in memory),
        "RSS end MB": max(m["rss_end_mib"] for m in memory),
        "operations": result["traffic"].get("operations", 0),
        "matched users": result["traffic"].get("matched users", 0),
        "errors": result["errors"],
        # Judged by this checkout's rule on both sides (an older soak may count less).
        "keys left": sum(
            n
            for kind, n in result["redis_keys"]["left_by_kind"].items()
            if kind not in soak.SERVICE_WIDE_KEYS | soak.SERVICE_WIDE_KINDS
        ),
    }


FIGURES = {
    "saturation": figures_saturation,
    "latency": figures_latency,
    "capacity": figures_capacity,
    "soak": figures_soak,
}


def busy_others(seconds: float = 1.0) -> list[str]:
    """Processes other than ours keeping a CPU busy, as ``name cpu%``."""
    procs = list(psutil.process_iter(["pid", "cmdline"]))
    for proc in procs:
        try:
            proc.cpu_percent(None)
        except psutil.Error:
            continue
    time.sleep(seconds)
    busy = []
    for proc in procs:
        try:
            share = proc.cpu_percent(None)
            if share >= 10 and proc.pid != os.getpid():
                busy.append((share, " ".join(proc.info["cmdline"] or [])[:60]))
        except psutil.Error:
            continue
    return [f"{cmd} {share:.0f}%" for share, cmd in sorted(busy, reverse=True)[:5]]


class Run:
    """One run of ``benchmark`` in ``checkout``, started at once; ``result()`` waits."""

    def __init__(self, checkout: Path, benchmark: list[str]) -> None:
        module, *args = benchmark
        self.checkout = checkout
        self.output: Path | None = None
        self.command = [sys.executable, "-m", f"bench.{module}", *args]
        if module == "stream":
            self.command += ["--runs", "1"]
        else:
            self.output = Path(tempfile.mkstemp(prefix="compare-", suffix=".json")[1])
            self.command += ["--output", str(self.output)]
        self.process = subprocess.Popen(
            self.command, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def result(self) -> dict:
        """The run's results file, as a dict."""
        stdout, stderr = self.process.communicate()
        if self.process.returncode != 0:
            command = " ".join(self.command)
            raise RuntimeError(f"{command} failed in {self.checkout}:\n{stderr[-3000:]}")
        if self.output is not None:
            result = json.loads(self.output.read_text())
            self.output.unlink()
            return result
        path = re.search(r"^results: (.+)$", stdout, re.MULTILINE).group(1)
        return json.loads(Path(path).read_text())


def machine_now() -> dict:
    return {
        "at": time.strftime("%H:%M:%S", time.gmtime()),
        "load": [round(x, 1) for x in os.getloadavg()],
        "busy": busy_others(),
    }


def revision(checkout: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def generator_differs(this: Path, other: Path) -> bool:
    """Whether the load generator's files differ between the two checkouts."""
    diff = subprocess.run(
        ["git", "-C", str(this), "diff", "--quiet", revision(other), "--", *GENERATOR_FILES],
        capture_output=True,
    )  # fmt: skip
    return diff.returncode != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", type=Path, required=True, help="the checkout to compare with")
    parser.add_argument("--runs", type=int, default=3, help="runs on each side (default 3)")
    parser.add_argument(
        "--together",
        action="store_true",
        help="start A and B at the same time (the soak: memory and errors, not speed)",
    )
    parser.add_argument(
        "--here-only",
        default="",
        help='arguments added on this side only, e.g. --here-only="--app floor"',
    )
    parser.add_argument("benchmark", nargs=argparse.REMAINDER, help="e.g. stream saturation")
    options = parser.parse_args()
    if not options.benchmark or options.benchmark[0] not in ("stream", "soak"):
        parser.error("name a benchmark: stream latency|saturation|capacity ..., or soak ...")
    kind = options.benchmark[0] if options.benchmark[0] == "soak" else options.benchmark[1]
    sides = {"A": HERE, "B": options.other.resolve()}
    commands = {"A": options.benchmark + options.here_only.split(), "B": options.benchmark}
    labels = {name: f"{name} {revision(path)}" for name, path in sides.items()}
    print(f"A = {sides['A']} ({labels['A']}), B = {sides['B']} ({labels['B']})")
    differs = generator_differs(sides["A"], sides["B"])
    if differs:
        print("note: the load generator's code differs between A and B")

    runs: list[dict] = []

    def record(name: str, n: int, conditions: dict, result: dict) -> None:
        figures = FIGURES[kind](result)
        runs.append({"side": name, "run": n + 1, **conditions, "figures": figures})
        runs[-1]["result"] = result
        print(
            f"{name} run {n + 1} at {conditions['at']} UTC, load {conditions['load']}: "
            f"{figures}  (busy before: {'; '.join(conditions['busy']) or 'nothing'})",
            flush=True,
        )

    for n in range(options.runs):
        if options.together:
            conditions = machine_now()
            started = {name: Run(path, commands[name]) for name, path in sides.items()}
            for name, run in started.items():
                record(name, n, conditions, run.result())
            continue
        for name, path in sides.items():
            conditions = machine_now()
            record(name, n, conditions, Run(path, commands[name]).result())

    medians = {
        name: {
            key: median([r["figures"][key] for r in runs if r["side"] == name])
            for key in runs[0]["figures"]
        }
        for name in sides
    }
    print(f"\nmedians of {options.runs} ({' '.join(commands['A'])}):")
    print(f"{'':24} {labels['A']:>12} {labels['B']:>12} {'A/B':>6}")
    for key, a in medians["A"].items():
        b = medians["B"][key]
        ratio = f"{a / b:.2f}" if isinstance(a, int | float) and b else ""
        print(f"{key:24} {a:>12} {b:>12} {ratio:>6}")
    path = save_results(
        f"compare-{kind}",
        {
            "benchmark": commands["A"],
            "benchmark_b": commands["B"],
            "sides": {
                name: {"path": str(p), "revision": labels[name]} for name, p in sides.items()
            },
            "generator_differs": differs,
            "runs": runs,
            "medians": medians,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()

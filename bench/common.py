"""Helpers shared by the benchmarks: where results go and what the machine was doing."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import psutil

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_conditions() -> dict:
    """Load and memory when the benchmark ran: this machine is shared, so say how busy."""
    busy = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            busy.append((proc.cpu_percent(None), proc))
        except psutil.Error:
            continue
    time.sleep(0.5)
    top = []
    for _, proc in busy:
        try:
            share = proc.cpu_percent(None)
            if share >= 5:
                top.append({"pid": proc.pid, "cpu%": share, "cmd": " ".join(proc.cmdline())[:80]})
        except psutil.Error:
            continue
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "memory_available_gib": round(psutil.virtual_memory().available / 2**30, 1),
        "other_busy_processes": sorted(top, key=lambda p: -p["cpu%"])[:6],
        "python": platform.python_version(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def machine_busy_share(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (0 to 1), whoever uses them."""
    psutil.cpu_percent(None)
    time.sleep(seconds)
    return psutil.cpu_percent(None) / 100


def wait_for_quiet(limit: float = 0.35, patience: float | None = None) -> dict:
    """Wait (at most ``patience`` s) until the machine is mostly idle before a run.

    Other engineers' test suites share these 2 cores; starting a run while they are
    busy measures them, not us. Returns how long we waited and how busy it was.
    """
    if patience is None:
        patience = float(os.environ.get("BENCH_QUIET_PATIENCE", "90"))
    started = time.monotonic()
    busy = machine_busy_share()
    while busy > limit and time.monotonic() - started < patience:
        busy = machine_busy_share(2.0)
    return {"waited_s": round(time.monotonic() - started, 1), "busy_share_at_start": round(busy, 2)}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def save_results(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def print_json_summary(data: dict, keys: list[str]) -> None:
    for key in keys:
        print(f"{key}: {data.get(key)}")

"""The service's own CPU per pair, with no HTTP server: the part above Daphne's floor.

``bench.stream saturation`` measures a whole Daphne process, where Twisted's HTTP
handling and the event loop take about half the CPU and vary with the machine's load.
This benchmark drives the product's ASGI application (``animochat.asgi.application``)
in its own process, on uvloop as Daphne runs it, with in-memory requests shaped as
Daphne shapes them (the same scope, the request message, and a disconnect message for
the waiting side once its response is over) and against a real Redis. What it measures is
what the service adds to every pair: the consumer, the matcher calls through the
command batcher, the notification, the log lines (written to ``/dev/null``).

A *pair* is the one of ``bench.stream``: a waiting user gets ``WAITING``, then a partner
with the same interest gets ``MATCHED`` and the waiting user is told. ``--concurrency``
pairs are in flight at once, as in the saturation benchmark, so the command batcher and
the log lines batch as they do there.

Run (flushes Redis database 13 first; ``BENCH_REDIS_URL`` to change it)::

    .venv/bin/python -m bench.app_cost                 # 3 runs of 10 s, 64 pairs in flight
    .venv/bin/python -m bench.app_cost --app floor     # bench/daphne_floor.py's application

Results go to ``bench/results/app-cost-<app>-<time>.json``: the process's CPU per pair
(user and system time, read by the process itself), Redis' CPU per pair, pairs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import os
import sys
import time
from urllib.parse import urlencode

import psutil
import redis
import uvloop

from bench.common import (
    BENCH_REDIS_URL,
    machine_conditions,
    median,
    print_json_summary,
    save_results,
    wait_for_quiet,
)
from bench.stream import SERVER_ENV

APPS = {
    "consumer": "animochat.asgi:application",
    "floor": "bench.daphne_floor:application",
}


class Request:
    """One request as Daphne hands it over: ``receive`` gives the request, then waits
    until :meth:`disconnect`; ``send`` keeps what the application answered."""

    def __init__(self, params: dict[str, str], port: int) -> None:
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.0",
            "method": "GET",
            "scheme": "http",
            "path": "/matchmaking",
            "raw_path": b"/matchmaking",
            "root_path": "",
            "query_string": urlencode(params).encode(),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"text/event-stream")],
            "client": ["127.0.0.1", port],
            "server": ["127.0.0.1", 8000],
        }
        self.requested = False
        self.gone = asyncio.get_running_loop().create_future()
        self.events: list[dict] = []
        self.event_arrived = asyncio.Event()
        self.ended = False

    async def receive(self) -> dict:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.body":
            for chunk in message.get("body", b"").split(b"\n\n"):
                for line in chunk.split(b"\n"):
                    if line.startswith(b"data: "):
                        self.events.append(json.loads(line[6:]))
                        self.event_arrived.set()
            self.ended = self.ended or not message.get("more_body", False)

    def disconnect(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    async def next_event(self, index: int) -> dict:
        while len(self.events) <= index:
            self.event_arrived.clear()
            await asyncio.wait_for(self.event_arrived.wait(), 10)
        return self.events[index]


async def run_pair(application, tag: str, port: int) -> None:
    interest = f"B{tag}"
    waiting = Request({"userId": f"w{tag}", "interest": interest}, port)
    partner = Request({"userId": f"p{tag}", "interest": interest}, port + 1)
    waiting_task = asyncio.ensure_future(application(waiting.scope, waiting.receive, waiting.send))
    try:
        if (await waiting.next_event(0)).get("state") != "WAITING":
            raise RuntimeError(f"waiting side: {waiting.events}")
        await application(partner.scope, partner.receive, partner.send)
        answer, told = partner.events[-1], await waiting.next_event(1)
        if answer.get("state") != "MATCHED" or told.get("chatId") != answer.get("chatId"):
            raise RuntimeError(f"pair {tag}: {answer} / {told}")
        # The response is over: the client closes, as Daphne then tells the application.
        waiting.disconnect()
        await asyncio.wait_for(waiting_task, 10)
    finally:
        waiting.disconnect()
        waiting_task.cancel()


async def measure(
    application, concurrency: int, seconds: float, warmup: float, pairs: int = 0
) -> dict:
    """Pairs for ``warmup`` then ``seconds`` (or ``pairs`` pairs, none to warm up)."""
    client = redis.Redis.from_url(BENCH_REDIS_URL)
    tags = itertools.count()
    done = 0
    stop_at = time.monotonic() + warmup + seconds

    async def worker() -> None:
        nonlocal done
        while True:
            n = next(tags)
            if n >= pairs if pairs else time.monotonic() >= stop_at:
                return
            await run_pair(application, f"{os.getpid()}x{n}", 10000 + 2 * (n % 20000))
            done += 1

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    if not pairs:
        await asyncio.sleep(warmup)
    this = psutil.Process()
    cpu0, redis0, pairs0, wall0 = this.cpu_times(), _redis_cpu(client), done, time.monotonic()
    await asyncio.gather(*workers)
    cpu1, redis1, pairs1, wall1 = this.cpu_times(), _redis_cpu(client), done, time.monotonic()
    pairs = pairs1 - pairs0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "pairs": pairs,
        "pairs_per_s": round(pairs / (wall1 - wall0), 1),
        "cpu_ms_per_pair": round(1000 * cpu / pairs, 4),
        "redis_us_per_pair": round(1e6 * (redis1 - redis0) / pairs, 1),
    }


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def load_application(app: str):
    for name, value in {**SERVER_ENV, "DJANGO_SETTINGS_MODULE": "animochat.settings"}.items():
        os.environ.setdefault(name, value)
    module, _, attribute = APPS[app].partition(":")
    return getattr(importlib.import_module(module), attribute)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=sorted(APPS), default="consumer")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument(
        "--pairs", type=int, default=0, help="this many pairs instead of --seconds (no warm-up)"
    )
    args = parser.parse_args()
    # The log lines go where Daphne's go in bench.stream: a file nobody reads.
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved_stderr = os.dup(2)
    application = load_application(args.app)
    runs = []
    for run in range(1, args.runs + 1):
        redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
        quiet = wait_for_quiet()
        os.dup2(devnull, 2)
        try:
            figures = uvloop.run(
                measure(application, args.concurrency, args.seconds, args.warmup, args.pairs)
            )
        finally:
            os.dup2(saved_stderr, 2)
        figures.update(quiet)
        runs.append(figures)
        print(f"run {run}: {figures}", flush=True)
    data = {
        "benchmark": "app_cost",
        "app": args.app,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "runs": runs,
        "cpu_ms_per_pair_median": median([r["cpu_ms_per_pair"] for r in runs]),
        "redis_us_per_pair_median": median([r["redis_us_per_pair"] for r in runs]),
        "pairs_per_s_median": median([r["pairs_per_s"] for r in runs]),
        "machine": machine_conditions(),
    }
    path = save_results(f"app-cost-{args.app}", data)
    print_json_summary(data, ["cpu_ms_per_pair_median", "redis_us_per_pair_median"])
    print(f"results: {path}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

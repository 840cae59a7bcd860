"""Stream benchmarks: real Daphne processes driven over HTTP by an asyncio SSE client.

Sub-commands (each starts its own Daphne processes on free ports, talks only to
127.0.0.1, flushes Redis database 13 before every run, stops by itself and kills only
the processes it started; results go to ``bench/results/stream-<command>-<time>.json``)::

    .venv/bin/python -m bench.stream latency                # 200 pairs/s offered, 15 s, 3 runs
    .venv/bin/python -m bench.stream saturation             # max pairs/s, 1 Daphne process
    .venv/bin/python -m bench.stream saturation --servers 2 # ... and two
    .venv/bin/python -m bench.stream capacity               # 5,000 waiting streams held 30 s

Comparisons (bench-only code, not the product) for the README's design choice::

    .venv/bin/python -m bench.stream saturation --layer core   # channels_redis core layer
    .venv/bin/python -m bench.stream saturation --layer upstream  # its pub/sub layer as is
    .venv/bin/python -m bench.stream capacity --layer core --streams 2000
    .venv/bin/python -m bench.stream saturation --app view     # Django StreamingHttpResponse

A *pair* is a waiting user W (gets ``WAITING``) and a partner P with the same interest
(unique to the pair, so pairs never cross): P gets ``MATCHED`` in its own response
and W is told through the channel layer. Both must report the same ``chatId``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from bench.common import (
    BENCH_REDIS_URL,
    machine_conditions,
    median,
    percentile,
    save_results,
    wait_for_quiet,
)
from tests.support.servers import DaphneProcess
from tests.support.sse_client import SSEStream, open_stream

APPS = {
    # The product: raw ASGI consumer for /matchmaking (animochat/asgi.py).
    "consumer": "animochat.asgi:application",
    # Comparison only: the same steps in a Django async view (bench/view_comparison.py).
    "view": "bench.view_comparison:application",
    # Comparison only: Daphne's own cost of a pair, paired in memory (bench/daphne_floor.py).
    "floor": "bench.daphne_floor:application",
}
LAYERS = {
    "pubsub": "animochat.settings",  # the product's RedisInboxChannelLayer
    "core": "bench.settings_core_layer",  # comparison: channels_redis core layer
    "upstream": "bench.settings_upstream_pubsub_layer",  # comparison: the class it extends
}
SERVER_ENV = {
    "SECRET_KEY": "bench",
    "REDIS_URL": BENCH_REDIS_URL,
    "KEEPALIVE_SECONDS": "15",
    "CHAT_SERVER_URLS": ",".join(f"http://chat-{n}.bench" for n in range(8)),
    "DISCOVERY_SERVER_URL": "http://127.0.0.1:9/",
    # Every request comes from 127.0.0.1: the per-address limit would refuse the load.
    "RATE_LIMIT_PER_MINUTE": "0",
    "READ_RATE_LIMIT_PER_MINUTE": "0",
    "MAX_STREAMS_PER_CLIENT": "0",
}


class BenchDaphne(DaphneProcess):
    """A :class:`DaphneProcess` serving any ASGI application (for the comparisons)."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        super().__init__(env)
        self.app = app

    def start(self, timeout: float = 30.0) -> BenchDaphne:
        if self.app == APPS["consumer"]:
            return super().start(timeout)
        # Same as DaphneProcess.start with another application path.
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "animochat.serve", "-b", "127.0.0.1", "-p", str(self.port)]
        command += ["-v", "0", self.app]
        self.process = subprocess.Popen(
            command, cwd=Path(__file__).resolve().parents[1], env=self.env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"daphne did not start:\n{self.log()}")
            time.sleep(0.1)
        return self


def _answers(url: str) -> bool:
    import requests

    try:
        requests.get(url + "/maintenance", timeout=1)
        return True
    except requests.RequestException:
        return False


@contextlib.contextmanager
def daphne_servers(count: int, app: str, layer: str, extra_env: dict[str, str] | None = None):
    redis.Redis.from_url(BENCH_REDIS_URL).flushdb()
    env = {**SERVER_ENV, "DJANGO_SETTINGS_MODULE": LAYERS[layer], **(extra_env or {})}
    servers: list[BenchDaphne] = []
    try:
        for _ in range(count):
            servers.append(BenchDaphne(APPS[app], env).start())
        yield servers
    finally:
        for server in servers:
            server.stop(timeout=20)
            lines = server.log().splitlines() if server.log_path.exists() else []
            # Kept for the results file: what went wrong, if anything did.
            server.problems = [line[:300] for line in lines if '"level": "INFO"' not in line][:5]
            server.log_path.unlink(missing_ok=True)


class CpuMeter:
    """CPU seconds used by the servers, Redis and this load generator over a window."""

    def __init__(self, servers: list[BenchDaphne]) -> None:
        self.procs = {f"daphne{n}": psutil.Process(s.process.pid) for n, s in enumerate(servers)}
        self.redis = redis.Redis.from_url(BENCH_REDIS_URL)

    def sample(self) -> dict[str, float]:
        used = {name: sum(p.cpu_times()[:2]) for name, p in self.procs.items()}
        info = self.redis.info("cpu")
        used["redis"] = info["used_cpu_user"] + info["used_cpu_sys"]
        used["generator"] = time.process_time()
        times = psutil.cpu_times()
        used["machine"] = (sum(times) - times.idle - times.iowait) / psutil.cpu_count()
        return used

    def shares(self, before: dict[str, float], seconds: float) -> dict[str, float]:
        """CPU used per process (1.0 = one core) and by everyone else on the machine."""
        after = self.sample()
        # Four decimals: at a few dozen pairs/s on a busy machine, two would make the
        # per-pair figures below off by several per cent.
        shares = {name: round((after[name] - before[name]) / seconds, 4) for name in before}
        # "machine" is the share of both cores busy; "others" what other users took.
        ours = sum(v for k, v in shares.items() if k != "machine")
        shares["others"] = round(max(0.0, shares["machine"] * psutil.cpu_count() - ours), 2)
        return shares


# -- one pair ---------------------------------------------------------------------------


@dataclass
class Tally:
    pairs: list[dict] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def timed_event(stream: SSEStream, timeout: float) -> tuple[dict | None, float]:
    event = await stream.next_event(timeout)
    return event, time.perf_counter()


async def run_pair(tag: str, waiting_url: str, partner_url: str, timeout: float = 10.0) -> dict:
    """One pair end to end; returns its timings (ms) or raises ``PairFailed``."""
    interest = f"B{tag}"
    streams: list[SSEStream] = []
    notified: asyncio.Future | None = None
    try:
        started = time.perf_counter()
        waiting = await asyncio.wait_for(
            open_stream(waiting_url, params={"userId": f"w{tag}", "interest": interest}), timeout
        )
        streams.append(waiting)
        first, queued_at = await timed_event(waiting, timeout)
        if waiting.status != 200 or not first or first.get("state") != "WAITING":
            raise PairFailed(f"waiting:{waiting.status}:{(first or {}).get('state')}")
        notified = asyncio.ensure_future(timed_event(waiting, timeout))
        sent_at = time.perf_counter()
        partner = await asyncio.wait_for(
            open_stream(partner_url, params={"userId": f"p{tag}", "interest": interest}), timeout
        )
        streams.append(partner)
        answer, answered_at = await timed_event(partner, timeout)
        told, told_at = await notified
        if not answer or answer.get("state") != "MATCHED":
            raise PairFailed(f"partner:{partner.status}:{(answer or {}).get('state')}")
        if not told or told.get("state") != "MATCHED":
            raise PairFailed(f"notified:{(told or {}).get('state')}")
        if told["chatId"] != answer["chatId"] or told["matchedUserId"] != f"p{tag}":
            raise PairFailed("inconsistent")
        return {
            "queued_ms": (queued_at - started) * 1000,
            "partner_ms": (answered_at - sent_at) * 1000,
            # The waiting side's latency: from the partner's request to the notification.
            "notify_ms": (told_at - sent_at) * 1000,
            "after_partner_ms": (told_at - answered_at) * 1000,
            "done": time.perf_counter(),
        }
    except TimeoutError:
        raise PairFailed("timeout") from None
    except (ConnectionError, OSError) as error:
        raise PairFailed(type(error).__name__) from None
    finally:
        if notified is not None:
            notified.cancel()
        for stream in streams:
            await stream.close()


class PairFailed(Exception):
    pass


def pair_urls(servers: list[BenchDaphne], n: int) -> tuple[str, str]:
    """With two servers, half the pairs have W and P on different processes."""
    if len(servers) == 1:
        return servers[0].url, servers[0].url
    return servers[n % 2].url, servers[(n // 2) % 2].url


async def tally_pair(tally: Tally, tag: str, urls: tuple[str, str]) -> None:
    try:
        tally.pairs.append(await run_pair(tag, *urls))
    except PairFailed as error:
        tally.error(str(error))


# -- latency: open loop at a fixed offered rate ------------------------------------------


async def latency_run(servers: list[BenchDaphne], rate: float, seconds: float, run: int) -> dict:
    tally, tasks = Tally(), []
    meter = CpuMeter(servers)
    before = meter.sample()
    start = time.perf_counter()
    lateness = []
    for n in range(int(rate * seconds)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(max(0.0, -delay) * 1000)
        urls = pair_urls(servers, n)
        tasks.append(asyncio.ensure_future(tally_pair(tally, f"{run}x{n}", urls)))
    await asyncio.wait(tasks, timeout=30)
    elapsed = time.perf_counter() - start
    notify = [p["notify_ms"] for p in tally.pairs]
    cpu = meter.shares(before, elapsed)
    return {
        "offered_pairs_per_s": rate,
        "seconds": seconds,
        "pairs_ok": len(tally.pairs),
        "errors": tally.errors,
        "notify_ms": summary_ms(notify),
        "partner_ms": summary_ms([p["partner_ms"] for p in tally.pairs]),
        "after_partner_ms": summary_ms([p["after_partner_ms"] for p in tally.pairs]),
        "queued_ms": summary_ms([p["queued_ms"] for p in tally.pairs]),
        "generator_late_ms_p99": round(percentile(lateness, 99), 1),
        "cpu_share": cpu,
        "daphne_cpu_ms_per_pair": cpu_ms_per_pair(cpu, elapsed, len(tally.pairs)),
    }


def cpu_ms_per_pair(cpu: dict[str, float], seconds: float, pairs: int) -> float:
    """Daphne CPU per completed pair: unlike pairs/s, little affected by other load."""
    daphne = sum(v for k, v in cpu.items() if k.startswith("daphne"))
    return round(daphne * seconds * 1000 / pairs, 2) if pairs else float("nan")


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1) if values else float("nan"),
    }


# -- saturation: closed loop, many pairs in flight ----------------------------------------


async def saturation_run(
    servers: list[BenchDaphne], concurrency: int, seconds: float, warmup: float, run: int
) -> dict:
    tally = Tally()
    counter = itertools.count()
    start = time.perf_counter()
    deadline = start + warmup + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            n = next(counter)
            await tally_pair(tally, f"{run}s{n}", pair_urls(servers, n))

    meter = CpuMeter(servers)
    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    before = meter.sample()
    measured_from = time.perf_counter()
    await asyncio.wait(workers, timeout=warmup + seconds + 30)
    for task in workers:
        task.cancel()
    window_end = measured_from + seconds
    done = [p for p in tally.pairs if measured_from <= p["done"] <= window_end]
    measured = time.perf_counter() - measured_from
    cpu = meter.shares(before, measured)
    completed = len([p for p in tally.pairs if p["done"] >= measured_from])
    return {
        "concurrency": concurrency,
        "seconds": seconds,
        "pairs_per_s": round(len(done) / seconds, 1),
        "errors": tally.errors,
        "notify_ms": summary_ms([p["notify_ms"] for p in done]),
        "cpu_share": cpu,
        # CPU over the whole measured time, including pairs finishing after the window.
        "daphne_cpu_ms_per_pair": cpu_ms_per_pair(cpu, measured, completed),
        "redis_cpu_us_per_pair": round(cpu["redis"] * measured * 1e6 / completed, 1)
        if completed
        else float("nan"),
    }


# -- capacity: many waiting streams held open --------------------------------------------


async def capacity_run(server: BenchDaphne, streams: int, hold: float, run: int) -> dict:
    proc = psutil.Process(server.process.pid)
    rss_before = proc.memory_info().rss
    gate = asyncio.Semaphore(64)  # connects in flight: stay within the listen backlog
    opened: list[SSEStream] = []
    failures: dict[str, int] = {}

    async def open_one(n: int) -> None:
        async with gate:
            try:
                stream = await asyncio.wait_for(
                    open_stream(server.url, params={"userId": f"c{run}x{n}", "interest": f"C{n}"}),
                    30,
                )
            except (TimeoutError, OSError) as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                return
            try:
                event = await stream.next_event(30)
            except (TimeoutError, OSError) as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                await stream.close()
                return
            if event and event.get("state") == "WAITING":
                opened.append(stream)
            else:
                key = f"{stream.status}:{(event or {}).get('state') or (event or {}).get('code')}"
                failures[key] = failures.get(key, 0) + 1
                await stream.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(open_one(n) for n in range(streams))), 600)
    open_seconds = time.perf_counter() - started
    rss_waiting = proc.memory_info().rss

    # Hold: every stream reads until the hold ends: keepalive comments, each followed by
    # a WAITING update with the queue information. A stream that ends or gets any other
    # event meanwhile is counted as closed.
    async def read_while_waiting(stream: SSEStream) -> dict | None:
        while True:
            event = await stream.next_event(hold + 60)
            if event is None or event.get("state") != "WAITING":
                return event

    readers = [asyncio.ensure_future(read_while_waiting(s)) for s in opened]
    await asyncio.sleep(hold)
    still_open = sum(not r.done() for r in readers)
    ended_with: dict[str, int] = {}  # what closed the streams that ended early
    for reader in readers:
        if reader.done() and not reader.cancelled():
            try:
                event = reader.result()
                key = "EOF" if event is None else f"{event.get('state')}:{event.get('code', '')}"
            except Exception as error:  # a read error is what ended it
                key = type(error).__name__
            ended_with[key] = ended_with.get(key, 0) + 1
    with_keepalive = sum(bool(s.comments) for s in opened)
    rss_held = proc.memory_info().rss
    peak = _peak_rss(proc)
    connections = len(proc.net_connections(kind="tcp"))
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    return {
        "streams_requested": streams,
        "got_waiting": len(opened),
        "failures": failures,
        "open_seconds": round(open_seconds, 1),
        "hold_seconds": hold,
        "still_open_after_hold": still_open,
        "ended_early_with": ended_with,
        "with_keepalive_comments": with_keepalive,
        "daphne_tcp_connections": connections,
        "rss_mb_before": round(rss_before / 2**20, 1),
        "rss_mb_waiting": round(rss_waiting / 2**20, 1),
        "rss_mb_after_hold": round(rss_held / 2**20, 1),
        "rss_mb_peak": peak,
        "kb_per_stream": round((rss_held - rss_before) / 1024 / max(1, len(opened)), 1),
    }


def _peak_rss(proc: psutil.Process) -> float | None:
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# -- command line ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("latency", "saturation", "capacity"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--runs", type=int, default=3)
        cmd.add_argument("--layer", choices=sorted(LAYERS), default="pubsub")
        cmd.add_argument("--app", choices=sorted(APPS), default="consumer")
        if name != "capacity":
            cmd.add_argument("--servers", type=int, default=1, choices=(1, 2))
    sub.choices["latency"].add_argument("--rate", type=float, default=200)
    sub.choices["latency"].add_argument("--seconds", type=float, default=15)
    sub.choices["saturation"].add_argument(
        "--concurrency", default="32,64,128", help="pairs in flight; comma list to sweep"
    )
    sub.choices["saturation"].add_argument("--seconds", type=float, default=10)
    sub.choices["capacity"].add_argument("--streams", type=int, default=5000)
    sub.choices["capacity"].add_argument("--hold", type=float, default=30)
    options = parser.parse_args()

    conditions = machine_conditions()
    runs = []
    for run in range(options.runs):
        quiet = wait_for_quiet()
        tag = uuid.uuid4().hex[:6]
        servers = getattr(options, "servers", 1)
        with daphne_servers(servers, options.app, options.layer) as procs:
            if options.command == "latency":
                result = asyncio.run(latency_run(procs, options.rate, options.seconds, tag))
                print(
                    f"run {run + 1}: notify p50 {result['notify_ms']['p50']} ms, "
                    f"p95 {result['notify_ms']['p95']}, p99 {result['notify_ms']['p99']} "
                    f"({result['pairs_ok']} pairs, errors {result['errors']}, "
                    f"CPU {result['cpu_share']})",
                    flush=True,
                )
            elif options.command == "saturation":
                sweep = []
                for concurrency in [int(c) for c in options.concurrency.split(",")]:
                    point = asyncio.run(
                        saturation_run(
                            procs, concurrency, options.seconds, 2.0, f"{tag}c{concurrency}"
                        )
                    )
                    sweep.append(point)
                    print(
                        f"run {run + 1}, {concurrency} in flight: {point['pairs_per_s']} pairs/s "
                        f"(notify p99 {point['notify_ms']['p99']} ms, errors {point['errors']}, "
                        f"CPU {point['cpu_share']})",
                        flush=True,
                    )
                best = max(sweep, key=lambda p: p["pairs_per_s"])
                result = {"pairs_per_s": best["pairs_per_s"], "best": best, "sweep": sweep}
            else:
                result = asyncio.run(capacity_run(procs[0], options.streams, options.hold, tag))
                print(
                    f"run {run + 1}: {result['got_waiting']}/{options.streams} WAITING, "
                    f"{result['still_open_after_hold']} open after {options.hold:g} s, "
                    f"{result['with_keepalive_comments']} got keepalives, "
                    f"RSS {result['rss_mb_after_hold']} MB (before {result['rss_mb_before']}), "
                    f"failures {result['failures']}",
                    flush=True,
                )
        result["quiet"] = quiet
        result["server_log_problems"] = [line for p in procs for line in p.problems]
        runs.append(result)

    summary = {
        "benchmark": f"stream-{options.command}",
        "options": vars(options),
        "runs": runs,
        "conditions": conditions,
        "conditions_after": machine_conditions(),
    }
    if options.command == "latency":
        for q in ("p50", "p95", "p99"):
            summary[f"notify_ms_{q}_median"] = median([r["notify_ms"][q] for r in runs])
        summary["target"] = f"p99 <= 50 ms at {options.rate:g} pairs/s (issue: at 200)"
        summary["target_met"] = summary["notify_ms_p99_median"] <= 50 and all(
            not r["errors"] for r in runs
        )
        headline = ["notify_ms_p50_median", "notify_ms_p95_median", "notify_ms_p99_median"]
    elif options.command == "saturation":
        summary["pairs_per_s_median"] = median([r["pairs_per_s"] for r in runs])
        goal = 400 if options.servers == 1 else 600
        summary["target"] = f">= {goal} pairs/s on {options.servers} Daphne process(es)"
        summary["target_met"] = summary["pairs_per_s_median"] >= goal
        headline = ["pairs_per_s_median"]
    else:
        summary["rss_mb_after_hold_median"] = median([r["rss_mb_after_hold"] for r in runs])
        summary["kb_per_stream_median"] = median([r["kb_per_stream"] for r in runs])
        summary["still_open_median"] = median([r["still_open_after_hold"] for r in runs])
        summary["target"] = (
            f"{options.streams} streams WAITING and open {options.hold:g} s, RSS <= 400 MB"
        )
        summary["target_met"] = (
            all(r["got_waiting"] == options.streams == r["still_open_after_hold"] for r in runs)
            # Keepalives must have flowed to every stream when the hold outlasts one interval.
            and all(
                r["with_keepalive_comments"] == options.streams
                for r in runs
                if options.hold > float(SERVER_ENV["KEEPALIVE_SECONDS"])
            )
            and summary["rss_mb_after_hold_median"] <= 400
        )
        headline = ["rss_mb_after_hold_median", "kb_per_stream_median", "still_open_median"]

    label = f"stream-{options.command}-{options.app}-{options.layer}"
    label += f"-{getattr(options, 'servers', 1)}p"
    path = save_results(label, summary)
    for key in [*headline, "target", "target_met"]:
        print(f"{key}: {summary[key]}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()

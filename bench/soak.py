"""Soak test: mixed traffic against two server processes for minutes, then a clean-up check.

Not part of the test suite. It starts a private Redis (an embedded redis-server on a
free port, so the count of keys is this run's alone) and two Daphne processes sharing
it, then runs ``--clients`` simulated users (32 by default) for ``--minutes`` (10),
each repeating one of:

* **match** (5 in 8): open the stream on either process with one or two interests out of
  16, wait 0.3 to 4 s for a partner; matched, look the session up on either process,
  chat for up to a second, then end the session; unmatched, cancel (half the time,
  ``POST /cancel_matchmaking``, expecting ``CANCELLED``) or just hang up;
* **poll** (2 in 8): ``/status``, ``/interests/popular``, ``/maintenance`` and a session
  lookup, as status pages and reconnecting clients do;
* **drop** (1 in 8): open the stream and hang up as soon as the first event arrives.

Every answer is checked; anything unexpected (a 5xx, a wrong status, a timeout, an
``ERROR`` event, a MATCHED without a chat) counts as an error. It reports:

* errors (target 0) and what the traffic was (operations, matches, cancels, ...);
* memory (RSS) of each process at start, after the warm-up (the first tenth of the run,
  at most a minute) and at the end: growth is measured from the warm-up (target < 10 %);
* Redis keys: the baseline before any traffic, the peak during it, and the count once
  traffic stopped and everything time-limited lapsed (leases, popularity window,
  rematch cooldown; the servers run with short ones: see SERVER_ENV). Every session the
  soak made was ended by it, so what may remain are the service-wide counters created
  by the first match (``metrics:*``, ``chat_servers:rr``) and the admin's per-minute
  history (``history:<minute>``, one key per minute, each kept an hour); anything per
  user or per session left behind is a leak (target 0).

Run::

    .venv/bin/python -m bench.soak                 # 10 minutes
    .venv/bin/python -m bench.soak --minutes 1     # a quick look

Prints progress each minute and the report as JSON (``--output PATH`` also saves it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil
import redis

from animochat.embedded_redis import EmbeddedRedis
from tests.support.servers import DaphneProcess
from tests.support.sse_client import open_stream

INTERESTS = [f"INTEREST{n}" for n in range(16)]
MATCH_PATIENCE = (0.3, 4.0)  # seconds a simulated user waits for a partner, at random
TIMEOUT = 10.0  # seconds any single answer may take before it counts as an error

# Short time limits, so everything time-limited lapses soon after the traffic stops.
SERVER_ENV = {
    "SECRET_KEY": "soak-secret-key",
    "DEBUG": "false",
    "RATE_LIMIT_PER_MINUTE": "0",
    "READ_RATE_LIMIT_PER_MINUTE": "0",
    "MAX_STREAMS_PER_CLIENT": "0",
    "KEEPALIVE_SECONDS": "2",
    "LEASE_SECONDS": "5",
    "POPULAR_WINDOW_SECONDS": "30",
    "REMATCH_COOLDOWN": "10",
    "MAINTENANCE_MODE": "false",
    "CHAT_SERVER_URLS": "http://chat-a.soak,http://chat-b.soak",
    "DISCOVERY_SERVER_URL": "http://127.0.0.1:9/",
    "RENDER_EXTERNAL_URL": "",
    "LOG_LEVEL": "WARNING",
    "AUTH_JWT_SECRET": "",
}
# The longest of the limits above (a popularity bucket of 60 s outlives the 30 s window
# by up to its own length), and a margin.
DRAIN_SECONDS = 30 + 60 + 5
# Created by the first match and constant in size afterwards.
SERVICE_WIDE_KEYS = {"metrics:matches", "metrics:time_to_match", "chat_servers:rr"}
# The admin's per-minute history: one key per minute of traffic, each kept an hour, so
# bounded whatever the number of users.
SERVICE_WIDE_KINDS = {"history:*"}


class Soak:
    def __init__(self, servers: list[DaphneProcess], redis_url: str, clients: int) -> None:
        self.servers = servers
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.clients = clients
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.stopping = False
        self.serial = 0
        self.http: httpx.AsyncClient | None = None

    # -- bookkeeping -----------------------------------------------------------------

    def error(self, kind: str, detail: object = "") -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 30:
            self.error_samples.append(f"{kind}: {detail}"[:300])

    def new_user(self) -> str:
        self.serial += 1
        return f"soak-{self.serial}"

    def server(self) -> DaphneProcess:
        return random.choice(self.servers)

    async def expect(self, method: str, path: str, statuses: tuple[int, ...], **kwargs):
        """One JSON request to either process; None (and an error) unless as expected."""
        url = self.server().url + path
        try:
            response = await self.http.request(method, url, timeout=TIMEOUT, **kwargs)
        except httpx.HTTPError as error:
            self.error(f"{method} {path.split('/')[1]} {type(error).__name__}", error)
            return None
        if response.status_code not in statuses:
            self.error(f"{method} {path.split('/')[1]} {response.status_code}", response.text)
            return None
        return response

    # -- the simulated users ---------------------------------------------------------

    async def match(self) -> None:
        user = self.new_user()
        interests = ",".join(random.sample(INTERESTS, random.choice((1, 2))))
        try:
            stream = await asyncio.wait_for(
                open_stream(self.server().url, params={"userId": user, "interests": interests}),
                TIMEOUT,
            )
        except (OSError, TimeoutError) as error:
            self.error("stream open", repr(error))
            return
        try:
            if stream.status != 200:
                self.error(f"stream {stream.status}")
                return
            event = await stream.next_event(TIMEOUT)
            if event and event["state"] == "WAITING":
                with contextlib.suppress(TimeoutError):
                    event = await stream.next_change(random.uniform(*MATCH_PATIENCE))
            if event and event["state"] == "WAITING":
                await self.give_up(user, stream)
            elif event and event["state"] == "MATCHED" and event.get("chatId"):
                await self.chat(user, event["chatId"])
            else:
                self.error("stream event", event)
        except (OSError, TimeoutError) as error:
            self.error("stream read", repr(error))
        finally:
            await stream.close()

    async def give_up(self, user: str, stream) -> None:
        if random.random() < 0.5:
            self.counts["hang-ups while waiting"] += 1
            return  # closing the stream (by the caller) leaves the queue
        self.counts["cancels"] += 1
        if not await self.expect("POST", "/cancel_matchmaking", (200,), json={"userId": user}):
            return
        event = await stream.next_change(TIMEOUT)
        if event and event["state"] == "MATCHED":
            # Matched a moment before the cancel arrived: a match all the same.
            await self.chat(user, event["chatId"])
        elif not event or event["state"] != "CANCELLED":
            self.error("cancel event", event)

    async def chat(self, user: str, chat_id: str) -> None:
        self.counts["matched users"] += 1
        response = await self.expect("GET", f"/session/{user}", (200,))
        # The partner may have ended the chat already.
        if response and response.json().get("chatId", chat_id) != chat_id:
            self.error("session lookup", response.text)
        await asyncio.sleep(random.random())
        await self.expect("POST", "/session/disconnect", (200, 404), json={"userId": user})

    async def poll(self) -> None:
        self.counts["status polls"] += 1
        for path in ("/status", "/interests/popular", "/maintenance", f"/session/{self.serial}"):
            await self.expect("GET", path, (200,))

    async def drop(self) -> None:
        self.counts["immediate hang-ups"] += 1
        user = self.new_user()
        try:
            stream = await asyncio.wait_for(
                open_stream(self.server().url, params={"userId": user, "interests": "DROP"}),
                TIMEOUT,
            )
            event = await stream.next_event(TIMEOUT)
            await stream.close()
        except (OSError, TimeoutError) as error:
            self.error("drop", repr(error))
            return
        if stream.status != 200 or event["state"] not in ("WAITING", "MATCHED"):
            self.error("drop event", (stream.status, event))
        elif event["state"] == "MATCHED":  # two droppers met: end their chat too
            await self.expect("POST", "/session/disconnect", (200, 404), json={"userId": user})

    async def client(self) -> None:
        actions = [self.match] * 5 + [self.poll] * 2 + [self.drop]
        while not self.stopping:
            action = random.choice(actions)
            self.counts["operations"] += 1
            try:
                await action()
            except Exception as error:  # a bug in the soak or a malformed answer
                self.error(f"{action.__name__} crashed", repr(error))
            await asyncio.sleep(random.random() * 0.2)

    # -- measurements ----------------------------------------------------------------

    def rss(self) -> list[int]:
        return [psutil.Process(server.process.pid).memory_info().rss for server in self.servers]

    def keys_by_kind(self) -> dict[str, int]:
        kinds: Counter[str] = Counter()
        for key in self.redis.scan_iter(count=1000):  # this run's private Redis
            kinds[key if key in SERVICE_WIDE_KEYS else key.split(":")[0] + ":*"] += 1
        return dict(kinds)

    async def run(self, minutes: float) -> dict:
        baseline_keys = self.redis.dbsize()
        start_rss = self.rss()
        duration = minutes * 60
        warm_up = min(60.0, duration / 10)
        started = time.monotonic()
        timeline = []
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as self.http:
            tasks = [asyncio.ensure_future(self.client()) for _ in range(self.clients)]
            warm_rss = None
            next_report = 60.0
            while (elapsed := time.monotonic() - started) < duration:
                await asyncio.sleep(min(5.0, duration - elapsed))
                elapsed = time.monotonic() - started
                timeline.append(
                    {
                        "t": round(elapsed),
                        "rss_mib": [round(r / 2**20, 1) for r in self.rss()],
                        "keys": self.redis.dbsize(),
                    }
                )
                if warm_rss is None and elapsed >= warm_up:
                    warm_rss = self.rss()
                if elapsed >= next_report:
                    next_report += 60
                    print(
                        f"[{elapsed / 60:4.1f} min] {dict(self.counts)} errors="
                        f"{sum(self.errors.values())} {timeline[-1]}",
                        file=sys.stderr,
                        flush=True,
                    )
            self.stopping = True
            await asyncio.gather(*tasks)
        end_rss = self.rss()
        # Every session was ended and every stream closed; let the rest lapse.
        await asyncio.sleep(DRAIN_SECONDS)
        async with httpx.AsyncClient() as self.http:
            await self.expect("GET", "/interests/popular", (200,))
        left = self.keys_by_kind()
        service_wide = SERVICE_WIDE_KEYS | SERVICE_WIDE_KINDS
        leaks = {kind: n for kind, n in left.items() if kind not in service_wide}
        return {
            "minutes": minutes,
            "clients": self.clients,
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "error_samples": self.error_samples,
            "traffic": dict(self.counts),
            "memory": [
                {
                    "process": n + 1,
                    "rss_start_mib": round(start / 2**20, 1),
                    "rss_after_warm_up_mib": round(warm / 2**20, 1),
                    "rss_end_mib": round(end / 2**20, 1),
                    "growth_after_warm_up_pct": round((end - warm) / warm * 100, 1),
                    "growth_from_start_pct": round((end - start) / start * 100, 1),
                }
                for n, (start, warm, end) in enumerate(
                    zip(start_rss, warm_rss or end_rss, end_rss, strict=True)
                )
            ],
            "redis_keys": {
                "baseline": baseline_keys,
                "peak_during_traffic": max(point["keys"] for point in timeline),
                "after_traffic_and_drain": sum(left.values()),
                "left_by_kind": left,
                "per_user_or_session_keys_left": sum(leaks.values()),
            },
            "server_log_problems": [
                sum(
                    '"level": "ERROR"' in line or "Traceback" in line
                    for line in server.log().splitlines()
                )
                for server in self.servers
            ],
            "timeline": timeline,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args()

    with EmbeddedRedis() as private_redis:
        env = {**SERVER_ENV, "REDIS_URL": private_redis.url}
        servers = [DaphneProcess(env).start() for _ in range(2)]
        try:
            report = asyncio.run(Soak(servers, private_redis.url, args.clients).run(args.minutes))
        finally:
            for server in servers:
                server.stop()
    report["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""No request makes Redis do work that grows with the number of distinct interests.

A private Redis logs every command slower than 5 ms (SLOWLOG) while the service takes
20,000 distinct interests and then serves every kind of request with them in Redis.

SLOWLOG measures wall time, so on a busy shared machine any command, however cheap,
is logged now and then while Redis waits for a core. A command that is slow by its own
cost is slow every time it runs, so the test fails on a kind of command (a command
name, or a script) logged at least three times and in over a quarter of its calls:
the old popularity read, which walked every interest (95 ms with 20,000), was logged
at every call. The slow entries are printed either way.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis

from animochat import redis_client
from animochat.embedded_redis import EmbeddedRedis
from matchmaking import selectors, services, store
from sessions_app import selectors as session_selectors

SLOW_US = 5000
DISTINCT_INTERESTS = 20_000
PER_USER = 10  # the most a request may name
READS = 10  # of each read, so a slow one is logged more than noise could explain


@pytest.fixture
def slowlog_redis(settings):
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    client.config_set("slowlog-log-slower-than", SLOW_US)
    client.config_set("slowlog-max-len", 10_000)
    settings.REDIS_URL = server.url  # the service's calls in this test go there
    yield client
    client.close()
    server.stop()


@pytest.fixture
def script_calls(monkeypatch) -> Counter:
    """Calls per script (SHA): Redis counts only EVALSHA as a whole."""
    calls: Counter = Counter()
    real = redis_client.CommandBatcher.evalsha

    def counting(self, sha, *args):
        calls[sha] += 1
        return real(self, sha, *args)

    monkeypatch.setattr(redis_client.CommandBatcher, "evalsha", counting)
    return calls


def kind(command: str) -> str:
    words = command.split(" ")
    return " ".join(words[:2]) if words[0].upper() == "EVALSHA" else words[0].upper()


def slow_kinds(client: redis.Redis, script_calls: Counter) -> tuple[dict[str, int], list]:
    """Kinds of command slow by their own cost (see the module docstring), and every
    slow entry as (µs, command)."""
    entries = [
        (
            entry["duration"],
            entry["command"].decode() if isinstance(entry["command"], bytes) else entry["command"],
        )
        for entry in client.slowlog_get(10_000)
    ]
    slow = Counter(kind(command) for _, command in entries)
    stats = client.info("commandstats")
    flagged = {}
    for name, count in slow.items():
        if name.startswith("EVALSHA"):
            calls = script_calls[name.split(" ")[1]]
        else:
            calls = stats.get(f"cmdstat_{name.lower()}", {}).get("calls", 0)
        if count >= 3 and count > max(calls, count) / 4:
            flagged[name] = count
    return flagged, sorted(((us, command[:100]) for us, command in entries), reverse=True)


async def test_20000_distinct_interests_never_make_a_slow_command(slowlog_redis, script_calls):
    client = slowlog_redis
    client.config_resetstat()
    client.slowlog_reset()
    try:
        # 2,000 users each ask for 10 interests nobody else asks for: all of them wait,
        # so there are 20,000 queues as well as 20,000 interests counted.
        for start in range(0, DISTINCT_INTERESTS // PER_USER, 100):
            await asyncio.gather(
                *(
                    services.enqueue_or_match(
                        f"u{n}", [f"I{n}-{k}" for k in range(PER_USER)], f"t{n}"
                    )
                    for n in range(start, start + 100)
                )
            )
        await redis_client.background_done()
        assert client.zcard("queue:sizes") == DISTINCT_INTERESTS
        for key in client.scan_iter("popular:*"):
            assert client.zcard(key) <= store.POPULAR_CAPACITY

        # Then every kind of request, with all that in Redis.
        for n in range(READS):
            assert (await services.enqueue_or_match(f"w{n}", ["NEW"], f"tw{n}")).state in (
                "WAITING",
                "MATCHED",
            )
            await services.renew_lease(f"u{n}", f"t{n}", [f"I{n}-0"])
            await selectors.popularity(0)  # read from Redis each time
            report = await selectors.status_report()
            await selectors.metrics_values()
            await session_selectors.get_user_session(f"w{n}")
            await services.cancel_matchmaking(f"u{n}")
        await redis_client.background_done()
        popularity = await selectors.popularity(0)
    finally:
        await redis_client.close_redis()

    assert ("NEW", READS) in popularity.ranking
    assert len(report["metrics"]["queues"]) == selectors.STATUS_QUEUES
    assert report["metrics"]["queueCount"] == DISTINCT_INTERESTS - (READS - 1) * PER_USER
    flagged, entries = slow_kinds(client, script_calls)
    print(f"{len(entries)} commands over {SLOW_US} µs (slowest first): {entries[:20]}")
    assert flagged == {}, entries[:20]

"""Chat-server assignment end to end: registry, heartbeat, Redis and Daphne, all real.

Chat servers register with a real ``manage.py discovery_server``; ``manage.py
heartbeat`` copies the list into Redis; matches made over SSE on real Daphne processes
are spread over it, and fall back to ``CHAT_SERVER_URLS`` (and back) by themselves.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest
import requests
from django.conf import settings

from tests.support.discovery_servers import DiscoveryServerProcess, HeartbeatProcess, wait_for
from tests.support.sse_client import open_stream

CHAT_SERVERS = ["https://chat-1.test", "https://chat-2.test", "https://chat-3.test"]
_users = itertools.count()


async def match(waiter_url: str, matcher_url: str) -> str:
    """One pair matched over SSE (waiting on one server, matched on the other)."""
    n = next(_users)
    interest = f"TOPIC{n}"
    waiter = await open_stream(waiter_url, params={"userId": f"w{n}", "interests": interest})
    assert (await waiter.next_event())["state"] == "WAITING"
    matcher = await open_stream(matcher_url, params={"userId": f"m{n}", "interests": interest})
    [mine] = await matcher.events_until_closed()
    [theirs] = await waiter.events_until_closed()
    assert mine["state"] == theirs["state"] == "MATCHED", (mine, theirs)
    assert mine["chatServerUrl"] == theirs["chatServerUrl"]
    return mine["chatServerUrl"]


def discovered(clean_redis) -> list[str]:
    return [url.decode() for url in clean_redis.lrange("chat_servers:discovered", 0, -1)]


def discovery_status(server) -> dict:
    return requests.get(server.url + "/status", timeout=5).json()["discovery"]


@pytest.fixture
def registry():
    server = DiscoveryServerProcess().start()
    yield server
    server.stop()


def start_heartbeat(
    registry: DiscoveryServerProcess, interval: float, **env: str
) -> HeartbeatProcess:
    return HeartbeatProcess(
        {
            "DISCOVERY_SERVER_URL": registry.url,
            "RENDER_EXTERNAL_URL": "http://matchmaker.test",
            **env,
        },
        interval=interval,
    ).start()


async def test_thirty_matches_spread_evenly_over_three_chat_servers(
    registry, daphne_pair, clean_redis
):
    for url in CHAT_SERVERS:
        assert registry.register("chat-service", "1.0.0", url) == 201
    heartbeat = start_heartbeat(registry, 0.5)
    try:
        assert wait_for(lambda: discovered(clean_redis) == CHAT_SERVERS), heartbeat.log()
        first, second = daphne_pair
        servers = []
        for i in range(30):
            waiter, matcher = (first, second) if i % 2 else (second, first)
            servers.append(await match(waiter.url, matcher.url))
        for process in daphne_pair:
            status = discovery_status(process)
            assert status["chatServerSource"] == "discovery"
            assert status["chatServers"] == CHAT_SERVERS
    finally:
        assert heartbeat.stop() == 0
    counts = Counter(servers)
    assert set(counts) == set(CHAT_SERVERS)
    assert all(9 <= count <= 11 for count in counts.values()), counts


async def test_falls_back_while_discovery_is_down_and_switches_back(registry, daphne, clean_redis):
    fallback = set(settings.CHAT_SERVER_URLS)
    for url in CHAT_SERVERS[:2]:
        registry.register("chat-service", "1.0.0", url)
    heartbeat = start_heartbeat(registry, 0.5)
    restarted = DiscoveryServerProcess(port=registry.port)
    try:
        assert wait_for(lambda: discovered(clean_redis) == CHAT_SERVERS[:2]), heartbeat.log()
        assert await match(daphne.url, daphne.url) in CHAT_SERVERS[:2]

        registry.stop()  # discovery unreachable: the list lapses after its TTL (3 beats)
        assert wait_for(lambda: discovered(clean_redis) == [], timeout=10), heartbeat.log()
        assert {await match(daphne.url, daphne.url) for _ in range(4)} == fallback
        status = discovery_status(daphne)
        assert status["chatServerSource"] == "fallback"
        assert status["registration"] == "failing" and status["lastError"]

        restarted.start()  # same port, empty memory, like a redeployed registry
        for url in CHAT_SERVERS[:2]:  # the chat servers' own heartbeats
            restarted.register("chat-service", "1.0.0", url)
        assert wait_for(lambda: discovered(clean_redis) == CHAT_SERVERS[:2], timeout=15)
        assert {await match(daphne.url, daphne.url) for _ in range(4)} == set(CHAT_SERVERS[:2])
        # The heartbeat registered itself anew with the registry that had forgotten it.
        assert wait_for(lambda: discovery_status(daphne)["registration"] == "registered")
        assert any(
            r["method"] == "POST" and r["status"] == 201 and "matchmaker" in str(r["body"])
            for r in restarted.requests_seen()
        )
    finally:
        assert heartbeat.stop() == 0
        restarted.stop()
    changes = [e for e in heartbeat.events() if e["event"] == "chat_servers_changed"]
    assert [e["source"] for e in changes] == ["discovery", "fallback", "discovery"]
    names = heartbeat.event_names()
    assert names.count("heartbeat_failing") == 1 and names.count("heartbeat_recovered") == 1


async def test_no_chat_server_at_all_is_an_error_and_consumes_nobody(
    registry, daphne_factory, clean_redis
):
    server = daphne_factory(CHAT_SERVER_URLS="")  # no fallback
    stream = await open_stream(server.url, params={"userId": "alone", "interests": "X"})
    [event] = await stream.events_until_closed()
    assert event["state"] == "ERROR" and event["code"] == "NO_CHAT_SERVER"
    assert clean_redis.zcard("queue:waiting") == 0
    assert discovery_status(server)["chatServerSource"] == "none"

    registry.register("chat-service", "1.0.0", CHAT_SERVERS[0])
    # A long beat (TTL 12 s) shows that a registry answering "none running" empties the
    # list at the next beat, without waiting for the TTL.
    heartbeat = start_heartbeat(registry, 4, CHAT_SERVER_URLS="")
    try:
        assert wait_for(lambda: discovered(clean_redis) == CHAT_SERVERS[:1]), heartbeat.log()
        assert await match(server.url, server.url) == CHAT_SERVERS[0]
        assert registry.unregister("chat-service", "1.0.0", CHAT_SERVERS[0]) == 200
        assert wait_for(lambda: discovered(clean_redis) == [], timeout=8), heartbeat.log()
        stream = await open_stream(server.url, params={"userId": "again", "interests": "X"})
        [event] = await stream.events_until_closed()
        assert event["code"] == "NO_CHAT_SERVER" and clean_redis.zcard("queue:waiting") == 0
    finally:
        assert heartbeat.stop() == 0
    changes = [e for e in heartbeat.events() if e["event"] == "chat_servers_changed"]
    assert [(e["source"], e["servers"]) for e in changes] == [
        ("discovery", CHAT_SERVERS[:1]),
        ("none", []),
    ]


async def test_matches_made_concurrently_on_both_processes_share_one_counter(
    registry, daphne_pair, clean_redis
):
    for url in CHAT_SERVERS:
        registry.register("chat-service", "1.0.0", url)
    heartbeat = start_heartbeat(registry, 0.5)
    try:
        assert wait_for(lambda: discovered(clean_redis) == CHAT_SERVERS), heartbeat.log()
        first, second = daphne_pair
        servers = await asyncio.gather(
            *(match(first.url, second.url) for _ in range(15)),
            *(match(second.url, first.url) for _ in range(15)),
        )
    finally:
        assert heartbeat.stop() == 0
    assert Counter(servers) == dict.fromkeys(CHAT_SERVERS, 10)

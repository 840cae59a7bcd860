"""Per-client rate limits, counted in Redis so they hold across server processes.

Limits count per clock minute: each test starts well inside a minute, so it never sees
the counter reset half-way.
"""

from __future__ import annotations

import time

import pytest
import requests

from animochat.ratelimit import WINDOW_SECONDS, RateLimited, check_rate_limit
from tests.support.sse_client import open_stream

MARGIN = 8.0  # seconds a test needs, at most, inside one window


@pytest.fixture
def fresh_window():
    left = WINDOW_SECONDS - time.time() % WINDOW_SECONDS
    if left < MARGIN:
        time.sleep(left + 0.1)


def assert_limited(response: requests.Response) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_SECONDS + 1
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "RATE_LIMITED"
    assert "retry" in response.json()["message"].lower()


async def test_post_endpoints_share_one_limit_across_processes(fresh_window, daphne_factory):
    first = daphne_factory(RATE_LIMIT_PER_MINUTE="5")
    second = daphne_factory(RATE_LIMIT_PER_MINUTE="5")
    calls = [
        (first, "/cancel_matchmaking"),
        (second, "/session/disconnect"),
        (first, "/session/disconnect"),
        (second, "/cancel_matchmaking"),
        (first, "/cancel_matchmaking"),
    ]
    for server, path in calls:
        response = requests.post(server.url + path, json={"userId": "rl"}, timeout=5)
        assert response.status_code in (200, 404), response.text  # 404: no session
    for server in (first, second):
        for path in ("/cancel_matchmaking", "/session/disconnect"):
            assert_limited(requests.post(server.url + path, json={"userId": "rl"}, timeout=5))
    # Reads are not limited, and the stream counts separately.
    assert requests.get(first.url + "/status", timeout=5).status_code == 200
    stream = await open_stream(second.url, params={"userId": "rl", "interests": "RL"})
    assert stream.status == 200 and (await stream.next_event())["state"] == "WAITING"
    await stream.close()


async def test_matchmaking_stream_is_limited_with_an_error_event(fresh_window, daphne_factory):
    server = daphne_factory(RATE_LIMIT_PER_MINUTE="3")
    for n in range(3):
        stream = await open_stream(server.url, params={"userId": f"s{n}", "interests": f"S{n}"})
        assert (await stream.next_event())["state"] == "WAITING"
        await stream.close()
    refused = await open_stream(server.url, params={"userId": "s9", "interests": "S9"})
    events = await refused.events_until_closed()
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= WINDOW_SECONDS + 1
    assert [(e["state"], e["code"]) for e in events] == [("ERROR", "RATE_LIMITED")]
    assert events[0]["message"]
    # The POST group has its own allowance.
    response = requests.post(server.url + "/cancel_matchmaking", json={"userId": "s9"}, timeout=5)
    assert response.status_code == 200


async def test_counter_lives_in_redis_and_expires_with_its_window(fresh_window, settings, aredis):
    settings.RATE_LIMIT_PER_MINUTE = 2
    await check_rate_limit("post", "203.0.113.7")
    await check_rate_limit("post", "203.0.113.7")
    with pytest.raises(RateLimited) as refused:
        await check_rate_limit("post", "203.0.113.7")
    assert 1 <= refused.value.retry_after <= WINDOW_SECONDS + 1
    await check_rate_limit("post", "198.51.100.1")  # another client has its own count
    await check_rate_limit("matchmaking", "203.0.113.7")  # and so has another group
    [key] = [k for k in await aredis.keys("ratelimit:post:203.0.113.7:*")]
    assert await aredis.get(key) == "3"
    assert 0 < await aredis.ttl(key) <= WINDOW_SECONDS + 1


async def test_zero_turns_limiting_off(settings, aredis):
    settings.RATE_LIMIT_PER_MINUTE = 0
    for _ in range(50):
        await check_rate_limit("post", "203.0.113.7")
    assert await aredis.dbsize() == 0


async def test_read_endpoints_have_their_own_limit(fresh_window, daphne_factory):
    first = daphne_factory(READ_RATE_LIMIT_PER_MINUTE="4", RATE_LIMIT_PER_MINUTE="2")
    second = daphne_factory(READ_RATE_LIMIT_PER_MINUTE="4", RATE_LIMIT_PER_MINUTE="2")
    reads = [
        (first, "/interests/popular"),
        (second, "/status"),
        (first, "/session/someone"),
        (second, "/metrics"),
    ]
    for server, path in reads:  # more than the POST limit: reads count apart
        assert requests.get(server.url + path, timeout=5).status_code == 200, path
    for server, path in reads:
        assert_limited(requests.get(server.url + path, timeout=5))
    # The POST allowance is untouched by reads, and vice versa.
    for _ in range(2):
        response = requests.post(first.url + "/cancel_matchmaking", json={"userId": "r"}, timeout=5)
        assert response.status_code == 200
    assert_limited(
        requests.post(second.url + "/cancel_matchmaking", json={"userId": "r"}, timeout=5)
    )
    assert requests.get(first.url + "/maintenance", timeout=5).status_code == 200  # not a read

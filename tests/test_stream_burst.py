"""A 1,000-user burst over two Daphne processes: consistent, maximal, and durable."""

from __future__ import annotations

import random
import signal

import pytest
import requests

from tests.support.burst import burst, check_burst
from tests.support.sse_client import open_stream

INTERESTS = [f"T{n}" for n in range(15)]


@pytest.mark.slow
async def test_burst_of_1000_users_over_two_processes(daphne_pair):
    rng = random.Random(11)
    users = {f"b{n}": rng.sample(INTERESTS, rng.randint(1, 3)) for n in range(1000)}
    servers = list(daphne_pair)
    params = {user: {"interests": ",".join(interests)} for user, interests in users.items()}

    results = await burst(servers, params)

    matched, _ = check_burst(results, users)
    for user in rng.sample(sorted(matched), 100):
        session = requests.get(f"{servers[0].url}/session/{user}", timeout=5).json()
        assert session["chatId"] == matched[user]["chatId"]
        assert session["serverUrl"] == matched[user]["chatServerUrl"]
        assert set(session["participants"]) == {user, matched[user]["matchedUserId"]}


async def test_keepalive_renews_the_lease(daphne):
    # LEASE_SECONDS=3 and KEEPALIVE_SECONDS=1 in tests: without renewal the place would lapse.
    waiting = await open_stream(daphne.url, params={"userId": "patient", "interests": "SLOW"})
    assert (await waiting.next_event())["state"] == "WAITING"
    with pytest.raises(TimeoutError):
        await waiting.next_change(timeout=4.5)
    partner = await open_stream(daphne.url, params={"userId": "late", "interests": "SLOW"})
    assert (await partner.next_event())["matchedUserId"] == "patient"
    assert (await waiting.next_change())["matchedUserId"] == "late"


async def test_sigterm_closes_waiting_streams_and_leaves_no_entries(daphne_factory, clean_redis):
    server = daphne_factory()
    streams = [
        await open_stream(server.url, params={"userId": f"t{n}", "interests": f"Q{n}"})
        for n in range(5)
    ]
    for stream in streams:
        assert (await stream.next_event())["state"] == "WAITING"
    assert clean_redis.zcard("queue:waiting") == 5
    server.stop(signal.SIGTERM)
    assert server.process.returncode is not None
    for stream in streams:
        event = await stream.next_change()
        assert event is None or event["code"] == "SERVER_SHUTDOWN"
    assert clean_redis.zcard("queue:waiting") == 0
    assert clean_redis.scard("queue:interests") == 0
    assert not [k for k in clean_redis.scan_iter("lease:*")]

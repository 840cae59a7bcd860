"""A 1,000-user burst over two Daphne processes: consistent, maximal, and durable."""

from __future__ import annotations

import asyncio
import itertools
import random
import signal

import pytest
import requests

from tests.support.sse_client import open_stream

INTERESTS = [f"T{n}" for n in range(15)]


async def wait_for_match(stream) -> dict | None:
    """First event after WAITING (None if the user is still waiting at the deadline).

    The deadline is generous: on a busy machine a partner's notification can take
    seconds (it is sent once the arriving side has confirmed the match), and a user
    who gave up early would look like one half of an inconsistent pair.
    """
    try:
        return await stream.next_change(timeout=20.0)
    except TimeoutError:
        return None


@pytest.mark.slow
async def test_burst_of_1000_users_over_two_processes(daphne_pair):
    rng = random.Random(11)
    users = {f"b{n}": rng.sample(INTERESTS, rng.randint(1, 3)) for n in range(1000)}
    servers = list(daphne_pair)

    async def arrive(n: int, user: str) -> tuple[str, list[dict]]:
        await asyncio.sleep(n / 1000)  # spread over one second
        server = servers[n % 2]
        stream = await open_stream(
            server.url, params={"userId": user, "interests": ",".join(users[user])}
        )
        first = await stream.next_event(timeout=10)
        events = [first]
        if first["state"] == "WAITING":
            later = await wait_for_match(stream)
            if later is not None:
                events.append(later)
        await stream.close()
        return user, events

    results = dict(await asyncio.gather(*(arrive(n, u) for n, u in enumerate(users))))

    matched = {u: ev[-1] for u, ev in results.items() if ev[-1]["state"] == "MATCHED"}
    waiting = {u for u, ev in results.items() if ev[-1]["state"] == "WAITING"}
    assert len(matched) + len(waiting) == len(users)
    inconsistent = 0
    for user, event in matched.items():
        partner = event["matchedUserId"]
        other = matched.get(partner)
        if other is None or other["matchedUserId"] != user or other["chatId"] != event["chatId"]:
            inconsistent += 1
            continue
        assert other["chatServerUrl"] == event["chatServerUrl"]
        shared = set(users[user]) & set(users[partner])
        assert set(event["interest"].split(",")) == shared
    assert inconsistent == 0
    assert len({e["chatId"] for e in matched.values()}) == len(matched) // 2
    for a, b in itertools.combinations(sorted(waiting), 2):
        assert not set(users[a]) & set(users[b]), f"{a} and {b} were left waiting together"

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

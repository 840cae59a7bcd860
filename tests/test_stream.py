"""GET /matchmaking end to end: real Daphne processes, real SSE connections, real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import requests

from tests.support.sse_client import open_stream


async def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return False


async def test_waiting_user_is_notified_when_partner_arrives(daphne):
    alice = await open_stream(daphne.url, params={"userId": "alice", "interests": "Gaming, anime"})
    assert alice.status == 200
    assert alice.headers["content-type"].startswith("text/event-stream")
    assert alice.headers["cache-control"] == "no-cache"
    assert alice.headers["x-accel-buffering"] == "no"
    assert (await alice.next_event())["state"] == "WAITING"

    bob = await open_stream(daphne.url, params={"userId": "bob", "interest": "ANIME"})
    bob_events = await bob.events_until_closed()
    alice_events = await alice.events_until_closed()
    assert len(bob_events) == 1 and len(alice_events) == 1
    b, a = bob_events[0], alice_events[0]
    assert b["state"] == a["state"] == "MATCHED"
    assert b["matchedUserId"] == "alice" and a["matchedUserId"] == "bob"
    assert a["chatId"] == b["chatId"] and a["chatServerUrl"] == b["chatServerUrl"]
    assert a["interest"] == b["interest"] == "ANIME"
    session = requests.get(f"{daphne.url}/session/alice", timeout=5).json()
    assert session["chatId"] == a["chatId"] and set(session["participants"]) == {"alice", "bob"}


async def test_keepalive_comment_and_queue_info_while_waiting(daphne):
    stream = await open_stream(daphne.url, params={"userId": "k1", "interests": "RARE"})
    first = await stream.next_event()
    assert first == {"state": "WAITING", "waiting": 0, "estimatedWaitSeconds": None}
    events = []
    with contextlib.suppress(TimeoutError):  # KEEPALIVE_SECONDS=1 in tests
        while True:
            events.append(await stream.next_event(timeout=2.5))
            if len(events) == 2:
                break
    assert stream.comments.count("keepalive") >= 2
    assert [e["state"] for e in events] == ["WAITING", "WAITING"]
    await stream.close()


async def test_bad_input_is_a_400_error_event(daphne):
    for params, code in [
        ({}, "MISSING_USER_ID"),
        ({"userId": "x" * 129}, "INVALID_USER_ID"),
        ({"userId": "a\x01b"}, "INVALID_USER_ID"),
        ({"userId": "a", "interests": ",".join(f"i{n}" for n in range(11))}, "TOO_MANY_INTERESTS"),
        ({"userId": "a", "interests": "x" * 65}, "INVALID_INTEREST"),
        ([("userId", "a"), ("userId", "b")], "DUPLICATE_USER_ID"),
    ]:
        stream = await open_stream(daphne.url, params=params)
        events = await stream.events_until_closed()
        assert stream.status == 400, params
        assert events[0]["state"] == "ERROR" and events[0]["code"] == code
        assert events[0]["message"]


async def test_disconnect_leaves_no_trace(daphne, clean_redis):
    stream = await open_stream(daphne.url, params={"userId": "gone", "interests": "A,B"})
    assert (await stream.next_event())["state"] == "WAITING"
    assert clean_redis.zscore("queue:waiting", "gone") is not None
    started = time.monotonic()
    await stream.close()

    async def gone():
        return clean_redis.zcard("queue:waiting") == 0 and not clean_redis.exists("interest:A")

    assert await wait_until(gone, timeout=1.0)
    assert time.monotonic() - started < 1.0


async def test_second_stream_replaces_first(daphne, clean_redis):
    first = await open_stream(daphne.url, params={"userId": "dup", "interests": "Z"})
    assert (await first.next_event())["state"] == "WAITING"
    second = await open_stream(daphne.url, params={"userId": "dup", "interests": "Z"})
    assert (await second.next_event())["state"] == "WAITING"
    assert (await first.next_change())["state"] == "REPLACED"
    assert await first.next_change() is None
    await asyncio.sleep(0.3)
    assert clean_redis.zcard("queue:waiting") == 1  # the successor kept its place
    partner = await open_stream(daphne.url, params={"userId": "p", "interests": "Z"})
    assert (await partner.next_event())["matchedUserId"] == "dup"
    assert (await second.next_change())["matchedUserId"] == "p"


async def test_cancel_closes_the_stream(daphne, clean_redis):
    stream = await open_stream(daphne.url, params={"userId": "c1", "interests": "Q"})
    assert (await stream.next_event())["state"] == "WAITING"
    response = requests.post(
        f"{daphne.url}/cancel_matchmaking", json={"userId": "c1", "interests": ["q"]}, timeout=5
    )
    assert response.status_code == 200
    assert response.json() == {"message": "Matchmaking cancelled successfully."}
    assert (await stream.next_change())["state"] == "CANCELLED"
    assert await stream.next_change() is None
    assert clean_redis.zcard("queue:waiting") == 0


async def test_user_waiting_on_one_process_matched_from_another(daphne_pair):
    first, second = daphne_pair
    waiting = await open_stream(first.url, params={"userId": "w", "interests": "CROSS"})
    assert (await waiting.next_event())["state"] == "WAITING"
    started = time.monotonic()
    arriving = await open_stream(second.url, params={"userId": "a", "interests": "CROSS"})
    mine = await arriving.next_event()
    theirs = await waiting.next_change()
    elapsed = time.monotonic() - started
    assert mine["chatId"] == theirs["chatId"]
    assert elapsed < 1.0


async def test_logs_one_line_per_event_without_keepalive_noise(daphne_factory):
    server = daphne_factory(KEEPALIVE_SECONDS="0.2", LEASE_SECONDS="2")
    stream = await open_stream(server.url, params={"userId": "log1", "interests": "L"})
    await stream.next_event()
    await asyncio.sleep(1.0)
    other = await open_stream(server.url, params={"userId": "log2", "interests": "L"})
    await other.events_until_closed()
    await stream.events_until_closed()
    await asyncio.sleep(0.2)
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines if line["logger"] == "matchmaking.stream"]
    assert events == ["enqueue", "match"]
    match = next(line for line in lines if line["event"] == "match")
    assert match["user"] == "log2" and match["partner"] == "log1" and "ms" in match

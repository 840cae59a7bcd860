"""Caps on what one client, and all clients of one process, can hold (real Daphne)."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.support.sse_client import SSEStream, open_stream

# Short leases, so slots of a killed process lapse within the test.
FAST = {"KEEPALIVE_SECONDS": "0.5", "LEASE_SECONDS": "2"}


async def waiting(server, user: str) -> SSEStream:
    stream = await open_stream(server.url, params={"userId": user, "interests": f"ONLY-{user}"})
    assert stream.status == 200, stream.status
    assert (await stream.next_event(timeout=10))["state"] == "WAITING"
    return stream


async def refused(server, user: str) -> tuple[SSEStream, dict]:
    stream = await open_stream(server.url, params={"userId": user, "interests": f"ONLY-{user}"})
    return stream, await stream.next_event(timeout=10)


async def accepted_within(server, user: str, seconds: float) -> SSEStream:
    """A stream of ``user`` accepted before ``seconds`` pass (refused ones are retried)."""
    deadline = time.monotonic() + seconds
    while True:
        stream, event = await refused(server, user)
        if stream.status == 200:
            assert event["state"] == "WAITING"
            return stream
        assert event["code"] == "TOO_MANY_STREAMS"
        await stream.close()
        assert time.monotonic() < deadline, f"{user} still refused after {seconds} s"
        await asyncio.sleep(0.1)


async def test_streams_per_client_are_counted_across_processes(daphne_factory):
    first = daphne_factory(MAX_STREAMS_PER_CLIENT="2", **FAST)
    second = daphne_factory(MAX_STREAMS_PER_CLIENT="2", **FAST)
    on_first = await waiting(first, "a1")
    on_second = await waiting(second, "a2")
    for server in (first, second):
        stream, event = await refused(server, "a3")
        assert stream.status == 429 and event["code"] == "TOO_MANY_STREAMS"
        assert event["state"] == "ERROR" and event["message"]
        assert await stream.next_event() is None  # the refusal ends the stream
    # A stream that ends gives its slot back at once...
    await on_second.close()
    replacement = await accepted_within(second, "a4", 10)
    # ...and the slots of a process killed without cleaning up lapse with their lease
    # (2 s here): the client is not locked out for good.
    first.stop(signal.SIGKILL)
    await on_first.close()
    late = await accepted_within(second, "a5", 30)
    # Keepalives renew the slots of live streams: three leases later both still count.
    deadline = time.monotonic() + 3 * 2
    while time.monotonic() < deadline:
        stream, event = await refused(second, "a6")
        assert stream.status == 429, event
        await stream.close()
        await asyncio.sleep(0.5)
    for stream in (replacement, late):
        await stream.close()


async def test_a_process_past_max_open_streams_is_busy_before_any_redis_work(
    daphne_factory, clean_redis
):
    server = daphne_factory(MAX_OPEN_STREAMS="2", RATE_LIMIT_PER_MINUTE="100")
    streams = [await waiting(server, "b1"), await waiting(server, "b2")]
    busy, event = await refused(server, "b3")
    assert busy.status == 503 and busy.headers["retry-after"] == "5"
    assert event["state"] == "ERROR" and event["code"] == "SERVER_BUSY"
    # The refused request was not even counted by the rate limiter (a Redis write).
    counters = clean_redis.keys("ratelimit:matchmaking:*")  # one per clock minute
    assert sum(int(clean_redis.get(key)) for key in counters) == 2
    await streams.pop().close()
    deadline = time.monotonic() + 10
    while True:  # the server notices the disconnect, then takes a new stream
        stream, event = await refused(server, "b4")
        if stream.status == 200:
            break
        assert event["code"] == "SERVER_BUSY" and time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert event["state"] == "WAITING"
    await stream.close()
    await streams[0].close()


async def test_a_stream_waiting_max_wait_seconds_gives_its_place_back(daphne_factory, clean_redis):
    server = daphne_factory(MAX_WAIT_SECONDS="1", KEEPALIVE_SECONDS="0.3")
    stream = await waiting(server, "c1")
    started = time.monotonic()
    events = await stream.events_until_closed(timeout=15)
    assert time.monotonic() - started >= 0.5  # not before its time (1 s from the request)
    assert [(e["state"], e["code"]) for e in events] == [("ERROR", "WAIT_TIMEOUT")]
    assert clean_redis.zscore("queue:waiting", "c1") is None
    assert not clean_redis.exists("lease:c1") and not clean_redis.exists("interest:ONLY-c1")
    # The event's id makes EventSource's own reconnect stop (204), not search again.
    timeout_id = stream.event_ids[-1]
    assert timeout_id.startswith("timeout-")
    again = await open_stream(
        server.url,
        params={"userId": "c1", "interests": "ONLY-c1"},
        headers={"Last-Event-ID": timeout_id},
    )
    assert again.status == 204
    # A partner arriving later waits: nobody is matched with the stream that gave up.
    partner = await open_stream(server.url, params={"userId": "c2", "interests": "ONLY-c1"})
    assert (await partner.next_event())["state"] == "WAITING"
    await partner.close()

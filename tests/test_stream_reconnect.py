"""Streams under EventSource's automatic reconnect: ``retry:``, event ids, Last-Event-ID.

A browser reconnects by itself after a stream ends (unless the page calls ``close()``)
and sends the last event id it saw. These tests play that browser at the protocol
level; tests/test_eventsource_live.py does it with a real one.
"""

from __future__ import annotations

import asyncio

import requests

from matchmaking import services, stream_ids
from tests.support.sse_client import open_stream
from tests.test_auth import SECRET, bearer, token
from tests.test_tickets import new_ticket


async def reconnect(server, user: str, last_event_id: str, **params: str):
    """What EventSource sends after a stream ends: the same URL, plus Last-Event-ID."""
    return await open_stream(
        server.url,
        params={"userId": user, **params},
        headers={"Last-Event-ID": last_event_id, "Origin": "https://app.example"},
    )


async def matched_pair(server, a: str, b: str, interest: str = "R"):
    waiting = await open_stream(server.url, params={"userId": a, "interests": interest})
    assert (await waiting.next_event())["state"] == "WAITING"
    arriving = await open_stream(server.url, params={"userId": b, "interests": interest})
    mine = await arriving.next_event()
    theirs = await waiting.next_change()
    return waiting, theirs, arriving, mine


def session_of(server, user: str) -> dict:
    return requests.get(f"{server.url}/session/{user}", timeout=5).json()


def test_every_stream_starts_with_the_retry_field(daphne):
    for params in ({"userId": "rt", "interests": "RETRY"}, {}):  # a stream, an error
        response = requests.get(daphne.url + "/matchmaking", params=params, stream=True, timeout=5)
        try:
            assert next(response.iter_lines()) == b"retry: 3000", params
        finally:
            response.close()


async def test_retry_follows_the_setting(daphne_factory):
    server = daphne_factory(SSE_RETRY_MS="750")
    stream = await open_stream(server.url, params={"userId": "rs", "interests": "RS"})
    assert (await stream.next_event())["state"] == "WAITING"
    assert stream.retry == 750
    await stream.close()


async def test_matched_carries_the_chat_id_on_both_sides(daphne):
    waiting, theirs, arriving, mine = await matched_pair(daphne, "ia", "ib")
    assert mine["chatId"] == theirs["chatId"]
    assert arriving.event_ids == [mine["chatId"]]
    assert waiting.event_ids == ["", mine["chatId"]]  # WAITING has no id


async def test_reconnect_after_matched_gets_the_match_again_and_keeps_the_session(
    daphne, clean_redis
):
    _, theirs, _, mine = await matched_pair(daphne, "ra", "rb")
    chat_id = mine["chatId"]
    before = {user: session_of(daphne, user) for user in ("ra", "rb")}
    for user, event in (("rb", mine), ("ra", theirs)):
        for _ in range(2):  # again and again, as an EventSource never closed does
            again = await reconnect(daphne, user, chat_id, interests="R")
            assert again.status == 200
            assert again.headers["access-control-allow-origin"] == "*"
            assert await again.events_until_closed() == [event]
            assert again.event_ids == [chat_id] and again.retry == 3000
    assert {user: session_of(daphne, user) for user in ("ra", "rb")} == before
    assert before["ra"]["chatId"] == chat_id
    assert clean_redis.zcard("queue:waiting") == 0  # nobody was queued


async def test_reconnect_naming_an_ended_chat_stops(daphne, clean_redis):
    _, _, _, mine = await matched_pair(daphne, "ea", "eb")
    response = requests.post(f"{daphne.url}/session/disconnect", json={"userId": "ea"}, timeout=5)
    assert response.status_code == 200
    again = await reconnect(daphne, "ea", mine["chatId"], interests="R")
    assert again.status == 204
    assert again.headers["access-control-allow-origin"] == "*"
    assert await again.next_event() is None
    assert clean_redis.zcard("queue:waiting") == 0


async def test_reconnect_after_cancelled_gets_204_and_stays_out_of_the_queue(daphne, clean_redis):
    stream = await open_stream(daphne.url, params={"userId": "ca", "interests": "CX"})
    assert (await stream.next_event())["state"] == "WAITING"
    requests.post(f"{daphne.url}/cancel_matchmaking", json={"userId": "ca"}, timeout=5)
    assert (await stream.next_change())["state"] == "CANCELLED"
    ended = stream.last_event_id
    assert ended.startswith("cancelled-")
    assert stream_ids.names_ended_stream("ca", ended)
    again = await reconnect(daphne, "ca", ended, interests="CX")
    assert again.status == 204
    assert clean_redis.zcard("queue:waiting") == 0
    # Another user cannot use it, and an id the service never issued is refused.
    forged = ended[:-1] + ("1" if ended.endswith("0") else "0")
    for user, event_id in (("cb", ended), ("ca", forged), ("ca", "whatever")):
        refused = await reconnect(daphne, user, event_id)
        assert refused.status == 400
        assert (await refused.next_event())["code"] == "INVALID_LAST_EVENT_ID"
    assert clean_redis.zcard("queue:waiting") == 0


async def test_replaced_stream_does_not_come_back_to_replace_its_successor(daphne, clean_redis):
    first = await open_stream(daphne.url, params={"userId": "pp", "interests": "PX"})
    assert (await first.next_event())["state"] == "WAITING"
    second = await open_stream(daphne.url, params={"userId": "pp", "interests": "PX"})
    assert (await second.next_event())["state"] == "WAITING"
    assert (await first.next_change())["state"] == "REPLACED"
    assert first.last_event_id.startswith("replaced-")
    again = await reconnect(daphne, "pp", first.last_event_id, interests="PX")
    assert again.status == 204
    await asyncio.sleep(0.3)  # a wrongly queued reconnect would have replaced it by now
    assert second.event_ids == [""]
    partner = await open_stream(daphne.url, params={"userId": "pq", "interests": "PX"})
    assert (await partner.next_event())["matchedUserId"] == "pp"
    assert (await second.next_change())["matchedUserId"] == "pq"


async def test_maintenance_event_has_an_ended_stream_id(daphne, clean_redis):
    stream = await open_stream(daphne.url, params={"userId": "mm", "interests": "MX"})
    assert (await stream.next_event())["state"] == "WAITING"
    try:
        await services.set_maintenance(True)
        assert (await stream.next_change())["code"] == "MAINTENANCE"
        assert stream.last_event_id.startswith("maintenance-")
        again = await reconnect(daphne, "mm", stream.last_event_id, interests="MX")
        assert again.status == 204
    finally:
        clean_redis.set("service:maintenance", "0")


async def test_a_fresh_request_always_searches(daphne, clean_redis):
    """No Last-Event-ID: matchmaking as ever, even right after a match (a new search)."""
    await matched_pair(daphne, "fa", "fb")
    fresh = await open_stream(daphne.url, params={"userId": "fa", "interests": "R"})
    assert (await fresh.next_event())["state"] == "WAITING"
    assert "chatId" not in session_of(daphne, "fb")  # searching again ended the chat
    await fresh.close()


async def test_a_ticket_streams_reconnect_is_refused_by_its_spent_ticket(
    daphne_factory, clean_redis
):
    server = daphne_factory(AUTH_JWT_SECRET=SECRET)
    streams = {}
    for user in ("ta", "tb"):
        ticket = new_ticket(server, user)
        stream = await open_stream(
            server.url, params={"userId": user, "interests": "T", "ticket": ticket}
        )
        streams[user] = (stream, ticket, await stream.next_event())
    _, ticket, mine = streams["tb"]
    assert mine["state"] == "MATCHED"
    again = await reconnect(server, "tb", mine["chatId"], interests="T", ticket=ticket)
    assert again.status == 401
    assert (await again.next_event())["code"] == "TICKET_USED"
    session = requests.get(
        f"{server.url}/session/tb", headers=bearer(token("tb")), timeout=5
    ).json()
    assert session["chatId"] == mine["chatId"]  # untouched
    assert clean_redis.zcard("queue:waiting") == 0

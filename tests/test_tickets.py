"""One-use stream tickets: ``POST /matchmaking/ticket`` then ``/matchmaking?ticket=…``.

A ticket keeps the long-lived token out of the stream's URL: it is good for one stream,
for 30 seconds, and Redis only ever holds its hash.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import requests

from matchmaking.services import TICKET_SECONDS
from tests.support.sse_client import open_stream
from tests.test_auth import SECRET, bearer, token


@pytest.fixture
def server(daphne_factory):
    return daphne_factory(AUTH_JWT_SECRET=SECRET)


def ticket_for(server, user: str, **kwargs) -> requests.Response:
    return requests.post(server.url + "/matchmaking/ticket", timeout=5, **kwargs)


def new_ticket(server, user: str) -> str:
    response = ticket_for(server, user, headers=bearer(token(user)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userId"] == user and body["expiresInSeconds"] == TICKET_SECONDS
    return body["ticket"]


async def first_event(server, user: str, ticket: str) -> tuple[int, dict]:
    stream = await open_stream(
        server.url, params={"userId": user, "interests": "TICKETS", "ticket": ticket}
    )
    event = await stream.next_event()
    await stream.close()
    return stream.status, event


def error(status: int, event: dict) -> tuple[int, str]:
    assert event["state"] == "ERROR" and event["message"]
    return status, event["code"]


async def test_a_ticket_opens_one_stream_once(server, aredis):
    ticket = new_ticket(server, "alice")
    # Redis knows the ticket by its hash only, for at most its lifetime.
    [key] = await aredis.keys("ticket:*")
    assert ticket not in key and key == "ticket:" + hashlib.sha256(ticket.encode()).hexdigest()
    assert 0 < await aredis.ttl(key) <= TICKET_SECONDS
    status, event = await first_event(server, "alice", ticket)
    assert (status, event["state"]) == (200, "WAITING")
    status, event = await first_event(server, "alice", ticket)
    assert error(status, event) == (401, "TICKET_USED")


async def test_unknown_expired_and_malformed_tickets_are_refused(server, aredis):
    ticket = new_ticket(server, "alice")
    [key] = await aredis.keys("ticket:*")
    await aredis.delete(key)  # what its expiry does
    for bad in (ticket, "A" * 43, "x", "not a ticket!", "t" * 3072):
        status, event = await first_event(server, "alice", bad)
        assert error(status, event) == (401, "TICKET_INVALID"), bad
    assert await aredis.keys("ticket:*") == []  # refusals leave nothing behind


async def test_a_ticket_is_its_users_own(server):
    ticket = new_ticket(server, "alice")
    status, event = await first_event(server, "mallory", ticket)
    assert error(status, event) == (403, "FORBIDDEN")
    status, event = await first_event(server, "alice", ticket)  # spent by the attempt
    assert error(status, event) == (401, "TICKET_USED")


async def test_concurrent_redemptions_let_exactly_one_stream_in(server):
    ticket = new_ticket(server, "alice")
    results = await asyncio.gather(*(first_event(server, "alice", ticket) for _ in range(8)))
    outcomes = sorted((status, event.get("code", event["state"])) for status, event in results)
    assert outcomes == [(200, "WAITING")] + [(401, "TICKET_USED")] * 7


def test_the_ticket_endpoint_takes_a_bearer_token_only(server):
    for kwargs, status, code in [
        ({}, 401, "UNAUTHORIZED"),
        ({"params": {"token": token("alice")}}, 401, "UNAUTHORIZED"),
        ({"headers": bearer(token("alice", secret="x" * 40))}, 401, "UNAUTHORIZED"),
        ({"headers": bearer(token("alice")), "json": {"userId": "bob"}}, 403, "FORBIDDEN"),
    ]:
        response = ticket_for(server, "alice", **kwargs)
        assert response.status_code == status, kwargs
        assert response.json()["code"] == code and response.json()["message"]
    response = ticket_for(server, "alice", headers=bearer(token("alice")), json={"userId": "alice"})
    assert response.status_code == 200 and response.json()["userId"] == "alice"
    response = requests.get(server.url + "/matchmaking/ticket", timeout=5)
    assert response.status_code == 405


async def test_without_auth_a_ticket_names_the_given_user(daphne):
    response = requests.post(daphne.url + "/matchmaking/ticket", timeout=5)
    assert response.status_code == 400 and response.json()["code"] == "MISSING_USER_ID"
    response = requests.post(daphne.url + "/matchmaking/ticket", json={"userId": "dora"}, timeout=5)
    ticket = response.json()["ticket"]
    status, event = await first_event(daphne, "eve", ticket)
    assert error(status, event) == (403, "FORBIDDEN")


def fragments(secret: str, size: int = 10) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


async def test_no_token_or_ticket_or_part_of_one_reaches_the_logs(daphne_factory):
    server = daphne_factory(AUTH_JWT_SECRET=SECRET, LOG_LEVEL="DEBUG")
    secrets = [token("alice"), token("bob"), token("alice", secret="y" * 40)]
    alice, bob, forged = secrets
    ticket = new_ticket(server, "alice")
    secrets.append(ticket)
    waiting = await open_stream(
        server.url, params={"userId": "alice", "interests": "LOGS", "ticket": ticket}
    )
    assert (await waiting.next_event())["state"] == "WAITING"
    arriving = await open_stream(
        server.url, params={"userId": "bob", "interests": "LOGS", "token": bob}
    )
    assert (await arriving.next_event())["state"] == "MATCHED"
    for params in ({"ticket": ticket}, {"token": forged}, {"token": bob}):
        stream = await open_stream(server.url, params={"userId": "alice", **params})
        await stream.events_until_closed()
    for path in ("/session/alice", "/nope", "/cancel_matchmaking", "/matchmaking/ticket"):
        for secret in (alice, forged):
            requests.get(server.url + path, params={"token": secret}, timeout=5)
            requests.post(server.url + path, params={"token": secret}, timeout=5)
            requests.post(
                server.url + path, headers=bearer(secret), json={"userId": "x"}, timeout=5
            )
    requests.get(server.url + "/status", params={"token": alice}, headers={"Host": "evil.test"})
    await waiting.close()
    await arriving.close()
    log = server.log()
    assert '"event": "match"' in log and "evil.test" in log  # the requests were logged
    leaked = {piece for secret in secrets for piece in fragments(secret) if piece in log}
    assert leaked == set()

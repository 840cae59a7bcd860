"""Optional verified identity: with AUTH_JWT_SECRET set, a user acts only as themselves.

Tokens are shaped like Supabase access tokens (HS256, ``sub`` = user id, ``aud`` =
``authenticated``); the live tests run a server with the secret set.
"""

from __future__ import annotations

import time

import jwt
import pytest
import requests

from animochat.auth import NotAuthorized, authorize_user
from tests.support.sse_client import open_stream

# 64 bytes: long enough for every HMAC the tests sign with (HS512 included).
SECRET = "test-jwt-secret-" + "s" * 48


def token(sub: str | None, secret: str = SECRET, algorithm: str = "HS256", **claims) -> str:
    payload = {"aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 600}
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode({**payload, **claims}, secret, algorithm=algorithm)


BAD_TOKENS = {
    "expired": token("alice", exp=int(time.time()) - 10),
    "wrong secret": token("alice", secret="another-secret-" + "x" * 49),
    "no sub": token(None),
    "HS512": token("alice", algorithm="HS512"),
    "unsigned": jwt.encode({"sub": "alice"}, key=None, algorithm="none"),
    "garbage": "not.a.jwt",
}


@pytest.fixture
def server(daphne_factory):
    return daphne_factory(AUTH_JWT_SECRET=SECRET)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def stream_status(server, user: str, **kwargs) -> tuple[int, dict]:
    stream = await open_stream(
        server.url, params={"userId": user, **kwargs.pop("params", {})}, **kwargs
    )
    event = await stream.next_event()
    await stream.close()
    return stream.status, event


async def test_stream_requires_the_users_own_token(server):
    status, event = await stream_status(server, "alice")
    assert (status, event["code"]) == (401, "UNAUTHORIZED") and event["message"]
    status, event = await stream_status(server, "alice", params={"token": token("bob")})
    assert (status, event["code"]) == (403, "FORBIDDEN") and event["message"]
    for name, bad in BAD_TOKENS.items():
        status, event = await stream_status(server, "alice", params={"token": bad})
        assert (status, event["code"]) == (401, "UNAUTHORIZED"), name
    # EventSource passes ?token=; other clients may send the header.
    status, event = await stream_status(server, "alice", params={"token": token("alice")})
    assert (status, event["state"]) == (200, "WAITING")
    status, event = await stream_status(server, "alice", headers=bearer(token("alice")))
    assert (status, event["state"]) == (200, "WAITING")


async def make_pair(server) -> str:
    waiting = await open_stream(
        server.url, params={"userId": "alice", "interests": "AUTH", "token": token("alice")}
    )
    assert (await waiting.next_event())["state"] == "WAITING"
    arriving = await open_stream(
        server.url, params={"userId": "bob", "interests": "AUTH"}, headers=bearer(token("bob"))
    )
    return (await arriving.next_event())["chatId"]


async def test_session_lookup_and_disconnect_require_the_users_own_token(server):
    chat_id = await make_pair(server)
    lookup = server.url + "/session/alice"
    assert requests.get(lookup, timeout=5).status_code == 401
    assert requests.get(lookup, headers=bearer(token("bob")), timeout=5).status_code == 403
    for name, bad in BAD_TOKENS.items():
        assert requests.get(lookup, headers=bearer(bad), timeout=5).status_code == 401, name
    response = requests.get(lookup, headers=bearer(token("alice")), timeout=5)
    assert response.status_code == 200 and response.json()["chatId"] == chat_id
    response = requests.get(lookup, params={"token": token("alice")}, timeout=5)
    assert response.status_code == 200 and response.json()["chatId"] == chat_id

    disconnect = server.url + "/session/disconnect"
    for headers, status in [({}, 401), (bearer(token("bob")), 403)]:
        response = requests.post(disconnect, json={"userId": "alice"}, headers=headers, timeout=5)
        assert response.status_code == status and response.json()["message"]
        assert response.json()["code"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status]
    response = requests.post(
        disconnect, json={"userId": "alice"}, headers=bearer(token("alice")), timeout=5
    )
    assert response.status_code == 200


async def test_cancel_requires_the_users_own_token(server):
    cancel = server.url + "/cancel_matchmaking"
    assert requests.post(cancel, json={"userId": "carol"}, timeout=5).status_code == 401
    response = requests.post(
        cancel, json={"userId": "carol"}, headers=bearer(token("dave")), timeout=5
    )
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    response = requests.post(
        cancel, json={"userId": "carol"}, params={"token": token("carol")}, timeout=5
    )
    assert response.status_code == 200


def test_endpoints_without_a_user_need_no_token(server):
    for path in ("/status", "/maintenance", "/interests/popular", "/openapi.json"):
        assert requests.get(server.url + path, timeout=5).status_code == 200, path


async def test_without_a_secret_no_token_is_needed(daphne):
    assert requests.get(daphne.url + "/session/alice", timeout=5).status_code == 200
    assert (
        requests.post(
            daphne.url + "/cancel_matchmaking", json={"userId": "alice"}, timeout=5
        ).status_code
        == 200
    )
    status, event = await stream_status(daphne, "nobody-checks")
    assert (status, event["state"]) == (200, "WAITING")


def test_authorize_user_accepts_a_supabase_shaped_token(settings):
    settings.AUTH_JWT_SECRET = SECRET
    supabase = token(
        "8f14e45f-ceea-467f-a0e6-6f8b1b3f5b1e",
        email="user@example.com",
        session_id="abc",
        iss="https://project.supabase.co/auth/v1",
    )
    authorize_user("8f14e45f-ceea-467f-a0e6-6f8b1b3f5b1e", supabase)
    with pytest.raises(NotAuthorized) as refused:
        authorize_user("someone-else", supabase)
    assert refused.value.status == 403
    with pytest.raises(NotAuthorized) as refused:
        authorize_user("x", "")
    assert refused.value.status == 401
    settings.AUTH_JWT_SECRET = ""
    authorize_user("x", "")  # off: anything goes

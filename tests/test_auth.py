"""Optional verified identity: with AUTH_JWT_SECRET set, a user acts only as themselves.

Tokens are shaped like Supabase access tokens (HS256, ``sub`` = user id, ``aud`` =
``authenticated``); the live tests run a server with the secret set. Tokens travel in
the Authorization header, and in the URL only on the stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import jwt
import pytest
import requests

from animochat.auth import LEEWAY_SECONDS, NotAuthorized, authorize_user
from tests.support.servers import BASE_DIR
from tests.support.sse_client import open_stream

# 64 bytes: long enough for every HMAC the tests sign with (HS512 included).
SECRET = "test-jwt-secret-" + "s" * 48


def token(sub: str | None, secret: str = SECRET, algorithm: str = "HS256", **claims) -> str:
    payload = {"aud": "authenticated", "role": "authenticated", "exp": int(time.time()) + 600}
    if sub is not None:
        payload["sub"] = sub
    return jwt.encode({**payload, **claims}, secret, algorithm=algorithm)


BAD_TOKENS = {
    "expired": token("alice", exp=int(time.time()) - LEEWAY_SECONDS - 60),
    "wrong secret": token("alice", secret="another-secret-" + "x" * 49),
    "no sub": token(None),
    "no exp": jwt.encode({"sub": "alice", "aud": "authenticated"}, SECRET, algorithm="HS256"),
    "another audience": token("alice", aud="service_role"),
    "no audience": jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET),
    "sub not a string": jwt.encode(
        {"sub": 42, "aud": "authenticated", "exp": int(time.time()) + 600}, SECRET
    ),
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
    # A clock a little behind the issuer's still accepts a token that just expired.
    just_expired = token("alice", exp=int(time.time()) - LEEWAY_SECONDS // 3)
    status, event = await stream_status(server, "alice", params={"token": just_expired})
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
    refused = requests.get(lookup, timeout=5)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.json()["code"] == "UNAUTHORIZED" and refused.json()["message"]
    assert requests.get(lookup, headers=bearer(token("bob")), timeout=5).status_code == 403
    for name, bad in BAD_TOKENS.items():
        assert requests.get(lookup, headers=bearer(bad), timeout=5).status_code == 401, name
    response = requests.get(lookup, headers=bearer(token("alice")), timeout=5)
    assert response.status_code == 200 and response.json()["chatId"] == chat_id
    # Only the stream takes a token in the URL.
    response = requests.get(lookup, params={"token": token("alice")}, timeout=5)
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"

    disconnect = server.url + "/session/disconnect"
    for headers, params, status, code in [
        ({}, {}, 401, "UNAUTHORIZED"),
        ({}, {"token": token("alice")}, 401, "UNAUTHORIZED"),
        (bearer(token("bob")), {}, 403, "FORBIDDEN"),
    ]:
        response = requests.post(
            disconnect, json={"userId": "alice"}, headers=headers, params=params, timeout=5
        )
        assert response.status_code == status and response.json()["message"]
        assert response.json()["code"] == code
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
    assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    response = requests.post(
        cancel, json={"userId": "carol"}, headers=bearer(token("carol")), timeout=5
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


async def test_authorize_user_accepts_a_supabase_shaped_token(settings):
    settings.AUTH_JWT_SECRET = SECRET
    supabase = token(
        "8f14e45f-ceea-467f-a0e6-6f8b1b3f5b1e",
        email="user@example.com",
        session_id="abc",
        iss="https://project.supabase.co/auth/v1",
    )
    await authorize_user("8f14e45f-ceea-467f-a0e6-6f8b1b3f5b1e", supabase)
    with pytest.raises(NotAuthorized) as refused:
        await authorize_user("someone-else", supabase)
    assert (refused.value.status, refused.value.code) == (403, "FORBIDDEN")
    with pytest.raises(NotAuthorized) as refused:
        await authorize_user("x", "")
    assert (refused.value.status, refused.value.code) == (401, "UNAUTHORIZED")
    settings.AUTH_JWT_SECRET = ""
    await authorize_user("x", "")  # off: anything goes


async def test_an_empty_audience_setting_turns_the_audience_check_off(settings):
    settings.AUTH_JWT_SECRET = SECRET
    other_audience = token("alice", aud="another-app")
    with pytest.raises(NotAuthorized, match="audience"):
        await authorize_user("alice", other_audience)
    settings.AUTH_JWT_AUDIENCE = "another-app"
    await authorize_user("alice", other_audience)
    settings.AUTH_JWT_AUDIENCE = ""
    await authorize_user("alice", other_audience)
    await authorize_user("alice", jwt.encode({"sub": "alice", "exp": time.time() + 60}, SECRET))
    with pytest.raises(NotAuthorized):  # sub and exp stay required
        await authorize_user("alice", jwt.encode({"sub": "alice"}, SECRET))


def test_a_short_secret_stops_start_up_with_one_line():
    proc = subprocess.run(
        [sys.executable, "-m", "animochat.serve", "-p", "0", "animochat.asgi:application"],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "animochat.settings",
            "AUTH_JWT_SECRET": "s" * 31,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "Configuration error: AUTH_JWT_SECRET must be at least 32 bytes, got 31"
    )


def warnings_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if '"level": "WARNING"' in line]


def test_an_open_server_warns_once_at_start_up(daphne_factory):
    open_server = daphne_factory(AUTH_JWT_SECRET="")
    debug_server = daphne_factory(AUTH_JWT_SECRET="", DEBUG="true")
    locked_server = daphne_factory(AUTH_JWT_SECRET=SECRET)
    for server in (open_server, debug_server, locked_server):
        for _ in range(3):
            requests.get(server.url + "/session/alice", timeout=5)
    [warning] = warnings_in(open_server.log())
    assert '"event": "auth_off"' in warning
    assert "anyone who knows a user id can" in warning and "end it" in warning
    assert "AUTH_JWT_SECRET" in warning and "AUTH_JWKS_URL" in warning
    assert warnings_in(debug_server.log()) == []
    assert '"auth_off"' not in locked_server.log()

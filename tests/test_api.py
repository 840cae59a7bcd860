"""The JSON API against a live Daphne: every endpoint and documented status code."""

from __future__ import annotations

import requests

from tests.support.discovery_servers import wait_for
from tests.support.sse_client import open_stream


def url(server, path: str) -> str:
    return server.url + path


async def make_pair(server, a: str, b: str, interest: str = "X") -> dict:
    waiting = await open_stream(server.url, params={"userId": a, "interests": interest})
    await waiting.next_event()
    arriving = await open_stream(server.url, params={"userId": b, "interests": interest})
    event = await arriving.next_event()
    await waiting.next_change()
    return event


async def test_session_lookup(daphne):
    event = await make_pair(daphne, "s1", "s2")
    response = requests.get(url(daphne, "/session/s1"), timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "chatId": event["chatId"],
        "serverUrl": event["chatServerUrl"],
        "participants": ["s1", "s2"],
    }
    response = requests.get(url(daphne, "/session/nobody"), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"message": "No active session found for this user."}


async def test_disconnect_by_json_form_or_query(daphne):
    for style in ("json", "form", "query", "both"):
        await make_pair(daphne, "d1", "d2")
        kwargs = {
            "json": {"json": {"userId": "d1"}},
            "form": {"data": {"userId": "d1"}},
            "query": {"params": {"userId": "d1"}},
            "both": {"params": {"userId": "d1"}, "json": {"userId": "d1"}},
        }[style]
        response = requests.post(url(daphne, "/session/disconnect"), timeout=5, **kwargs)
        assert response.status_code == 200, style
        assert response.json() == {"message": "Session disconnected successfully."}
        # Ended for both participants.
        for user in ("d1", "d2"):
            assert "chatId" not in requests.get(url(daphne, f"/session/{user}"), timeout=5).json()
    response = requests.post(url(daphne, "/session/disconnect"), json={"userId": "d2"}, timeout=5)
    assert response.status_code == 404
    assert response.json() == {
        "code": "NO_ACTIVE_SESSION",
        "message": "No active session found to disconnect.",
    }


def test_disconnect_bad_input(daphne):
    endpoint = url(daphne, "/session/disconnect")
    json_type = {"Content-Type": "application/json"}
    cases = [
        ({}, "MISSING_USER_ID", "User ID is required"),
        ({"json": {}}, "MISSING_USER_ID", "User ID is required"),
        ({"data": "{not json", "headers": json_type}, "INVALID_JSON", "not valid JSON"),
        ({"json": ["userId"]}, "INVALID_BODY", "must be an object"),
        ({"json": {"userId": 42}}, "INVALID_USER_ID", "must be a string"),
        ({"json": {"userId": "x" * 200}}, "INVALID_USER_ID", "at most 128"),
        ({"params": {"userId": "a"}, "json": {"userId": "b"}}, "CONFLICTING_FIELD", "differs"),
        ({"data": '{"userId": "a", "userId": "a"}', "headers": json_type}, "DUPLICATE_FIELD", ""),
    ]
    for kwargs, code, message in cases:
        response = requests.post(endpoint, timeout=5, **kwargs)
        assert response.status_code == 400, kwargs
        assert response.json()["code"] == code, (kwargs, response.json())
        assert message in response.json()["message"], (kwargs, response.json())
    big = requests.post(
        endpoint,
        data=b"{" + b" " * 2_000_000 + b"}",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413 and big.json()["code"] == "BODY_TOO_LARGE"


def test_wrong_methods_get_405_with_a_message(daphne):
    for method, path in [
        ("GET", "/session/disconnect"),
        ("GET", "/cancel_matchmaking"),
        ("POST", "/status"),
        ("DELETE", "/maintenance"),
        ("PUT", "/interests/popular"),
        ("POST", "/session/someone"),
    ]:
        response = requests.request(method, url(daphne, path), timeout=5)
        assert response.status_code == 405, (method, path)
        assert response.json()["message"] and response.headers["Allow"]
        assert response.json()["code"] == "METHOD_NOT_ALLOWED"


def test_unknown_path_is_json_404(daphne):
    response = requests.get(url(daphne, "/nope"), timeout=5)
    assert response.status_code == 404
    assert response.json() == {"code": "NOT_FOUND", "message": "No endpoint at /nope."}


async def test_cancel_is_idempotent_and_validates(daphne, clean_redis):
    stream = await open_stream(daphne.url, params={"userId": "c", "interests": "A,B"})
    await stream.next_event()
    for _ in range(2):
        response = requests.post(
            url(daphne, "/cancel_matchmaking"),
            timeout=5,
            json={"userId": "c", "interests": ["a", "b"]},
        )
        assert response.status_code == 200
        assert response.json() == {"message": "Matchmaking cancelled successfully."}
    assert clean_redis.zcard("queue:waiting") == 0
    response = requests.post(url(daphne, "/cancel_matchmaking"), json={}, timeout=5)
    assert response.status_code == 400 and "User ID is required" in response.json()["message"]
    response = requests.post(
        url(daphne, "/cancel_matchmaking"),
        timeout=5,
        json={"userId": "c", "interests": "not-a-list-is-fine"},
    )
    assert response.status_code == 200
    response = requests.post(
        url(daphne, "/cancel_matchmaking"), timeout=5, json={"userId": "c", "interests": [1, 2]}
    )
    assert response.status_code == 400


async def test_popular_interests(daphne):
    for n in range(3):
        await make_pair(daphne, f"p{n}a", f"p{n}b", "MUSIC")
    await make_pair(daphne, "qa", "qb", "ART")
    expected = [{"interest": "MUSIC", "count": 6}, {"interest": "ART", "count": 2}]
    # Each process reads popularity at most every 2 s.
    assert wait_for(
        lambda: requests.get(url(daphne, "/interests/popular"), timeout=5).json() == expected
    )
    assert requests.get(url(daphne, "/interests/popular?limit=1"), timeout=5).json() == [
        {"interest": "MUSIC", "count": 6}
    ]
    for bad in ("0", "51", "abc", "-1", "1.5"):
        response = requests.get(url(daphne, f"/interests/popular?limit={bad}"), timeout=5)
        assert response.status_code == 400 and "limit" in response.json()["message"]
        assert response.json()["code"] == "INVALID_LIMIT"
    response = requests.get(url(daphne, "/interests/popular?limit=1&limit=2"), timeout=5)
    assert response.json()["code"] == "DUPLICATE_PARAMETER"


async def test_status_document(daphne):
    stream = await open_stream(daphne.url, params={"userId": "st", "interests": "Q1,Q2"})
    await stream.next_event()
    await make_pair(daphne, "st2", "st3", "Z")
    body = requests.get(url(daphne, "/status"), timeout=5).json()
    assert body["serviceState"] == "ACTIVE"
    assert body["redis"] == {"commands": "ready", "subscriber": "ready"}
    assert body["metrics"]["usersInQueue"] == 1
    assert body["metrics"]["queues"] == {"Q1": 1, "Q2": 1}
    assert body["metrics"]["activeSessions"] == 1
    assert body["metrics"]["openStreams"] == 1
    assert body["serviceInfo"] == {
        "serviceName": "matchmaking-server",
        "version": "1.0.0",
        "pid": daphne.process.pid,
    }
    assert body["uptime"] > 0 and body["processMemory"]["rss"] > 0
    assert set(body["os"]) == {
        "hostname",
        "platform",
        "totalMemory",
        "freeMemory",
        "cpuCount",
        "loadAverage",
    }
    assert set(body["cpuUsage"]) == {"user", "system"}
    assert "T" in body["timestamp"]
    await stream.close()


def test_status_is_503_json_when_redis_is_down(daphne_factory):
    server = daphne_factory(REDIS_URL="redis://127.0.0.1:1/0")
    response = requests.get(url(server, "/status"), timeout=10)
    assert response.status_code == 503
    assert response.json()["redis"]["commands"] == "down"
    response = requests.get(url(server, "/maintenance"), timeout=10)
    assert response.status_code == 503 and response.json()["message"]


def test_cors_simple_and_preflight(daphne):
    response = requests.get(
        url(daphne, "/maintenance"), headers={"Origin": "https://app.example"}, timeout=5
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    response = requests.options(
        url(daphne, "/session/disconnect"),
        timeout=5,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]


async def test_cors_restricted_origins(daphne_factory):
    server = daphne_factory(CORS_ALLOWED_ORIGINS="https://animochat.example")
    allowed = requests.get(
        url(server, "/maintenance"), timeout=5, headers={"Origin": "https://animochat.example"}
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://animochat.example"
    denied = requests.get(
        url(server, "/maintenance"), timeout=5, headers={"Origin": "https://evil.example"}
    )
    assert "Access-Control-Allow-Origin" not in denied.headers
    stream = await open_stream(
        server.url, params={"userId": "o"}, headers={"Origin": "https://animochat.example"}
    )
    assert stream.headers["access-control-allow-origin"] == "https://animochat.example"
    await stream.close()

"""ACCESS_LOG: one JSON line per request from a real Daphne, never a credential."""

from __future__ import annotations

import json

import requests

from animochat.access_log import redacted_query
from tests.support.discovery_servers import wait_for

SECRETS = ("tok-SECRET-1", "tick-SECRET-2", "jwt-SECRET-3")


def access_lines(server) -> list[dict]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "animochat.access"]


def test_one_line_per_request_without_credentials(daphne_factory):
    server = daphne_factory(ACCESS_LOG="true", TRUSTED_PROXY_HOPS="1")
    made = {
        "maintenance": ("/maintenance?probe=1", {"X-Forwarded-For": "203.0.113.9"}),
        "stream": (f"/matchmaking?interests=A&token={SECRETS[0]}&ticket={SECRETS[1]}", {}),
        "popular": (
            f"/interests/popular?limit=3&access_token={SECRETS[2]}",
            {"User-Agent": "probe/1"},
        ),
        "health": ("/healthz?probe=2", {}),
    }
    for path, headers in made.values():
        requests.get(server.url + path, headers=headers, timeout=10)

    def logged(path: str) -> list[dict]:
        return [line for line in access_lines(server) if line["path"] == path.split("?")[0]]

    # The start-up check asked for /maintenance too: told apart by its query string.
    assert wait_for(
        lambda: all(
            [line for line in logged(path) if line["query"] != ""] for path, _ in made.values()
        ),
        timeout=30,
    )
    lines = {
        name: [line for line in logged(path) if line["query"] != ""]
        for name, (path, _) in made.items()
    }
    assert all(len(found) == 1 for found in lines.values()), lines  # one line per request
    maintenance, stream, popular, health = (lines[name][0] for name in made)
    assert maintenance["event"] == "request" and maintenance["level"] == "INFO"
    assert (maintenance["method"], maintenance["query"], maintenance["status"]) == (
        "GET",
        "probe=1",
        200,
    )
    assert maintenance["client"] == "203.0.113.9"  # decided once, behind one proxy
    assert maintenance["forwarded_for"] == "203.0.113.9" and "forwarded_for" not in health
    assert maintenance["bytes"] > 0 and maintenance["ms"] >= 0
    # A stream refused for lacking a userId: its credentials are not logged.
    assert stream["status"] == 400
    assert stream["query"] == "interests=A&token=[redacted]&ticket=[redacted]"
    assert popular["query"] == "limit=3&access_token=[redacted]"
    assert popular["user_agent"] == "probe/1"
    assert health["status"] == 200
    for secret in SECRETS:
        assert secret not in server.log()


def test_off_by_default(daphne):
    requests.get(daphne.url + "/maintenance?token=x", timeout=5)
    assert access_lines(daphne) == []


def test_redaction_keeps_ordinary_parameters():
    assert redacted_query(b"userId=u%201&interests=a,b&fallbackAfter=5") == (
        "userId=u+1&interests=a,b&fallbackAfter=5"
    )
    assert redacted_query(b"Token=x&api_key=y&sig=z&password=w") == (
        "Token=[redacted]&api_key=[redacted]&sig=[redacted]&password=[redacted]"
    )
    assert redacted_query(b"") == "" and redacted_query(b"\xff=\xfe") == "%EF%BF%BD=%EF%BF%BD"

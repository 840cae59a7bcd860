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
    requests_made = [
        ("/maintenance", {"X-Forwarded-For": "203.0.113.9"}),
        (f"/matchmaking?interests=A&token={SECRETS[0]}&ticket={SECRETS[1]}", {}),
        (f"/interests/popular?limit=3&access_token={SECRETS[2]}", {"User-Agent": "probe/1"}),
        ("/healthz", {}),
    ]
    before = len(access_lines(server))  # the start-up check's request
    for path, headers in requests_made:
        requests.get(server.url + path, headers=headers, timeout=10)
    assert wait_for(lambda: len(access_lines(server)) == before + 4, timeout=30)
    lines = access_lines(server)[before:]

    maintenance, stream, popular, health = lines
    assert maintenance["event"] == "request" and maintenance["level"] == "INFO"
    assert (maintenance["method"], maintenance["path"], maintenance["status"]) == (
        "GET",
        "/maintenance",
        200,
    )
    assert maintenance["client"] == "203.0.113.9"  # decided once, behind one proxy
    assert maintenance["bytes"] > 0 and maintenance["ms"] >= 0
    # A stream refused for lacking a userId: its credentials are not logged.
    assert stream["path"] == "/matchmaking" and stream["status"] == 400
    assert stream["query"] == "interests=A&token=[redacted]&ticket=[redacted]"
    assert popular["query"] == "limit=3&access_token=[redacted]"
    assert popular["user_agent"] == "probe/1"
    assert health["path"] == "/healthz" and health["status"] == 200
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

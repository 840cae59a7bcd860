"""The discovery section of /status (read from a real Redis) and the heartbeat's rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from discovery import selectors
from discovery.services import backoff_delay, screen_chat_servers, validate_interval

MY_URL = "http://matchmaker.test"


def iso(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


async def test_nothing_reported_yet(aredis, settings):
    status = await selectors.discovery_status()
    assert status == {
        "registration": "unknown",
        "registrationNote": selectors.REGISTRATION_NOTES["unknown"],
        "registeredUrl": None,
        "discoveryServerUrl": settings.DISCOVERY_SERVER_URL,
        "lastHeartbeat": None,
        "heartbeatAgeSeconds": None,
        "lastRefresh": None,
        "lastError": None,
        "chatServers": list(settings.CHAT_SERVER_URLS),
        "chatServerSource": "fallback",
    }


async def test_registered_with_discovered_chat_servers(aredis):
    beat = iso(2)
    await aredis.rpush("chat_servers:discovered", "http://c1.test", "http://c2.test")
    await aredis.hset(
        "discovery:state",
        mapping={
            "registration": "registered",
            "registeredUrl": MY_URL,
            "discoveryServerUrl": "http://registry.test",
            "lastHeartbeatAt": beat,
            "lastRefreshAt": beat,
            "lastError": "",
        },
    )
    status = await selectors.discovery_status()
    assert status["registration"] == "registered" and status["registeredUrl"] == MY_URL
    assert status["lastHeartbeat"] == beat and 1 <= status["heartbeatAgeSeconds"] < 15
    assert status["discoveryServerUrl"] == "http://registry.test"
    assert status["chatServers"] == ["http://c1.test", "http://c2.test"]
    assert status["chatServerSource"] == "discovery"


async def test_silent_heartbeat_is_reported_stale(aredis):
    await aredis.hset(
        "discovery:state",
        mapping={"registration": "registered", "registeredUrl": MY_URL, "lastHeartbeatAt": iso(20)},
    )
    status = await selectors.discovery_status()
    assert status["registration"] == "stale" and status["registeredUrl"] == MY_URL
    assert "heartbeat" in status["registrationNote"]


async def test_registration_off_and_no_chat_server_at_all(aredis, settings):
    settings.CHAT_SERVER_URLS = ()
    await aredis.hset("discovery:state", mapping={"registration": "off", "registeredUrl": ""})
    status = await selectors.discovery_status()
    assert status["registration"] == "off" and status["registeredUrl"] is None
    assert "RENDER_EXTERNAL_URL" in status["registrationNote"]
    assert status["chatServers"] == [] and status["chatServerSource"] == "none"


def test_backoff_starts_at_one_interval_doubles_and_is_capped():
    no_jitter = [backoff_delay(5, failed, jitter=lambda: 0.0) for failed in range(7)]
    assert no_jitter == [5, 5, 10, 20, 30, 30, 30]
    full_jitter = [backoff_delay(5, failed, jitter=lambda: 1.0) for failed in range(2, 7)]
    assert full_jitter == [7.5, 15, 22.5, 22.5, 22.5]


@pytest.mark.parametrize("bad", [15, 15.0, 300, 0, -1, math.nan, math.inf])
def test_interval_must_be_positive_and_under_15_seconds(bad):
    with pytest.raises(ValueError):
        validate_interval(bad)


@pytest.mark.parametrize("good", [0.1, 5, 14.9])
def test_intervals_under_15_seconds_are_accepted(good):
    assert validate_interval(good) == good


def test_chat_server_screening_rules():
    urls = [
        "http://localhost:7000",
        "http://[::1]:7000",
        "http://127.0.0.2",
        "http://chat.example.com",
        "https://chat.example.com",
        "https://a.chat.example.com",
        "https://chat.example.com.evil.test",
    ]
    accepted, refused = screen_chat_servers(urls, (), allow_plain_http=False)
    assert accepted == sorted(set(urls) - {"http://chat.example.com"})
    assert refused == [{"url": "http://chat.example.com", "reason": "not https"}]

    accepted, _ = screen_chat_servers(urls, (".chat.example.com",), allow_plain_http=True)
    assert accepted == [
        "http://chat.example.com",
        "https://a.chat.example.com",
        "https://chat.example.com",
    ]
    accepted, _ = screen_chat_servers(urls, ("chat.example.com",), allow_plain_http=False)
    assert accepted == ["https://chat.example.com"]

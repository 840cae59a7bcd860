"""`manage.py heartbeat` as a real process against real registries and a misbehaving stub."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys

import pytest
import requests
from django.conf import settings

from animochat.embedded_redis import free_port
from tests.support.discovery_servers import (
    BASE_DIR,
    DiscoveryServerProcess,
    HeartbeatProcess,
    wait_for,
)
from tests.support.discovery_stub import CHAT_SERVER, DiscoveryStub

MY_URL = "http://matchmaker.test"
IDENTITY = {"serviceName": "matchmaking-server", "version": "1.0.0", "url": MY_URL}


@pytest.fixture
def registry():
    server = DiscoveryServerProcess().start()
    yield server
    server.stop()


def my_registrations(registry: DiscoveryServerProcess) -> list[dict]:
    return [
        r
        for r in registry.requests_seen()
        if r["method"] == "POST" and isinstance(r["body"], dict) and r["body"].get("url") == MY_URL
    ]


def test_registers_beats_every_five_seconds_and_unregisters_with_url(registry, daphne):
    # Default HEARTBEAT_INTERVAL (5 s) and a DISCOVERY_SERVER_URL ending with "/".
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": registry.url + "/", "RENDER_EXTERNAL_URL": MY_URL}
    ).start()
    try:
        assert wait_for(lambda: len(my_registrations(registry)) >= 3, timeout=20), heartbeat.log()
        first, second, third = my_registrations(registry)[:3]
        assert first["path"] == "/register" and first["body"] == IDENTITY
        assert (first["status"], second["status"], third["status"]) == (201, 200, 200)
        assert third["at"] - first["at"] < 12  # registration and two heartbeats within 12 s

        status = requests.get(daphne.url + "/status", timeout=5).json()["discovery"]
        assert status["registration"] == "registered"
        assert status["registeredUrl"] == MY_URL
        assert status["discoveryServerUrl"] == registry.url
        assert status["lastHeartbeat"] and status["heartbeatAgeSeconds"] < 15
        assert status["lastRefresh"] and status["lastError"] is None
        assert status["chatServerSource"] == "fallback"  # no chat server registered
        assert status["chatServers"] == list(settings.CHAT_SERVER_URLS)
        assert heartbeat.running()
    finally:
        assert heartbeat.stop() == 0

    seen = registry.requests_seen()
    assert all("//" not in r["path"] for r in seen)
    [unregister] = [r for r in seen if r["method"] == "DELETE"]
    assert unregister["path"] == "/unregister" and unregister["status"] == 200
    assert unregister["body"] == IDENTITY
    assert registry.requests_seen()[-1] == unregister  # nothing after leaving
    # State changes only: nothing per beat.
    assert heartbeat.event_names() == [
        "heartbeat_started",
        "registered",
        "chat_servers_changed",
        "unregistered",
        "heartbeat_stopped",
    ]
    status = requests.get(daphne.url + "/status", timeout=5).json()["discovery"]
    assert status["registration"] == "unregistered" and status["registeredUrl"] is None


def test_without_render_url_registration_is_off_but_the_list_is_refreshed(registry, clean_redis):
    registry.register("chat-service", "1.0.0", "https://chat-2.test")
    registry.register("chat-service", "1.0.0", "https://chat-1.test/")
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": registry.url, "RENDER_EXTERNAL_URL": ""}, interval=0.3
    ).start()
    try:
        # The beat writes the list, then its state: wait for both.
        assert wait_for(
            lambda: (
                clean_redis.lrange("chat_servers:discovered", 0, -1)
                == [b"https://chat-1.test", b"https://chat-2.test"]
                and clean_redis.hexists("discovery:state", "registration")
            )
        ), heartbeat.log()
        assert 0 < clean_redis.pttl("chat_servers:discovered") <= 900  # 3 beats
        state = clean_redis.hgetall("discovery:state")
        assert state[b"registration"] == b"off" and state[b"registeredUrl"] == b""
        [off] = [e for e in heartbeat.events() if e["event"] == "registration_off"]
        assert off["level"] == "WARNING" and "RENDER_EXTERNAL_URL is not set" in off["reason"]
    finally:
        assert heartbeat.stop() == 0
    mine = [r for r in registry.requests_seen() if "matchmaking-server" in str(r["body"])]
    assert mine == []
    assert "unregistered" not in heartbeat.event_names()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--interval", "15"], {}, "must be under 15 seconds"),
        (["--interval", "0"], {}, "must be a positive number"),
        ([], {"HEARTBEAT_INTERVAL": "300"}, "HEARTBEAT_INTERVAL must be under 15 seconds"),
    ],
)
def test_heartbeat_interval_of_15_s_or_more_is_refused(args, env, message):
    done = subprocess.run(
        [sys.executable, "manage.py", "heartbeat", *args],
        cwd=BASE_DIR,
        env={**HeartbeatProcess({}).env, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_misbehaving_registry_keeps_it_running_and_logs_sparsely(clean_redis):
    stub = DiscoveryStub(sleep=1.5).start()
    stub.cycle(
        [
            *("500-json", "500-html", "200-html", "garbage-json", "timeout", "404-html"),
            *("close", "bad-instances", "502-html", "dribble", "huge", "wrong-shape", "empty-200"),
        ]
    )
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": stub.url, "RENDER_EXTERNAL_URL": MY_URL}, interval=0.3
    ).start()
    try:
        assert wait_for(lambda: len(stub.requests_seen) >= 14, timeout=25), heartbeat.log()
        assert heartbeat.running()
        during = heartbeat.event_names()
        assert during.count("heartbeat_failing") == 1
        assert during.count("chat_server_list_failing") == 1
        assert len(during) <= 5  # started, the two failures, chat servers -> fallback
        state = clean_redis.hgetall("discovery:state")
        assert state[b"registration"] == b"failing" and state[b"lastError"]

        stub.set_mode("healthy")
        assert wait_for(
            lambda: clean_redis.lrange("chat_servers:discovered", 0, -1) == [CHAT_SERVER.encode()],
            timeout=10,
        ), heartbeat.log()
        assert wait_for(lambda: "heartbeat_recovered" in heartbeat.event_names(), timeout=5)
        assert wait_for(lambda: clean_redis.hget("discovery:state", "lastError") == b"")
        assert clean_redis.hget("discovery:state", "registration") == b"registered"
    finally:
        code = heartbeat.stop()
        stub.stop()
    assert code == 0
    names = heartbeat.event_names()
    for event in ("heartbeat_failing", "heartbeat_recovered", "chat_server_list_failing"):
        assert names.count(event) == 1, names
    assert names.count("chat_server_list_recovered") == 1
    assert names[-2:] == ["unregistered", "heartbeat_stopped"]
    assert len(names) <= 10
    assert "Traceback" not in heartbeat.log()
    [recovered] = [e for e in heartbeat.events() if e["event"] == "heartbeat_recovered"]
    assert recovered["failures"] >= 3 and recovered["lastError"]


def test_backs_off_while_the_registry_fails_then_beats_normally():
    stub = DiscoveryStub("500-json").start()
    interval = 0.3
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": stub.url, "RENDER_EXTERNAL_URL": MY_URL}, interval=interval
    ).start()

    def register_times() -> list[float]:
        with stub._lock:
            return [r["at"] for r in stub.requests_seen if r["method"] == "POST"]

    try:
        assert wait_for(lambda: len(register_times()) >= 5, timeout=20), heartbeat.log()
        times = register_times()[:5]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # 0.3, 0.6, 1.2, 1.8 s (less up to a quarter of jitter); without backoff all ~0.3 s.
        # A busy machine only lengthens gaps (the first one most, while the process
        # starts), so the lower bound on the last gap is what tells backoff apart.
        assert gaps[-1] >= 4 * interval, gaps
        stub.set_mode("healthy")
        assert wait_for(lambda: "heartbeat_recovered" in heartbeat.event_names(), timeout=5)
        recovered_at = len(register_times())
        assert wait_for(lambda: len(register_times()) >= recovered_at + 4, timeout=5)
    finally:
        assert heartbeat.stop() == 0
        stub.stop()


def test_keeps_registering_while_redis_is_down(registry):
    heartbeat = HeartbeatProcess(
        {
            "DISCOVERY_SERVER_URL": registry.url,
            "RENDER_EXTERNAL_URL": MY_URL,
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        },
        interval=0.3,
    ).start()
    try:
        assert wait_for(lambda: len(my_registrations(registry)) >= 3, timeout=20), heartbeat.log()
        assert heartbeat.running()
    finally:
        assert heartbeat.stop() == 0
    names = heartbeat.event_names()
    assert names.count("redis_unavailable") == 1
    assert "registered" in names and "unregistered" in names
    assert "Traceback" not in heartbeat.log()


def test_stops_promptly_on_sigint(registry):
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": registry.url, "RENDER_EXTERNAL_URL": MY_URL}
    ).start()
    assert wait_for(lambda: len(my_registrations(registry)) >= 1, timeout=20), heartbeat.log()
    assert heartbeat.stop(signal.SIGINT, timeout=5) == 0
    assert "unregistered" in heartbeat.event_names()


def discovered(clean_redis) -> list[str]:
    return [url.decode() for url in clean_redis.lrange("chat_servers:discovered", 0, -1)]


def test_only_allowed_https_chat_servers_reach_users(registry, daphne, clean_redis):
    allowed = [f"https://chat-{n:02d}.chat.test" for n in range(40)]
    for url in [
        *allowed,
        "http://plain.chat.test",  # not https
        "https://chat.evil.test",  # not an allowed host
        "https://chat.test.evil.example",
        "http://127.0.0.1:7001",  # loopback: plain http is fine
    ]:
        assert registry.register("chat-service", "1.0.0", url) == 201
    heartbeat = HeartbeatProcess(
        {
            "DISCOVERY_SERVER_URL": registry.url,
            "RENDER_EXTERNAL_URL": "",
            "CHAT_SERVER_ALLOWED_HOSTS": ".chat.test, 127.0.0.1",
        },
        interval=0.3,
    ).start()
    expected = sorted(["http://127.0.0.1:7001", *allowed])[:32]
    try:
        assert wait_for(lambda: discovered(clean_redis) == expected), heartbeat.log()
        beats = len(registry.requests_seen())
        assert wait_for(lambda: len(registry.requests_seen()) >= beats + 3)  # three more beats
        status = requests.get(daphne.url + "/status", timeout=5).json()["discovery"]
        assert status["chatServers"] == expected and status["chatServerSource"] == "discovery"

        # The list changes: its refused entries are logged again, once.
        registry.unregister("chat-service", "1.0.0", allowed[-1])
        assert wait_for(lambda: len(heartbeat_events(heartbeat, "chat_servers_refused")) == 2)
        beats = len(registry.requests_seen())
        assert wait_for(lambda: len(registry.requests_seen()) >= beats + 3)
    finally:
        assert heartbeat.stop() == 0
    first, second = heartbeat_events(heartbeat, "chat_servers_refused")
    assert (
        first["level"] == "WARNING" and first["refusedCount"] == 12
    )  # 3 by the rules, 9 past the 32
    reasons = {entry["url"]: entry["reason"] for entry in first["refused"]}
    assert reasons["http://plain.chat.test"] == "not https"
    assert reasons["https://chat.evil.test"] == "host not in CHAT_SERVER_ALLOWED_HOSTS"
    assert reasons["https://chat.test.evil.example"] == "host not in CHAT_SERVER_ALLOWED_HOSTS"
    assert reasons[allowed[-1]] == "more than 32 chat servers"
    assert second["refusedCount"] == 11


def heartbeat_events(heartbeat: HeartbeatProcess, name: str) -> list[dict]:
    return [event for event in heartbeat.events() if event["event"] == name]


def test_plain_http_chat_servers_are_kept_with_debug_on(registry, clean_redis):
    registry.register("chat-service", "1.0.0", "http://chat-dev.test")
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": registry.url, "RENDER_EXTERNAL_URL": "", "DEBUG": "true"},
        interval=0.3,
    ).start()
    try:
        assert wait_for(lambda: discovered(clean_redis) == ["http://chat-dev.test"])
    finally:
        assert heartbeat.stop() == 0
    assert heartbeat_events(heartbeat, "chat_servers_refused") == []


def test_status_shows_the_registry_error_without_its_body(daphne, clean_redis):
    stub = DiscoveryStub("500-leaky").start()
    heartbeat = HeartbeatProcess(
        {"DISCOVERY_SERVER_URL": stub.url, "RENDER_EXTERNAL_URL": MY_URL}, interval=0.3
    ).start()
    try:
        assert wait_for(lambda: clean_redis.hget("discovery:state", "lastError")), heartbeat.log()
        error = requests.get(daphne.url + "/status", timeout=5).json()["discovery"]["lastError"]
    finally:
        assert heartbeat.stop() == 0
        stub.stop()
    assert "HTTP 500 Internal Server Error" in error
    assert "hunter2" not in error and "postgres" not in error
    assert "hunter2" not in heartbeat.log()

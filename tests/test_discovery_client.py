"""The discovery client and the compatible registry, over real HTTP.

``manage.py discovery_server`` runs as a real process; the misbehaving stub is a real
HTTP server in a thread of this process.
"""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
import requests

from discovery.client import DiscoveryClient, DiscoveryError
from tests.support.discovery_servers import DiscoveryServerProcess
from tests.support.discovery_stub import CANNED, LEAKY_BODY, DiscoveryStub

CHAT = ("chat-service", "1.0.0")


@pytest.fixture(scope="module")
def registry():
    server = DiscoveryServerProcess().start()
    yield server
    server.stop()


@pytest.fixture
def client(registry):
    client = DiscoveryClient(registry.url + "/", timeout=2)
    yield client
    client.close()
    # Leave the shared registry empty for the next test.
    for name, versions in requests.get(registry.url + "/services", timeout=5).json().items():
        for version, instances in versions.items():
            for instance in instances:
                registry.unregister(name, version, instance["url"])


def test_register_then_heartbeat_then_discover(registry, client):
    assert client.register(*CHAT, "http://c1.test") is True  # 201: new instance
    assert client.register(*CHAT, "http://c1.test") is False  # 200: heartbeat
    assert client.register(*CHAT, "http://c2.test/") is True
    running = client.discover_all(*CHAT)
    assert sorted(i.url for i in running) == ["http://c1.test", "http://c2.test"]
    assert all(i.status == "RUNNING" and i.service_name == "chat-service" for i in running)
    assert all(isinstance(i.timestamp, int) for i in running)
    # The registry's other reads, which the service does not use: URLs as registered.
    one = requests.get(registry.url + "/discover/chat-service/1.0.0", timeout=5).json()
    assert one["url"] in ("http://c1.test", "http://c2.test/")
    listed = requests.get(registry.url + "/services", timeout=5).json()["chat-service"]["1.0.0"]
    assert {i["url"] for i in listed} == {"http://c1.test", "http://c2.test/"}


def test_unregister_and_none_running(client):
    client.register(*CHAT, "http://c1.test")
    assert client.unregister(*CHAT, "http://c1.test") is True
    assert client.unregister(*CHAT, "http://c1.test") is False  # 404: not known
    assert client.discover_all(*CHAT) == []  # the registry's JSON 404 means "none"
    assert client.discover_all("never-registered", "9.9.9") == []


def test_unregister_body_carries_url_and_paths_have_no_double_slash(registry, client):
    earlier = len(registry.requests_seen())
    for base in (registry.url, registry.url + "/", registry.url + "//"):
        other = DiscoveryClient(base, timeout=2)
        other.register("matchmaking-server", "1.0.0", "http://mm.test")
        other.discover_all(*CHAT)
        other.unregister("matchmaking-server", "1.0.0", "http://mm.test")
        other.close()
    seen = registry.requests_seen()[earlier:]
    assert len(seen) == 9 and all("//" not in entry["path"] for entry in seen)
    unregisters = [entry for entry in seen if entry["method"] == "DELETE"]
    assert unregisters
    for entry in unregisters:
        assert entry["path"] == "/unregister" and entry["status"] == 200
        assert entry["body"] == {
            "serviceName": "matchmaking-server",
            "version": "1.0.0",
            "url": "http://mm.test",
        }


def test_url_joining_is_safe():
    for base in ("http://d.test", "http://d.test/", "http://d.test///"):
        client = DiscoveryClient(base)
        assert client.url_for("register") == "http://d.test/register"
        assert client.url_for("discover", "a/b", "1 0", "all") == (
            "http://d.test/discover/a%2Fb/1%200/all"
        )
    assert DiscoveryClient("http://d.test/prefix/").url_for("services") == (
        "http://d.test/prefix/services"
    )
    with pytest.raises(ValueError):
        DiscoveryClient("d.test")


def test_registry_rejects_missing_fields(registry):
    full = {"serviceName": "chat-service", "version": "1.0.0", "url": "http://x.test"}
    for field in full:
        partial = {k: v for k, v in full.items() if k != field}
        for method in ("POST", "DELETE"):
            path = "/register" if method == "POST" else "/unregister"
            answer = requests.request(method, registry.url + path, json=partial, timeout=5)
            assert answer.status_code == 400, (method, field)
            assert "required" in answer.json()["message"]
    for body in (b"{not json", b"[1, 2]", b""):
        answer = requests.post(
            registry.url + "/register",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert answer.status_code == 400
    assert requests.delete(registry.url + "/unregister", json=full, timeout=5).status_code == 404
    assert requests.post(registry.url + "//register", json=full, timeout=5).status_code == 404
    assert requests.get(registry.url + "/discover/chat-service", timeout=5).status_code == 404


def test_silent_instances_go_down_and_come_back():
    server = DiscoveryServerProcess(down_after=1).start()
    client = DiscoveryClient(server.url, timeout=2)
    try:
        assert client.register(*CHAT, "http://c1.test") is True
        assert [i.url for i in client.discover_all(*CHAT)] == ["http://c1.test"]
        time.sleep(1.3)
        assert client.discover_all(*CHAT) == []
        assert (
            requests.get(server.url + "/discover/chat-service/1.0.0", timeout=5).status_code == 404
        )
        [listed] = requests.get(server.url + "/services", timeout=5).json()["chat-service"]["1.0.0"]
        assert listed["status"] == "DOWN"  # still listed, like the real registry
        assert client.register(*CHAT, "http://c1.test") is False  # a heartbeat revives it
        assert [i.status for i in client.discover_all(*CHAT)] == ["RUNNING"]
    finally:
        client.close()
        assert server.stop() == 0


@pytest.fixture
def stub():
    server = DiscoveryStub(sleep=1.5).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "mode", [*sorted(set(CANNED) - {"404-json"}), "timeout", "dribble", "close", "redirect"]
)
def test_every_misbehaviour_is_a_discovery_error(stub, mode):
    stub.set_mode(mode)
    client = DiscoveryClient(stub.url, timeout=0.3)
    calls = [
        lambda: client.register("m", "1", "http://m.test"),
        lambda: client.unregister("m", "1", "http://m.test"),
        lambda: client.discover_all(*CHAT),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(DiscoveryError):
            call()
        assert time.monotonic() - started < 5  # bounded even when the server dribbles
    client.close()


def test_registry_404_json_means_none_but_html_404_does_not(stub):
    client = DiscoveryClient(stub.url, timeout=1)
    stub.set_mode("404-json")
    assert client.discover_all(*CHAT) == []
    assert client.unregister("m", "1", "http://m.test") is False
    stub.set_mode("404-html")
    with pytest.raises(DiscoveryError):
        client.discover_all(*CHAT)
    client.close()


def test_unreachable_registry_is_a_discovery_error():
    with pytest.raises(DiscoveryError, match="connection failed"):
        DiscoveryClient("http://127.0.0.1:9/", timeout=1).register("m", "1", "http://m.test")


def test_redirects_are_not_followed(stub, registry):
    stub.set_mode("redirect")
    stub.redirect_to = registry.url  # a registry that would answer, if the client went
    before = len(registry.requests_seen())
    client = DiscoveryClient(stub.url, timeout=2)
    for call in (
        lambda: client.register("m", "1", "http://m.test"),
        lambda: client.unregister("m", "1", "http://m.test"),
    ):
        with pytest.raises(DiscoveryError, match=r"HTTP 307 Temporary Redirect: a redirect"):
            call()
    client.close()
    assert len(stub.paths()) == 2
    assert len(registry.requests_seen()) == before  # never reached


@pytest.mark.parametrize("mode", sorted(set(CANNED) - {"404-json"}))
def test_errors_give_the_status_and_a_reason_never_the_body(stub, mode):
    stub.set_mode(mode)
    status, _, body = CANNED[mode]
    client = DiscoveryClient(stub.url, timeout=2)
    for call in (
        lambda: client.register("m", "1", "http://m.test"),
        lambda: client.unregister("m", "1", "http://m.test"),
    ):
        with pytest.raises(DiscoveryError) as caught:
            call()
        message = str(caught.value)
        assert f"HTTP {status} " in message or "answer larger than" in message
        assert "hunter2" not in message and "10.0.0.5" not in message
        # No run of the body's text (beyond the standard status phrase) is repeated.
        text = body[:2000].decode(errors="replace")
        ours = message.replace(HTTPStatus(status).phrase, "")
        assert not any(text[i : i + 12] in ours for i in range(len(text) - 12)), message
    client.close()
    assert b"hunter2" in LEAKY_BODY  # the marker the leaky modes send

"""/healthz and /readyz on real Daphne processes: what each one checks, and what not."""

from __future__ import annotations

import redis
import requests

from animochat.redis_client import LuaScript
from matchmaking import store as matchmaking_store
from sessions_app import store as sessions_store
from tests.support.discovery_servers import wait_for

ALL_READY = {"redis": "ready", "scripts": "ready", "pubsub": "ready"}


def readiness(server) -> requests.Response:
    return requests.get(server.url + "/readyz", timeout=10)


def ready(server) -> bool:
    return readiness(server).status_code == 200


def test_probes_of_a_process_no_stream_has_used(daphne_factory):
    server = daphne_factory()
    alive = requests.get(server.url + "/healthz", timeout=5)
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    assert alive.headers["content-type"] == "application/json"
    # No stream has started the pub/sub listener: the probe starts it and reports it.
    assert wait_for(lambda: ready(server), timeout=30)
    assert readiness(server).json() == {"status": "ready", "checks": ALL_READY}


def test_readiness_follows_its_redis_down_and_back(daphne_factory, private_redis):
    server = daphne_factory(REDIS_URL=private_redis.url + "/15")
    assert wait_for(lambda: ready(server), timeout=30)

    private_redis.process.kill()
    assert wait_for(lambda: readiness(server).status_code == 503, timeout=30)
    body = readiness(server).json()
    assert body["code"] == "NOT_READY"
    assert body["checks"] == {"redis": "down", "scripts": "unknown", "pubsub": "down"}
    assert "Redis does not answer" in body["message"]
    assert "pub/sub listener" in body["message"]
    # Liveness makes no Redis call: the process itself is fine.
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200

    private_redis.restart()  # an empty Redis: no scripts loaded
    assert wait_for(lambda: ready(server), timeout=60)
    assert readiness(server).json()["checks"] == ALL_READY
    # Ready means the scripts are in Redis: the probe loaded them.
    scripts = [
        value
        for module in (matchmaking_store, sessions_store)
        for value in vars(module).values()
        if isinstance(value, LuaScript)
    ]
    client = redis.Redis.from_url(private_redis.url)
    try:
        assert len(scripts) >= 8 and all(client.script_exists(*(s.sha for s in scripts)))
    finally:
        client.close()


def test_scripts_refused_by_redis_are_not_ready(daphne_factory, private_redis):
    """A Redis that refuses scripting (an ACL, as some managed ones do) cannot match."""
    admin = redis.Redis.from_url(private_redis.url)
    try:
        admin.execute_command(
            "ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "&*", "+@all", "-@scripting"
        )
    finally:
        admin.close()
    url = private_redis.url.replace("redis://", "redis://noscripts:pw@") + "/15"
    server = daphne_factory(REDIS_URL=url)
    response = readiness(server)
    assert response.status_code == 503, response.text
    assert response.json()["checks"] == {"redis": "ready", "scripts": "down", "pubsub": "ready"}
    assert response.json()["message"] == (
        "Not ready: the Lua scripts could not be loaded into Redis."
    )


def test_probes_are_never_limited_nor_refused_by_host(daphne_factory):
    server = daphne_factory(RATE_LIMIT_PER_MINUTE="1")
    for _ in range(5):
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
        assert readiness(server).status_code == 200
    # The limit is on: a limited endpoint refuses its second request.
    cancel = [
        requests.post(server.url + "/cancel_matchmaking", json={"userId": "u"}, timeout=5)
        for _ in range(2)
    ]
    assert [r.status_code for r in cancel] == [200, 429]
    # Health checkers often send the machine's address as Host: answered all the same.
    foreign = {"Host": "10.1.2.3:3000"}
    assert requests.get(server.url + "/status", headers=foreign, timeout=5).status_code == 400
    for path in ("/healthz", "/readyz"):
        assert requests.get(server.url + path, headers=foreign, timeout=5).status_code == 200


def test_probes_answer_get_only(daphne):
    for path in ("/healthz", "/readyz"):
        response = requests.post(daphne.url + path, timeout=5)
        assert response.status_code == 405 and response.headers["Allow"] == "GET"
        assert response.json()["code"] == "METHOD_NOT_ALLOWED"

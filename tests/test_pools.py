"""``pool=`` on the stream, and the session endpoints finding a session in any pool
(one Redis; on Redis Cluster, see tests/test_cluster.py)."""

from __future__ import annotations

import pytest
import requests

from animochat.openapi import openapi_document
from tests.support.servers import DaphneProcess
from tests.support.sse_client import open_stream


@pytest.fixture(scope="module")
def pooled():
    server = DaphneProcess({"MATCH_POOLS": "campus,city"}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("pool", ["elsewhere", "CAMPUS", "campus,city", " campus"])
async def test_a_pool_not_configured_is_refused(pooled, pool):
    stream = await open_stream(pooled.url, params={"userId": "u", "pool": pool})
    assert stream.status == 400
    assert await stream.next_event() == {
        "state": "ERROR",
        "code": "INVALID_POOL",
        "message": "pool must be one of: campus, city.",
    }


async def test_streams_naming_no_pool_share_the_first(pooled, clean_redis):
    ann = await open_stream(pooled.url, params={"userId": "ann", "interests": "A"})
    assert (await ann.next_event())["state"] == "WAITING"
    bob = await open_stream(pooled.url, params={"userId": "bob", "interests": "A", "pool": "city"})
    assert (await bob.next_event())["state"] == "WAITING"  # another pool: not Ann
    cat = await open_stream(
        pooled.url, params={"userId": "cat", "interests": "A", "pool": "campus"}
    )
    assert (await cat.next_event())["matchedUserId"] == "ann"
    assert clean_redis.zcard("{p:city}queue:waiting") == 1
    await bob.close()


async def test_session_endpoints_find_a_session_made_in_any_pool(pooled, clean_redis):
    ann = await open_stream(pooled.url, params={"userId": "ann", "interests": "B", "pool": "city"})
    assert (await ann.next_event())["state"] == "WAITING"
    bob = await open_stream(pooled.url, params={"userId": "bob", "interests": "B", "pool": "city"})
    chat_id = (await bob.next_event())["chatId"]
    assert clean_redis.exists(f"{{p:city}}chat_session:{chat_id}")
    session = requests.get(f"{pooled.url}/session/ann", timeout=5).json()
    assert (session["chatId"], set(session["participants"])) == (chat_id, {"ann", "bob"})
    reply = requests.post(f"{pooled.url}/session/disconnect", json={"userId": "bob"}, timeout=5)
    assert reply.status_code == 200
    assert "chatId" not in requests.get(f"{pooled.url}/session/ann", timeout=5).json()
    gone = requests.post(f"{pooled.url}/session/disconnect", json={"userId": "ann"}, timeout=5)
    assert gone.status_code == 404


def test_openapi_names_the_pools_of_the_stream(settings):
    settings.MATCH_POOLS = ("campus", "city")
    [pool] = [
        parameter
        for parameter in openapi_document()["paths"]["/matchmaking"]["get"]["parameters"]
        if parameter["name"] == "pool"
    ]
    assert pool["schema"]["enum"] == ["campus", "city"]

"""Match pools on a real Redis Cluster: three primaries, two Daphne processes.

The cluster is started by the test run (tests/support/redis_cluster.py); the servers
use it through REDIS_CLUSTER_NODES, with three pools whose hash tags fall on the three
primaries' slot ranges as ``redis-cli --cluster create`` assigns them.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import requests

from tests.support.burst import burst, check_burst
from tests.support.redis_cluster import RedisCluster
from tests.support.servers import DaphneProcess
from tests.support.sse_client import open_stream

POOLS = ("na", "eu", "us")  # slots 5299, 6908 and 14665: one per primary of three
INTERESTS = [f"T{n}" for n in range(15)]


@pytest.fixture(scope="module")
def cluster():
    started = RedisCluster().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster_servers(cluster):
    env = {"REDIS_CLUSTER_NODES": cluster.nodes_env, "MATCH_POOLS": ",".join(POOLS)}
    servers = [DaphneProcess(env).start(timeout=60) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def clean_cluster(cluster, cluster_servers):
    cluster.flush()
    yield cluster


def primaries_holding(cluster: RedisCluster, pool: str) -> set[int]:
    """The ports of the primaries that hold any key of ``pool``."""
    holding = set()
    for port in cluster.ports:
        client = cluster.node_client(port)
        try:
            if next(client.scan_iter(match="{p:" + pool + "}*", count=1000), None):
                holding.add(port)
        finally:
            client.close()
    return holding


async def eventually(condition, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the deadline"
        await asyncio.sleep(0.2)


def users_in_queue(server: DaphneProcess) -> int:
    return requests.get(f"{server.url}/status", timeout=5).json()["metrics"]["usersInQueue"]


def matches_counted(server: DaphneProcess) -> float:
    metrics = requests.get(f"{server.url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("animochat_matches_total{")
    )


@pytest.mark.slow
async def test_burst_over_three_pools_on_three_primaries(clean_cluster, cluster_servers):
    rng = random.Random(18)
    users = {f"c{n}": rng.sample(INTERESTS, rng.randint(1, 3)) for n in range(1200)}
    pool = {user: POOLS[rng.randrange(len(POOLS))] for user in users}
    params = {u: {"interests": ",".join(users[u]), "pool": pool[u]} for u in users}

    results = await burst(cluster_servers, params, seconds=1.2)

    matched, _ = check_burst(results, users, pool)
    assert len(matched) > len(users) // 2  # most found someone: the check above had work
    # Every pool was used, each pool's keys are on exactly one primary, and the three
    # pools are spread over the cluster.
    holders = {name: primaries_holding(clean_cluster, name) for name in POOLS}
    assert all(len(ports) == 1 for ports in holders.values()), holders
    assert len(set().union(*holders.values())) >= 2, holders
    # A session is found by user id through either process, whatever its pool.
    for user in rng.sample(sorted(matched), 60):
        server = cluster_servers[rng.randrange(2)]
        session = requests.get(f"{server.url}/session/{user}", timeout=5).json()
        assert session["chatId"] == matched[user]["chatId"]
        assert set(session["participants"]) == {user, matched[user]["matchedUserId"]}
    # The counters of every pool, added up (written just after each match's reply).
    await eventually(lambda: matches_counted(cluster_servers[0]) == len(matched) // 2)
    # Every stream was closed: no place is left in any pool.
    await eventually(lambda: users_in_queue(cluster_servers[1]) == 0)


async def test_a_waiting_partner_on_the_other_process_is_told(clean_cluster, cluster_servers):
    # The notification crosses processes through the waiting process's inbox, a sharded
    # channel on the primary of its slot, whichever primary holds the pool.
    first, second = cluster_servers
    for pool in POOLS:
        ann = await open_stream(
            first.url, params={"userId": f"ann-{pool}", "interests": "X", "pool": pool}
        )
        assert (await ann.next_event())["state"] == "WAITING"
        bob = await open_stream(
            second.url, params={"userId": f"bob-{pool}", "interests": "X", "pool": pool}
        )
        assert (await bob.next_event())["matchedUserId"] == f"ann-{pool}"
        assert (await ann.next_change(timeout=10))["matchedUserId"] == f"bob-{pool}"


async def test_users_of_different_pools_never_meet(clean_cluster, cluster_servers):
    streams = [
        await open_stream(
            cluster_servers[n % 2].url,
            params={"userId": f"p-{pool}", "interests": "SAME", "pool": pool},
        )
        for n, pool in enumerate(POOLS)
    ]
    for stream in streams:
        assert (await stream.next_event())["state"] == "WAITING"
    assert users_in_queue(cluster_servers[0]) == len(POOLS)
    for stream in streams:
        await stream.close()


async def test_disconnect_ends_a_session_made_in_any_pool(clean_cluster, cluster_servers):
    server = cluster_servers[0]
    ann = await open_stream(server.url, params={"userId": "ann", "interests": "Y", "pool": "us"})
    assert (await ann.next_event())["state"] == "WAITING"
    bob = await open_stream(server.url, params={"userId": "bob", "interests": "Y", "pool": "us"})
    chat_id = (await bob.next_event())["chatId"]
    assert requests.get(f"{server.url}/session/ann", timeout=5).json()["chatId"] == chat_id
    reply = requests.post(f"{server.url}/session/disconnect", json={"userId": "ann"}, timeout=5)
    assert reply.status_code == 200
    session = requests.get(f"{server.url}/session/bob", timeout=5).json()
    assert "chatId" not in session
    await asyncio.gather(ann.close(), bob.close())


def inbox_subscribers(cluster: RedisCluster) -> dict[str, tuple[int, str]]:
    """Each process's inbox subscription: inbox name -> (port of its node, client id)."""
    found = {}
    for port in cluster.ports:
        client = cluster.node_client(port)
        try:
            for entry in client.client_list():
                if entry.get("name", "").startswith("animochat.") and entry.get("ssub") == "1":
                    found[entry["name"]] = (port, entry["id"])
        finally:
            client.close()
    return found


async def test_an_inbox_resubscribes_on_its_slots_primary_after_losing_it(
    clean_cluster, cluster_servers
):
    for server in cluster_servers:  # the readiness probe starts each process's inbox
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    before = inbox_subscribers(clean_cluster)
    assert len(before) == 2
    for name, (port, _) in before.items():
        assert port == clean_cluster.primary_of(name)  # the primary serving its slot
    ann = await open_stream(
        cluster_servers[0].url, params={"userId": "ann", "interests": "Z", "pool": "eu"}
    )
    assert (await ann.next_event())["state"] == "WAITING"
    for port, client_id in before.values():
        killer = clean_cluster.node_client(port)
        try:
            killer.client_kill_filter(_id=client_id)
        finally:
            killer.close()

    def resubscribed() -> bool:
        after = inbox_subscribers(clean_cluster)
        return set(after) == set(before) and all(
            after[name][0] == before[name][0] and after[name][1] != before[name][1]
            for name in before
        )

    await eventually(resubscribed)
    bob = await open_stream(
        cluster_servers[1].url, params={"userId": "bob", "interests": "Z", "pool": "eu"}
    )
    assert (await bob.next_event())["matchedUserId"] == "ann"
    assert (await ann.next_change(timeout=10))["matchedUserId"] == "bob"
    logged = [json.loads(line) for line in cluster_servers[0].log().splitlines() if line[:1] == "{"]
    assert "pubsub_restored" in [event["event"] for event in logged]

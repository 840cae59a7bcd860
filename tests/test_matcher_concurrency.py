"""The matcher under real concurrency: 2,000 users, 4 OS processes, one Redis."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time

import pytest
from django.conf import settings

from matchmaking.store import LEAVE_QUEUES, user_keys
from tests.support.servers import BASE_DIR

INTERESTS = [f"I{n}" for n in range(12)]
USERS = 2000
PROCESSES = 4


def make_users(seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {"id": f"u{n}", "interests": rng.sample(INTERESTS, rng.randint(1, 3))} for n in range(USERS)
    ]


def run_workers(tmp_path, users: list[dict], env: dict[str, str]) -> list[dict]:
    start_at = time.time() + 3.0  # every process is imported and waiting by then
    procs, outputs = [], []
    for n in range(PROCESSES):
        spec, out = tmp_path / f"spec{n}.json", tmp_path / f"out{n}.json"
        spec.write_text(json.dumps({"users": users[n::PROCESSES], "start_at": start_at}))
        outputs.append(out)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.support.matcher_worker", str(spec), str(out)],
                cwd=BASE_DIR,
                env={**os.environ, "TEST_REDIS_URL": settings.REDIS_URL, **env},
            )
        )
    for proc in procs:
        assert proc.wait(120) == 0
    return list(itertools.chain.from_iterable(json.loads(o.read_text()) for o in outputs))


def check_consistency(
    users: list[dict], results: list[dict], redis, kept_apart: set[frozenset] = frozenset()
) -> dict:
    """Every match symmetric and stored, nobody twice, and nobody left who could match.

    ``kept_apart`` holds pairs the rematch cooldown forbids; users with
    ``fallbackAfter == 0`` and random-chat users (no interests) may also be paired
    with anyone else who is one of them.
    """
    interests = {u["id"]: set(u["interests"]) for u in users}
    anyone = {
        u["id"] for u in users if u.get("fallbackAfter") == 0 or u["interests"] == ["GLOBAL_CHAT"]
    }
    by_user = {r["user"]: r for r in results}
    assert len(by_user) == len(users) == len(results)

    paired: dict[str, str] = {}
    for r in results:
        if r["state"] != "MATCHED":
            assert r["state"] == "WAITING"
            continue
        user, partner = r["user"], r["partner"]
        assert user != partner
        # The partner was waiting: its own call returned WAITING, and it is paired once.
        assert by_user[partner]["state"] == "WAITING"
        for someone in (user, partner):
            assert someone not in paired, f"{someone} is in two sessions"
        paired[user], paired[partner] = partner, user
        assert frozenset((user, partner)) not in kept_apart
        shared = interests[user] & interests[partner]
        if r["fallback"]:
            assert user in anyone and partner in anyone and r["interest"] == ""
        else:
            assert shared and set(r["interest"].split(",")) == shared
        session = json.loads(redis.get(f"chat_session:{r['chatId']}"))
        assert set(session["participants"]) == {user, partner}
        assert redis.get(f"user_session:{user}").decode() == r["chatId"]
        assert redis.get(f"user_session:{partner}").decode() == r["chatId"]

    waiting = {u for u in interests if u not in paired}
    assert {m.decode() for m in redis.zrange("queue:waiting", 0, -1)} == waiting
    # Maximality: nobody left waiting could have been matched with anyone else waiting.
    for a, b in itertools.combinations(sorted(waiting), 2):
        if frozenset((a, b)) in kept_apart:
            continue
        assert not interests[a] & interests[b], f"{a} and {b} wait with a shared interest"
        assert not (a in anyone and b in anyone), f"{a} and {b} both wait for anyone"
    return {
        "pairs": len(paired) // 2,
        "waiting": len(waiting),
        "matched": {frozenset((r["user"], r["partner"])) for r in results if r["partner"]},
    }


@pytest.mark.slow
def test_concurrent_burst_from_four_processes_is_consistent(tmp_path, clean_redis):
    users = make_users(seed=7)
    results = run_workers(tmp_path, users, {"LEASE_SECONDS": "120"})
    summary = check_consistency(users, results, clean_redis)
    assert summary["pairs"] >= 900


@pytest.mark.slow
def test_burst_with_cooldown_and_fallback_is_consistent(tmp_path, clean_redis):
    """Two rounds of the same users: round two may not re-pair round one's pairs."""
    users = make_users(seed=8)
    for user in users[::3]:
        user["fallbackAfter"] = 0
    for user in users[1::7]:
        user["interests"] = ["GLOBAL_CHAT"]
    env = {"LEASE_SECONDS": "120", "REMATCH_COOLDOWN": "600"}
    first = check_consistency(users, run_workers(tmp_path, users, env), clean_redis)
    assert first["pairs"] >= 900
    for user in clean_redis.zrange("queue:waiting", 0, -1):  # their streams close
        LEAVE_QUEUES.call_sync(clean_redis, user, "", keys=user_keys(user.decode()))
    second = check_consistency(
        users, run_workers(tmp_path, users, env), clean_redis, kept_apart=first["matched"]
    )
    assert second["pairs"] >= 800

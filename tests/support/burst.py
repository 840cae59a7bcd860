"""A burst of users arriving at once over several servers, and the checks every burst
must pass: each match consistent on both sides, every pair sharing an interest, and
nobody left waiting who could have been matched."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from tests.support.sse_client import open_stream


async def wait_for_match(stream) -> dict | None:
    """First event after WAITING (None if the user is still waiting at the deadline).

    The deadline is generous: on a busy machine a partner's notification can take
    seconds (it is sent once the arriving side has confirmed the match), and a user
    who gave up early would look like one half of an inconsistent pair.
    """
    try:
        return await stream.next_change(timeout=20.0)
    except TimeoutError:
        return None


async def burst(
    servers: Sequence, params: dict[str, dict[str, str]], seconds: float = 1.0
) -> dict[str, list[dict]]:
    """Every user of ``params`` (user -> query parameters beside ``userId``) opens a
    stream, spread over ``seconds`` and over ``servers`` in turn; each user's events
    (the first, then the match if one came)."""

    async def arrive(n: int, user: str) -> tuple[str, list[dict]]:
        await asyncio.sleep(n * seconds / len(params))
        stream = await open_stream(
            servers[n % len(servers)].url, params={"userId": user, **params[user]}
        )
        first = await stream.next_event(timeout=10)
        events = [first]
        if first["state"] == "WAITING":
            later = await wait_for_match(stream)
            if later is not None:
                events.append(later)
        await stream.close()
        return user, events

    return dict(await asyncio.gather(*(arrive(n, u) for n, u in enumerate(params))))


def check_burst(
    results: dict[str, list[dict]],
    interests: dict[str, list[str]],
    pool: dict[str, str] | None = None,
) -> tuple[dict[str, dict], set[str]]:
    """Assert the burst's outcome; returns the matched users' MATCHED events and the
    users left waiting. With ``pool`` (user -> pool), users meet only within a pool."""
    pool = pool or dict.fromkeys(results, "")
    matched = {u: ev[-1] for u, ev in results.items() if ev[-1]["state"] == "MATCHED"}
    waiting = {u for u, ev in results.items() if ev[-1]["state"] == "WAITING"}
    assert len(matched) + len(waiting) == len(results)
    inconsistent = []
    for user, event in matched.items():
        partner = event["matchedUserId"]
        assert partner != user, f"{user} was matched with themself"
        other = matched.get(partner)
        if other is None or other["matchedUserId"] != user or other["chatId"] != event["chatId"]:
            inconsistent.append(user)
            continue
        assert pool[user] == pool[partner], f"{user} and {partner} met across pools"
        assert other["chatServerUrl"] == event["chatServerUrl"]
        shared = set(interests[user]) & set(interests[partner])
        assert shared, f"{user} and {partner} share no interest"
        assert set(event["interest"].split(",")) == shared
    assert inconsistent == []
    # Each chat id names exactly one pair: nobody was matched twice.
    assert len({e["chatId"] for e in matched.values()}) == len(matched) // 2
    for a, b in itertools.combinations(sorted(waiting), 2):
        if pool[a] == pool[b]:
            assert not set(interests[a]) & set(interests[b]), f"{a} and {b} were left waiting"
    return matched, waiting

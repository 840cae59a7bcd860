"""confirm_match.lua and undo_match.lua: a match stands once confirmed, and a call
whose reply was lost is undone, the same way however often, before or after it ran."""

from __future__ import annotations

import json

from animochat.redis_client import background_done
from matchmaking import services, store
from tests.unit.matching import LEASE_MS, join, session, snapshot, waiting


async def undo(chat_id: str, user: str, token: str | None = None) -> list:
    return await store.undo_match(chat_id, user, token or f"t-{user}", LEASE_MS)


async def test_a_match_is_counted_when_confirmed_and_only_once(clean_redis, clock):
    await join("a", "X", "Y")
    clock.advance(0.3)
    result = await join("b", "X", "Y", chat_id="c1")
    assert clean_redis.exists("attempt:c1")  # pending
    assert await store.confirm_match("c1") == store.CONFIRMED_NOW
    assert await store.confirm_match("c1") == store.CONFIRMED_BEFORE
    assert not clean_redis.exists("attempt:c1")
    assert session(clean_redis, result.chat_id)["participants"] == ["a", "b"]
    # The counters are the services' bookkeeping, written after the confirmation: only
    # the call that confirmed the match counts it.
    assert not clean_redis.exists("metrics:matches", "metrics:time_to_match")
    await join("c", "X", "Y")
    clock.advance(0.3)
    result = await join("d", "X", "Y", chat_id="c2")
    for _ in range(2):
        assert (await services.confirm_match(result, "d", "t-d")).confirmed
    await background_done()
    matches, time_to_match, _ = await store.match_metrics()
    assert matches == {"2:0": "1"}
    assert time_to_match == {"le:0.5": "1", "sum_ms": "300"}


async def test_a_long_wait_is_counted_past_the_last_bucket(clock):
    await join("a", lease_ms=700_000)
    clock.advance(601)
    result = await join("b", chat_id="c1")
    await services.confirm_match(result, "b", "t-b")
    await background_done()
    matches, time_to_match, _ = await store.match_metrics()
    assert matches == {"1:0": "1"}
    assert time_to_match == {"le:+Inf": "1", "sum_ms": "601000"}


async def test_confirming_a_call_that_queued_its_user_or_never_ran_is_harmless(clean_redis):
    await join("a", "X", chat_id="queued")
    before = snapshot(clean_redis)
    assert await store.confirm_match("queued")
    assert await store.confirm_match("unknown")
    assert snapshot(clean_redis) == before


async def test_undoing_a_pending_match_gives_the_partner_back_exactly_their_place(
    clean_redis, clock
):
    await join("a", "X", "Y", fallback_after_ms=0, cooldown_ms=60_000, chat_id="c0")
    clean_redis.delete("attempt:c0")  # its caller had the reply
    queued = snapshot(clean_redis)
    clock.advance(2)
    await join("b", "X", chat_id="c1", cooldown_ms=60_000)
    assert (await undo("c1", "b")) == ["UNDONE"]
    # The same enqueue time in the same queues, and a new lease for the same stream.
    assert snapshot(clean_redis) == queued | {
        "undone:c1": ("1", 3_600_000),
        "chat_servers:rr": ("1", -1),  # the chat server's turn is not given back
    }
    assert not await store.confirm_match("c1")
    assert not clean_redis.exists("metrics:matches")


async def test_undoing_twice_changes_nothing_more(clean_redis):
    await join("a", "X")
    await join("b", "X", chat_id="c1")
    await undo("c1", "b")
    once = snapshot(clean_redis)
    assert (await undo("c1", "b")) == ["UNDONE"]
    assert (await undo("c1", "a")) == ["UNDONE"]
    assert snapshot(clean_redis) == once


async def test_an_undo_gives_no_place_back_to_a_partner_who_moved_on(clean_redis):
    await join("a", "X")
    await join("b", "X", chat_id="c1")
    await join("a", "Z", token="newer")  # a's new stream ended the pending match
    assert (await undo("c1", "b")) == ["UNDONE"]
    assert list(waiting(clean_redis)) == ["a"]
    assert clean_redis.smembers("user_interests:a") == {"Z"}
    assert clean_redis.get("lease:a") == "newer"


async def test_an_undo_after_the_confirmation_leaves_the_match_standing(clean_redis):
    await join("a", "X")
    await join("b", "X", chat_id="c1")
    await store.confirm_match("c1")
    before = snapshot(clean_redis)
    state, raw = await undo("c1", "b")
    assert state == "MATCHED" and json.loads(raw)["chatId"] == "c1"
    assert snapshot(clean_redis) == before


async def test_an_undo_before_the_call_runs_makes_the_call_do_nothing(clean_redis):
    await join("a", "X")
    assert (await undo("c1", "b")) == ["UNDONE"]
    assert clean_redis.get("undone:c1") == "1"
    assert (await join("b", "X", chat_id="c1")).state == "UNDONE"
    assert list(waiting(clean_redis)) == ["a"]


async def test_undoing_a_call_that_queued_its_user_takes_them_out(clean_redis):
    await join("a", "X", chat_id="c1")
    assert (await undo("c1", "a")) == ["UNDONE"]
    assert waiting(clean_redis) == {}
    assert not clean_redis.exists("lease:a", "user_interests:a", "attempt:c1")


async def test_undoing_a_queueing_call_leaves_a_newer_stream_of_the_user_queued(clean_redis):
    await join("a", "X", chat_id="c1")
    await join("a", "X", token="newer")
    assert (await undo("c1", "a")) == ["UNDONE"]
    assert list(waiting(clean_redis)) == ["a"]


async def test_undoing_a_queueing_call_also_undoes_the_pending_match_made_since(
    clean_redis,
):
    await join("a", "X", chat_id="c1")
    await join("b", "X", chat_id="c2")  # a was matched before the first reply arrived
    assert (await undo("c1", "a")) == ["UNDONE"]
    assert not await store.confirm_match("c2")  # b is told to search again
    assert waiting(clean_redis) == {}  # and a, who gave up, gets no place back
    assert session(clean_redis, "c2") is None


async def test_undoing_a_queueing_call_leaves_a_confirmed_match_made_since(clean_redis):
    await join("a", "X", chat_id="c1")
    await join("b", "X", chat_id="c2")
    await store.confirm_match("c2")
    state, raw = await undo("c1", "a")
    assert state == "MATCHED" and json.loads(raw)["participants"] == ["a", "b"]

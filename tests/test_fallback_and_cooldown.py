"""Beyond interests: fallback to anyone, no instant re-match, live queue information."""

from __future__ import annotations

import asyncio
import time

from animochat.redis_client import background_done
from matchmaking import selectors, services
from tests.support.sse_client import open_stream


async def join(user: str, *interests: str, fallback_after: float | None = None):
    return await services.enqueue_or_match(user, list(interests), "t-" + user, fallback_after)


async def test_fallback_zero_matches_anyone_past_their_fallback(aredis):
    assert (await join("a", "CHESS", fallback_after=0)).state == "WAITING"
    assert (await join("b", "OPERA")).state == "WAITING"  # no fallback: stays apart
    result = await join("c", "KNITTING", fallback_after=0)
    assert result.state == "MATCHED" and result.partner == "a"
    assert result.fallback and result.interest == ""
    assert await aredis.zcard("queue:fallback") == 0
    assert await aredis.zrange("queue:waiting", 0, -1) == ["b"]


async def test_interest_match_beats_fallback(aredis):
    await join("any", "X", fallback_after=0)
    await join("same", "Y")
    result = await join("c", "Y", fallback_after=0)
    assert result.partner == "same" and not result.fallback


async def test_fallback_keeps_interest_places(aredis):
    await join("old", "A", fallback_after=0)
    assert (await join("x", "A")).partner == "old"  # still matchable by interest
    assert await aredis.zcard("queue:fallback") == 0
    await join("late", "B", fallback_after=30)  # not past its fallback yet
    assert (await join("y", "C", fallback_after=0)).state == "WAITING"
    assert (await services.enter_fallback("late", "t-late")).partner == "y"


async def test_enter_fallback_later(aredis):
    await join("a", "P", fallback_after=30)
    await join("b", "Q", fallback_after=30)
    assert (await services.enter_fallback("a", "t-a")).state == "WAITING"
    assert (await services.enter_fallback("a", "wrong-token")).state == "GONE"
    result = await services.enter_fallback("b", "t-b")
    assert result.state == "MATCHED" and result.partner == "a" and result.fallback
    assert result.partner_token == "t-a"
    assert await aredis.zcard("queue:waiting") == 0


async def test_no_instant_rematch_while_others_wait(aredis, settings):
    settings.REMATCH_COOLDOWN = 60
    await join("a", "X")
    await join("b", "X")  # a and b chat, then both look again
    await join("a", "X")
    await join("c", "X")  # c takes a
    await join("a", "X")
    result = await join("b", "X")
    assert result.state == "WAITING"  # a and b are the only two: they wait
    result = await join("d", "X")
    assert result.partner == "a"  # the oldest compatible waiter, not blocked for d
    assert (await join("e", "X")).partner == "b"


async def test_cooldown_ends(aredis, settings):
    settings.REMATCH_COOLDOWN = 1
    await join("a", "X")
    await join("b", "X")
    await join("a", "X")
    assert (await join("b", "X")).state == "WAITING"
    await asyncio.sleep(1.1)
    await services.leave_queues("b")
    assert (await join("b", "X")).partner == "a"


async def test_queue_info(aredis, settings, monkeypatch):
    monkeypatch.setattr(selectors, "POPULARITY_CACHE_SECONDS", 0)
    settings.REMATCH_COOLDOWN = 60
    first = await join("a", "RARE")
    assert (first.waiting, first.estimated_wait_seconds) == (0, None)
    await join("b", "RARE")  # a and b chat; then both wait again, kept apart
    await join("a", "RARE", "OTHER")
    info = await join("b", "RARE")
    assert info.waiting == 1  # a waits in RARE, but the cooldown keeps them apart
    await background_done()
    # Within the 600 s window RARE was asked for 4 times, once of them by b's stream:
    # three arrivals per 600 s.
    renewed = await services.renew_lease("b", "t-b", ["RARE"])
    assert renewed.estimated_wait_seconds == 200
    assert (await join("c", "RARE")).partner == "a"
    await background_done()
    renewed = await services.renew_lease("b", "t-b", ["RARE"])
    assert renewed.state == "WAITING" and renewed.waiting == 0
    assert renewed.estimated_wait_seconds == 150  # and c's: one per 150 s
    assert (await services.renew_lease("b", "t-b")).estimated_wait_seconds is None
    assert (await services.renew_lease("a", "t-a")).state == "GONE"


async def test_stream_fallback_after(daphne):
    a = await open_stream(
        daphne.url, params={"userId": "fa", "interests": "ALPHA", "fallbackAfter": "0.5"}
    )
    b = await open_stream(
        daphne.url, params={"userId": "fb", "interests": "BETA", "fallbackAfter": "0.5"}
    )
    assert (await a.next_event())["state"] == "WAITING"
    assert (await b.next_event())["state"] == "WAITING"
    got_a, got_b = await a.next_change(), await b.next_change()
    assert got_a["state"] == got_b["state"] == "MATCHED"
    assert got_a["fallback"] is True and got_b["fallback"] is True
    assert got_a["interest"] == got_b["interest"] == ""
    assert got_a["chatId"] == got_b["chatId"] and got_a["matchedUserId"] == "fb"


async def test_stream_rejects_bad_fallback_after(daphne):
    for bad in ("-1", "601", "soon", "nan", "inf"):
        stream = await open_stream(daphne.url, params={"userId": "x", "fallbackAfter": bad})
        assert stream.status == 400
        assert (await stream.next_event())["code"] == "INVALID_FALLBACK_AFTER"


async def test_stream_no_instant_rematch(daphne_factory):
    server = daphne_factory(REMATCH_COOLDOWN="60")

    async def connect(user: str):
        stream = await open_stream(server.url, params={"userId": user, "interests": "REPEAT"})
        return stream, await stream.next_event()

    a, _ = await connect("ra")
    b, matched = await connect("rb")
    assert matched["matchedUserId"] == "ra"
    await a.next_change()
    a, first = await connect("ra")  # both look again at once
    b, second = await connect("rb")
    assert first["state"] == second["state"] == "WAITING"
    assert second["waiting"] == 1  # ra waits in REPEAT, kept apart by the cooldown
    c, third = await connect("rc")
    assert third["matchedUserId"] == "ra"  # the oldest waiter not kept from rc
    assert (await a.next_change())["matchedUserId"] == "rc"
    for stream in (a, b, c):
        await stream.close()


# -- random chat: no interests means anyone will do ----------------------------------


async def test_random_chat_user_meets_a_user_past_their_fallback(aredis):
    assert (await join("i", "CHESS", fallback_after=0)).state == "WAITING"
    result = await join("r", "GLOBAL_CHAT")
    assert result.state == "MATCHED" and result.partner == "i"
    assert result.fallback and result.interest == ""
    assert await aredis.zcard("queue:waiting") == 0


async def test_waiting_random_chat_user_is_met_by_anyone_who_accepts_anyone(aredis):
    assert (await join("r", "GLOBAL_CHAT")).state == "WAITING"
    assert await aredis.zrange("queue:fallback", 0, -1) == ["r"]
    assert (await join("x", "OPERA")).state == "WAITING"  # not past its fallback: apart
    result = await join("y", "KNITTING", fallback_after=0)
    assert result.partner == "r" and result.fallback and result.interest == ""
    assert (await join("r2", "GLOBAL_CHAT")).state == "WAITING"
    later = await services.enter_fallback("x", "t-x")  # x's fallback time comes
    assert later.partner == "r2" and later.fallback and later.interest == ""


async def test_two_random_chat_users_share_global_chat(aredis):
    await join("r1", "GLOBAL_CHAT")
    result = await join("r2", "GLOBAL_CHAT")
    assert result.partner == "r1" and not result.fallback and result.interest == "GLOBAL_CHAT"


async def test_random_chat_takes_the_oldest_who_accepts_anyone(aredis, settings):
    settings.REMATCH_COOLDOWN = 60
    await join("a", "X", fallback_after=0)
    await join("b", "Y", fallback_after=0)  # a and b chat, then both wait, kept apart
    await join("a", "X", fallback_after=0)
    await join("b", "Y", fallback_after=0)
    assert await aredis.zrange("queue:fallback", 0, -1) == ["a", "b"]
    assert (await join("r", "GLOBAL_CHAT")).partner == "a"
    assert (await join("s", "GLOBAL_CHAT")).partner == "b"


async def test_default_fallback_after_lets_an_interest_user_meet_a_random_chat_user(
    daphne_factory,
):
    server = daphne_factory(DEFAULT_FALLBACK_AFTER="2")
    interest_user = await open_stream(server.url, params={"userId": "di", "interests": "ZETA"})
    assert (await interest_user.next_event())["state"] == "WAITING"
    arrived = time.monotonic()
    random_user = await open_stream(server.url, params={"userId": "dr"})
    assert (await random_user.next_event())["state"] == "WAITING"
    got_interest, got_random = await asyncio.gather(
        interest_user.next_change(timeout=15), random_user.next_change(timeout=15)
    )
    waited = time.monotonic() - arrived
    assert 1.5 <= waited < 10, waited
    assert got_interest["matchedUserId"] == "dr" and got_random["matchedUserId"] == "di"
    for event in (got_interest, got_random):
        assert event["state"] == "MATCHED" and event["fallback"] is True
        assert event["interest"] == ""


async def test_a_fallback_match_learnt_at_a_keepalive_keeps_its_flag(daphne, aredis):
    """A waiting stream whose notification was lost learns of its match from the stored
    session at its next keepalive: a fallback match still says ``fallback: true``."""
    stream = await open_stream(
        daphne.url, params={"userId": "kw", "interests": "KEEPALIVE", "fallbackAfter": "0"}
    )
    assert (await stream.next_event())["state"] == "WAITING"
    # The arriving side's call and confirmation, without the notification to "kw".
    result = await services.enqueue_or_match("kp", ["GLOBAL_CHAT"], "t-kp")
    assert result.state == services.MATCHED_STATE and result.fallback
    assert await services.confirm_match(result, "kp", "t-kp") is not None
    told = await stream.next_change(timeout=30)
    assert told == {
        "state": "MATCHED",
        "matchedUserId": "kp",
        "interest": "",
        "chatId": result.chat_id,
        "chatServerUrl": result.chat_server_url,
        "fallback": True,
    }
    assert stream.event_ids[-1] == result.chat_id

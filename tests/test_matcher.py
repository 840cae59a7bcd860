"""The atomic matcher against a real Redis: rules, fairness, leases."""

from __future__ import annotations

import asyncio

from matchmaking import selectors, services
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services


async def join(user: str, *interests: str) -> services.MatcherReply:
    return await services.enqueue_or_match(user, list(interests) or ["GLOBAL_CHAT"], "t-" + user)


async def test_first_user_waits_second_is_matched(aredis):
    assert (await join("a", "GAMING")).state == "WAITING"
    result = await join("b", "GAMING")
    assert result.state == "MATCHED" and result.partner == "a" and result.interest == "GAMING"
    assert result.chat_server_url in ("http://chat-a.test", "http://chat-b.test")
    assert result.partner_token == "t-a"
    session = await session_selectors.get_user_session("a")
    assert session == await session_selectors.get_user_session("b")
    assert session["chatId"] == result.chat_id and set(session["participants"]) == {"a", "b"}
    assert (await selectors.queue_overview()).users_in_queue == 0


async def test_chat_ids_are_unique_per_match(aredis):
    ids = set()
    for _ in range(3):
        await join("a", "X")
        ids.add((await join("b", "X")).chat_id)
    assert len(ids) == 3


async def test_fifo_across_queues(aredis):
    await join("old", "MUSIC")
    await asyncio.sleep(0.002)
    await join("new", "ANIME")
    result = await join("c", "ANIME", "MUSIC")
    assert result.partner == "old"
    assert (await join("d", "MUSIC", "ANIME")).partner == "new"


async def test_shared_interests_are_reported(aredis):
    await join("a", "X", "Y", "Z")
    result = await join("b", "Z", "W", "Y")
    assert result.interest == "Z,Y"


async def test_no_common_interest_no_match(aredis):
    await join("a", "X")
    assert (await join("b", "Y")).state == "WAITING"
    overview = await selectors.queue_overview()
    assert overview.users_in_queue == 2 and overview.by_interest == {"X": 1, "Y": 1}


async def test_global_chat_default_matches_global_chat(aredis):
    await join("a")
    assert (await join("b")).interest == "GLOBAL_CHAT"


async def test_never_matched_with_themself(aredis):
    assert (await join("a", "X")).state == "WAITING"
    assert (await join("a", "X")).state == "WAITING"
    assert (await selectors.queue_overview()).users_in_queue == 1


async def test_lapsed_lease_is_skipped_and_cleaned(aredis):
    await join("ghost", "X", "W")
    await join("live", "Y")
    await aredis.delete("lease:ghost")  # its server died: the lease ran out
    result = await join("c", "X", "Y")
    assert result.partner == "live"
    for key in ("interest:X", "interest:W", "user_interests:ghost"):
        assert not await aredis.exists(key)
    assert (await selectors.queue_overview()).users_in_queue == 0


async def test_lease_expires_by_itself(aredis, settings):
    settings.LEASE_SECONDS = 0.2
    await join("a", "X")
    await asyncio.sleep(0.4)
    assert (await join("b", "X")).state == "WAITING"


async def test_starting_again_ends_previous_session(aredis):
    await join("a", "X")
    await join("b", "X")
    assert (await join("a", "Y")).state == "WAITING"
    assert await session_selectors.get_user_session("a") is None
    assert await session_selectors.get_user_session("b") is None
    assert await session_selectors.count_active_sessions() == 0


async def test_no_chat_server_consumes_nobody(aredis, settings):
    await join("a", "X")
    settings.CHAT_SERVER_URLS = ()
    assert (await join("b", "X")).state == "NO_CHAT_SERVER"
    assert (await selectors.queue_overview()).users_in_queue == 1
    settings.CHAT_SERVER_URLS = ("http://only.test",)
    result = await join("b", "X")
    assert result.partner == "a" and result.chat_server_url == "http://only.test"


async def test_discovered_chat_servers_win_round_robin(aredis):
    await aredis.rpush("chat_servers:discovered", "http://d1", "http://d2", "http://d3")
    servers = []
    for i in range(6):
        await join(f"w{i}", "X")
        servers.append((await join(f"m{i}", "X")).chat_server_url)
    assert sorted(servers) == [
        "http://d1",
        "http://d1",
        "http://d2",
        "http://d2",
        "http://d3",
        "http://d3",
    ]


async def test_maintenance_blocks_matching(aredis, settings):
    await services.set_maintenance(True)
    assert (await join("a", "X")).state == "MAINTENANCE"
    await services.set_maintenance(False)
    assert (await join("a", "X")).state == "WAITING"
    await aredis.delete("service:maintenance")
    settings.MAINTENANCE_MODE = True  # the initial value while nobody has toggled it
    assert (await join("b", "X")).state == "MAINTENANCE"


async def test_leave_queues_respects_the_stream_token(aredis):
    await join("a", "X")
    assert await services.leave_queues("a", "someone-else") is False
    assert (await selectors.queue_overview()).users_in_queue == 1
    assert await services.leave_queues("a", "t-a") is True
    assert (await selectors.queue_overview()).users_in_queue == 0
    assert await services.leave_queues("a") is False


async def test_renew_lease_outcomes(aredis):
    await join("a", "X")
    assert (await services.renew_lease("a", "t-a")).state == services.WAITING_STATE
    assert (await services.renew_lease("a", "old")).state == services.TAKEN_STATE
    await join("b", "X")
    assert (await services.renew_lease("a", "t-a")).state == services.GONE_STATE


async def test_end_session_for_both(aredis):
    await join("a", "X")
    await join("b", "X")
    ended = await session_services.end_user_session("b")
    assert set(ended["participants"]) == {"a", "b"}
    assert await session_selectors.get_user_session("a") is None
    assert await session_services.end_user_session("a") is None


async def test_the_older_stream_to_replace_is_reported(aredis):
    assert (await join("a", "X")).replaced_token == ""
    again = await services.enqueue_or_match("a", ["X"], "second-stream")
    assert again.state == "WAITING" and again.replaced_token == "t-a"
    matched = await services.enqueue_or_match("b", ["X"], "t-b")
    assert matched.partner_token == "second-stream" and matched.replaced_token == ""


async def test_queue_overview_lists_the_largest_queues(aredis, monkeypatch, settings):
    monkeypatch.setattr(selectors, "STATUS_QUEUES", 2)
    settings.REMATCH_COOLDOWN = 60
    await join("a", "PAIR")
    await join("b", "PAIR")  # matched: kept apart, so both wait in PAIR next
    await join("a", "PAIR", "A")
    await join("b", "PAIR", "B", "C")
    overview = await selectors.queue_overview()
    assert overview.users_in_queue == 2 and overview.queue_count == 4
    assert list(overview.by_interest.items())[:1] == [("PAIR", 2)]
    assert len(overview.by_interest) == 2
    await services.leave_queues("a")
    overview = await selectors.queue_overview()
    assert overview.queue_count == 3  # A's queue is gone, PAIR's shrank
    assert list(overview.by_interest.values()) == [1, 1]
    assert (await join("c", "PAIR")).partner == "b"
    assert await aredis.zcard("queue:sizes") == 0 and await aredis.scard("queue:interests") == 0

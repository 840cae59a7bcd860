"""sessions_app/store.py (end_session.lua and the admin's reads) and discovery/store.py
(the chat-server list the matcher reads, and the heartbeat's state)."""

from __future__ import annotations

import json

from discovery import store as discovery_store
from sessions_app import store
from tests.unit.matching import SESSION_TTL_S, join


async def match(first: str, second: str) -> str:
    await join(first, "X")
    return (await join(second, "X")).chat_id


async def test_ending_a_users_session_ends_it_for_both(clean_redis):
    chat_id = await match("a", "b")
    ended = await store.end_user_session("b")
    assert ended["chatId"] == chat_id and ended["participants"] == ["a", "b"]
    assert await store.get_user_session("a") is None
    assert await store.get_user_session("b") is None
    assert not clean_redis.exists(f"chat_session:{chat_id}")
    assert clean_redis.zcard("sessions:active") == 0
    assert await store.end_user_session("b") is None


async def test_ending_leaves_a_partners_newer_session_alone(clean_redis):
    old = await match("a", "b")
    new = await match("b", "c")  # b moved on: the a-b session ended then
    assert await store.end_user_session("a") is None
    assert (await store.get_user_session("b"))["chatId"] == new != old


async def test_active_sessions_are_those_within_their_time_to_live(clock):
    await match("a", "b")
    clock.advance(10)
    await match("c", "d")
    assert await store.count_active_sessions(SESSION_TTL_S) == 2
    assert await store.count_active_sessions(10) == 1


async def test_sessions_are_found_by_chat_id_or_by_user(clock):
    chat_id = await match("a", "b")
    now_ms, by_chat_id = await store.find_sessions(chat_id)
    assert now_ms == clock.now_us // 1000
    assert [found["chatId"] for found in by_chat_id] == [chat_id]
    _, by_user = await store.find_sessions("b")
    assert [found["chatId"] for found in by_user] == [chat_id]
    assert (await store.find_sessions("nobody"))[1] == []


async def test_recent_sessions_come_newest_first_a_page_at_a_time(clock):
    chat_ids = []
    for n in range(3):
        chat_ids.append(await match(f"a{n}", f"b{n}"))
        clock.advance(1)
    _, total, page = await store.recent_sessions(SESSION_TTL_S, 1, 5)
    assert total == 3
    assert [found["chatId"] for found in page] == chat_ids[1::-1]
    _, total, _ = await store.recent_sessions(2, 0, 5)
    assert total == 1


def test_a_refresh_replaces_the_chat_server_list_whole_with_an_expiry(clean_redis):
    state = {"registration": "off", "lastError": ""}
    urls = ["http://a.test", "http://b.test"]
    assert discovery_store.save_chat_servers(clean_redis, urls, 15_000, state) == urls
    assert clean_redis.pttl(discovery_store.DISCOVERED_KEY) == 15_000
    assert discovery_store.save_chat_servers(clean_redis, ["http://c.test"], 15_000, state) == [
        "http://c.test"
    ]
    assert clean_redis.hgetall(discovery_store.STATE_KEY) == state


def test_an_empty_refresh_leaves_the_matcher_its_configured_servers(clean_redis):
    discovery_store.save_chat_servers(clean_redis, ["http://a.test"], 15_000, {"lastError": ""})
    assert discovery_store.save_chat_servers(clean_redis, [], 15_000, {"lastError": ""}) == []
    assert not clean_redis.exists(discovery_store.DISCOVERED_KEY)


async def test_the_state_is_updated_apart_and_read_with_the_list(clean_redis, clock):
    discovery_store.save_chat_servers(clean_redis, ["http://a.test"], 15_000, {"lastError": ""})
    assert discovery_store.save_state(clean_redis, {"lastError": "timeout"}) == ["http://a.test"]
    assert await discovery_store.read_discovery() == (["http://a.test"], {"lastError": "timeout"})
    clock.advance(15.001)
    assert await discovery_store.read_discovery() == ([], {"lastError": "timeout"})


async def test_the_matcher_reads_the_list_discovery_saved(clean_redis):
    discovery_store.save_chat_servers(clean_redis, ["http://found.test"], 15_000, {"lastError": ""})
    await join("a", "X")
    result = await join("b", "X")
    assert result.chat_server_url == "http://found.test"
    assert json.loads(clean_redis.get(f"chat_session:{result.chat_id}"))["serverUrl"] == (
        "http://found.test"
    )

"""Lua scripts through the per-loop CommandBatcher, against a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from animochat.redis_client import LuaScript, close_redis, command_batcher, get_redis

OTHER_SOURCE = """
-- ARGV[1] a value, returned upper-cased.
return string.upper(ARGV[1])
"""
ECHO_SOURCE = """
-- ARGV[1] a value, returned; 'fail' raises a script error instead.
if ARGV[1] == 'fail' then
  return redis.error_reply('asked to fail')
end
redis.call('RPUSH', 'echo:order', ARGV[1])
return ARGV[1]
"""


@pytest.fixture
def echo(tmp_path) -> LuaScript:
    path = tmp_path / "echo.lua"
    path.write_text(ECHO_SOURCE)
    return LuaScript(path)


@pytest.fixture
def other(tmp_path) -> LuaScript:
    path = tmp_path / "other.lua"
    path.write_text(OTHER_SOURCE)
    return LuaScript(path)


@pytest.fixture
def loads(aredis, monkeypatch) -> Counter:
    """The SCRIPT LOADs this process sends, by source (the server's own count would
    include other processes', such as a test server's)."""
    sent: Counter = Counter()
    real = type(aredis).script_load

    def counting_script_load(self, source):
        sent[source] += 1
        return real(self, source)

    monkeypatch.setattr(type(aredis), "script_load", counting_script_load)
    return sent


@pytest.fixture
async def checkouts(aredis, monkeypatch) -> list[int]:
    """Counts the connections the batcher takes from the pool (one per batch)."""
    pool = command_batcher().pool
    taken: list[int] = []
    real = pool.get_connection

    async def counting_get_connection(*args, **kwargs):
        taken.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", counting_get_connection)
    return taken


async def test_calls_of_one_turn_share_batches_and_each_gets_its_reply(echo, checkouts, aredis):
    await echo.load()  # loaded beforehand: this counts the calls' batches alone
    checkouts.clear()
    values = [f"v{n}" for n in range(40)]
    assert await asyncio.gather(*(echo(v) for v in values)) == values
    batch = command_batcher().max_batch
    assert len(checkouts) == -(-40 // batch)  # 40 calls, not 40 round trips
    # Each script ran once (batches go on separate connections, in any order).
    ran = await aredis.lrange("echo:order", 0, -1)
    assert sorted(ran) == sorted(values)


async def test_an_empty_script_cache_costs_one_load_per_script(
    echo, other, checkouts, loads, aredis
):
    """40 concurrent calls of two scripts on a Redis that knows neither (as after a
    restart): each script is loaded once, every call meets NOSCRIPT once at most and
    is retried with the others, and each runs exactly once."""
    assert not any(await aredis.script_exists(echo.sha, other.sha))  # see clean_redis
    values = [f"v{n}" for n in range(20)]
    results = await asyncio.gather(*(echo(v) for v in values), *(other(v) for v in values))
    assert results == values + [v.upper() for v in values]
    assert loads == {echo.source: 1, other.source: 1}
    assert sorted(await aredis.lrange("echo:order", 0, -1)) == sorted(values)
    # The first round (3 batches), two loads, and the retries batched again (each
    # script's waiters resume together): well under a connection per caller, as when
    # each caller loaded the script itself (3 + 40 + the retries).
    assert len(checkouts) < 40, len(checkouts)
    # Flushed again while in use: one more load each, no more.
    await aredis.script_flush()
    results = await asyncio.gather(*(echo(v) for v in values), *(other(v) for v in values))
    assert results == values + [v.upper() for v in values]
    assert loads == {echo.source: 2, other.source: 2}


async def test_a_failed_load_fails_its_waiters_and_the_next_call_loads_again(
    echo, aredis, monkeypatch
):
    redis_client = aredis
    real_load = redis_client.script_load

    async def failing_load(source):
        raise ResponseError("load refused")

    monkeypatch.setattr(redis_client, "script_load", failing_load)
    results = await asyncio.gather(echo("a"), echo("b"), return_exceptions=True)
    assert all(isinstance(r, ResponseError) and "load refused" in str(r) for r in results)
    monkeypatch.setattr(redis_client, "script_load", real_load)
    assert await echo("c") == "c"


async def test_a_script_error_reaches_only_its_own_caller(echo, aredis):
    results = await asyncio.gather(echo("a"), echo("fail"), echo("b"), return_exceptions=True)
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], ResponseError) and "asked to fail" in str(results[1])


async def test_scripts_flushed_from_redis_are_loaded_again(echo, aredis):
    assert await echo("first") == "first"
    await aredis.script_flush()
    assert await asyncio.gather(echo("x"), echo("y")) == ["x", "y"]


async def test_a_cancelled_caller_leaves_the_others_and_the_connection_intact(echo, aredis):
    await echo.load()  # known to Redis, so the doomed call runs rather than meet NOSCRIPT
    doomed = asyncio.ensure_future(echo("doomed"))
    others = [asyncio.ensure_future(echo(v)) for v in ("a", "b")]
    await asyncio.sleep(0)  # the calls are queued for this turn's batch
    doomed.cancel()
    assert await asyncio.gather(*others) == ["a", "b"]
    assert await echo("after") == "after"
    # The script of the cancelled call had been sent with its batch, and ran.
    assert "doomed" in await aredis.lrange("echo:order", 0, -1)


async def test_connections_closed_by_the_server_are_replaced(echo, aredis, clean_redis):
    assert await asyncio.gather(*(echo(str(n)) for n in range(20))) == [str(n) for n in range(20)]
    clean_redis.client_kill_filter(_type="normal", skipme=True)
    assert await asyncio.gather(*(echo(str(n)) for n in range(20))) == [str(n) for n in range(20)]


async def test_unreachable_redis_fails_every_call_with_a_redis_error(echo, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        results = await asyncio.gather(echo("a"), echo("b"), return_exceptions=True)
    finally:
        await close_redis()
    assert all(isinstance(r, RedisConnectionError) for r in results), results


def test_scripts_called_from_sync_code_share_the_source(echo, clean_redis):
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert echo.call_sync(client, "sync") == "sync"
    client.close()


async def test_close_waits_for_calls_in_flight(echo):
    await echo.load()
    calls = [asyncio.ensure_future(echo(str(n))) for n in range(5)]
    await asyncio.sleep(0)
    await close_redis()
    assert [c.result() for c in calls] == [str(n) for n in range(5)]
    assert get_redis() is not None  # a new client for this loop, closed by the fixture
    await close_redis()


async def test_a_batch_that_may_have_run_is_never_sent_again(echo, aredis, monkeypatch):
    """The connection fails after the batch was written: the callers get the error,
    and each script ran once (sent again, it could match a user twice)."""
    assert await echo("warm") == "warm"  # loaded, and a pooled connection is idle
    pool = command_batcher().pool
    connection = await pool.get_connection()
    await pool.release(connection)
    connection_class = type(connection)
    real_read = connection_class.read_response
    lost: list[object] = []

    async def read_losing_one_reply(self, *args, **kwargs):
        reply = await real_read(self, *args, **kwargs)
        if not lost:  # the script ran, but its reply never arrives
            lost.append(reply)
            raise RedisConnectionError("connection lost while reading")
        return reply

    monkeypatch.setattr(connection_class, "read_response", read_losing_one_reply)
    results = await asyncio.gather(echo("once"), return_exceptions=True)
    monkeypatch.undo()
    assert lost == ["once"] and isinstance(results[0], RedisConnectionError)
    assert (await aredis.lrange("echo:order", 0, -1)).count("once") == 1
    assert await echo("again") == "again"  # the next batch gets a sound connection

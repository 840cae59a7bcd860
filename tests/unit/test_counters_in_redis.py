"""Counters kept in Redis so every process shares them: request rate limits
(animochat/ratelimit.py) and admin log-in throttling (animochat/login_throttle.py)."""

from __future__ import annotations

import pytest

from animochat import login_throttle
from animochat.ratelimit import RateLimited, check_rate_limit, check_read_rate_limit

CLIENT = "203.0.113.7"


async def test_a_client_past_its_limit_is_told_when_its_window_ends(clock):
    for _ in range(3):
        await check_rate_limit("post", CLIENT, 3)
    clock.advance(20)  # the window is the minute: 40 s of it left
    with pytest.raises(RateLimited) as refused:
        await check_rate_limit("post", CLIENT, 3)
    assert refused.value.retry_after == 40
    clock.advance(40)
    await check_rate_limit("post", CLIENT, 3)  # a new window


async def test_groups_and_clients_are_counted_apart_an_ipv6_client_per_64(clock):
    await check_rate_limit("post", "2001:db8:1:2::1", 1)
    await check_rate_limit("read", "2001:db8:1:2::1", 1)
    await check_rate_limit("post", "2001:db8:1:3::1", 1)
    with pytest.raises(RateLimited):
        await check_rate_limit("post", "2001:db8:1:2:ffff::9", 1)


async def test_a_windows_counter_expires_soon_after_the_window(clean_redis):
    await check_rate_limit("post", CLIENT, 3)
    [key] = clean_redis.keys("ratelimit:*")
    assert clean_redis.ttl(key) == 61


async def test_a_limit_of_zero_counts_nothing(clean_redis, settings):
    settings.RATE_LIMIT_PER_MINUTE = 0
    await check_rate_limit("post", CLIENT)
    await check_rate_limit("post", CLIENT, 0)
    assert clean_redis.keys() == []


async def test_reads_have_their_own_limit(settings):
    settings.RATE_LIMIT_PER_MINUTE = 1
    settings.READ_RATE_LIMIT_PER_MINUTE = 2
    await check_rate_limit("post", CLIENT)
    await check_read_rate_limit(CLIENT)
    await check_read_rate_limit(CLIENT)
    with pytest.raises(RateLimited):
        await check_read_rate_limit(CLIENT)


def test_five_failed_log_ins_lock_the_username_and_address_for_fifteen_minutes(clock):
    for count in range(1, 5):
        assert login_throttle.record_failure("admin", CLIENT) == count
        assert login_throttle.locked_for("admin", CLIENT) == 0
    login_throttle.record_failure("admin", CLIENT)
    assert login_throttle.locked_for("admin", CLIENT) == 900
    assert login_throttle.locked_for("ADMIN", CLIENT) == 900  # names compared caseless
    assert login_throttle.locked_for("admin", "198.51.100.1") == 0
    assert login_throttle.locked_for("other", CLIENT) == 0
    clock.advance(899.5)
    assert login_throttle.locked_for("admin", CLIENT) == 1  # never "0 s left" while locked
    clock.advance(0.501)
    assert login_throttle.locked_for("admin", CLIENT) == 0


def test_each_failure_restarts_the_fifteen_minutes(clock):
    for _ in range(4):
        login_throttle.record_failure("admin", CLIENT)
        clock.advance(600)  # 40 minutes of failures, never 15 quiet ones
    login_throttle.record_failure("admin", CLIENT)
    assert login_throttle.locked_for("admin", CLIENT) == 900


def test_an_ipv6_client_is_throttled_per_64():
    for _ in range(5):
        login_throttle.record_failure("admin", "2001:db8:1:2::1")
    assert login_throttle.locked_for("admin", "2001:db8:1:2:abcd::7") == 900


def test_a_successful_log_in_clears_the_count():
    for _ in range(4):
        login_throttle.record_failure("admin", CLIENT)
    login_throttle.clear_failures("admin", CLIENT)
    assert login_throttle.record_failure("admin", CLIENT) == 1

"""Matchmaking reads: maintenance, queues, popular interests and the status report."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
from django.conf import settings
from redis.exceptions import RedisError

from discovery import selectors as discovery_selectors
from sessions_app import selectors as session_selectors

from . import events, notifications, store, stream_ids
from .metrics import bucket_quantile, open_streams


async def user_session_and_pending(
    user_id: str, pool: str | None = None
) -> tuple[dict[str, Any] | None, bool]:
    """The user's chat session in ``pool``, and whether its match awaits its arriving
    side's confirmation (see :func:`matchmaking.services.confirm_match`)."""
    return await store.user_session_and_pending(user_id, pool)


async def reconnect_event(user_id: str, last_event_id: str) -> dict[str, Any] | None:
    """What a stream reconnecting with ``Last-Event-ID`` is told (see
    :mod:`matchmaking.stream_ids`), without queuing the user or touching their session:
    its ``MATCHED`` again while that chat is still the user's session; None (a 204)
    for a chat or stream of theirs that has ended. Raises ``INVALID_LAST_EVENT_ID``
    for an id the service never gave this user."""
    session = await session_selectors.get_user_session(user_id)
    if session and session["chatId"] == last_event_id:
        return events.matched_from_session(session, user_id)
    if stream_ids.is_chat_id(last_event_id) or stream_ids.names_ended_stream(
        user_id, last_event_id
    ):
        return None
    raise events.invalid_last_event_id()


async def is_maintenance() -> bool:
    flag = await store.get_maintenance_flag()
    return settings.MAINTENANCE_MODE if flag is None else flag == "1"


# Popularity is read from Redis at most this often per process: /interests/popular is
# public, and the estimated wait of every waiting user reads it too.
POPULARITY_CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class Popularity:
    """Requests per interest within the popularity window, as of ``read_at``."""

    read_at: float  # time.monotonic()
    counts: dict[str, int]
    hidden: frozenset[str]  # never shown among popular interests
    ranking: list[tuple[str, int]]  # the shown interests, most popular first


_popularity: Popularity | None = None
_popularity_reads: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def hidden_interests(hidden: Iterable[str], shown: Iterable[str]) -> frozenset[str]:
    """``POPULAR_BLOCKLIST`` and the interests the admin hid, less those they showed."""
    return frozenset(settings.POPULAR_BLOCKLIST).union(hidden).difference(shown)


async def _read_popularity() -> Popularity:
    global _popularity
    counts, hidden, shown = await store.popular_counts(settings.POPULAR_WINDOW_SECONDS, time.time())
    blocked = hidden_interests(hidden, shown)
    ranking = sorted(
        ((interest, count) for interest, count in counts.items() if interest not in blocked),
        key=lambda row: (-row[1], row[0]),
    )
    _popularity = Popularity(time.monotonic(), counts, blocked, ranking)
    return _popularity


async def popularity(max_age: float | None = None) -> Popularity:
    """The process's cached popularity, read again once older than ``max_age`` seconds
    (default POPULARITY_CACHE_SECONDS), by one caller at a time: the others of the loop
    wait for its read."""
    max_age = POPULARITY_CACHE_SECONDS if max_age is None else max_age
    cached = _popularity
    if cached is not None and time.monotonic() - cached.read_at < max_age:
        return cached
    loop = asyncio.get_running_loop()
    task = _popularity_reads.get(loop)
    if task is None or task.done():
        task = loop.create_task(_read_popularity())
        _popularity_reads[loop] = task
        task.add_done_callback(lambda _: _popularity_reads.pop(loop, None))
    return await asyncio.shield(task)


def forget_popularity() -> None:
    """Read popularity from Redis at the next call (after the admin changed it)."""
    global _popularity
    _popularity = None


async def popular_interests(limit: int) -> list[dict[str, object]]:
    ranking = (await popularity()).ranking[:limit]
    return [{"interest": interest, "count": count} for interest, count in ranking]


async def estimated_wait_seconds(interests: Iterable[str]) -> int | None:
    """The popularity window over how many others asked for the user's interests in it
    (one request of each interest is taken to be the user's own); None if nobody did."""
    counts = (await popularity()).counts
    arrivals = sum(max(0, counts.get(interest, 0) - 1) for interest in interests)
    if arrivals == 0:
        return None
    return math.ceil(settings.POPULAR_WINDOW_SECONDS / arrivals)


# /status lists only the largest queues, so its cost does not grow with their number.
STATUS_QUEUES = 50


@dataclass(frozen=True)
class QueueOverview:
    users_in_queue: int
    queue_count: int  # interests with a queue
    by_interest: dict[str, int]  # the STATUS_QUEUES largest queues, largest first


async def queue_overview() -> QueueOverview:
    total, queue_count, largest = await store.largest_queues(STATUS_QUEUES)
    return QueueOverview(users_in_queue=total, queue_count=queue_count, by_interest=largest)


_PROCESS = psutil.Process()
_STARTED = time.time()


def _process_report() -> dict[str, Any]:
    memory = _PROCESS.memory_info()
    cpu = _PROCESS.cpu_times()
    virtual = psutil.virtual_memory()
    return {
        "uptime": round(time.time() - _STARTED, 3),
        "processMemory": {"rss": memory.rss, "vms": memory.vms},
        "os": {
            "hostname": socket.gethostname(),
            "platform": sys.platform,
            "totalMemory": virtual.total,
            "freeMemory": virtual.available,
            "cpuCount": os.cpu_count(),
            "loadAverage": [round(x, 2) for x in os.getloadavg()],
        },
        "cpuUsage": {"user": cpu.user, "system": cpu.system},
    }


async def status_report() -> dict[str, Any]:
    """The ``/status`` document (docs/PROTOCOL.md#the-status-page); bounded cost (the
    largest queues only), never KEYS."""
    redis_state = "ready"
    metrics: dict[str, Any] = {}
    discovery: dict[str, Any] = {}
    maintenance = settings.MAINTENANCE_MODE
    try:
        maintenance = await is_maintenance()
        overview = await queue_overview()
        metrics = {
            "activeSessions": await session_selectors.count_active_sessions(),
            "usersInQueue": overview.users_in_queue,
            "queues": overview.by_interest,
            "queueCount": overview.queue_count,
            "openStreams": open_streams(),
        }
        discovery = await discovery_selectors.discovery_status()
    except (RedisError, OSError):
        redis_state = "down"
    return {
        "serviceState": "MAINTENANCE" if maintenance else "ACTIVE",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "redis": {"commands": redis_state, "subscriber": notifications.subscriber_state()},
        "metrics": metrics,
        "discovery": discovery,
        "serviceInfo": {
            "serviceName": settings.SERVICE_NAME,
            "version": settings.SERVICE_VERSION,
            # Which of the web processes sharing the port answered.
            "pid": os.getpid(),
        },
        **_process_report(),
    }


# Reads for the admin dashboard.


@dataclass(frozen=True)
class QueueSummary:
    """One queue: ``interest`` is None for the queue of every waiting user."""

    interest: str | None
    waiting: int
    oldest_wait_seconds: float | None


@dataclass(frozen=True)
class WaitingUser:
    user_id: str
    interests: list[str]
    wait_seconds: float
    # False for a user whose stream died with its server: the matcher drops them.
    lease_alive: bool


@dataclass(frozen=True)
class WaitingPage:
    total: int
    users: list[WaitingUser]


def _wait_seconds(now_us: int, since_us: float | None) -> float | None:
    return None if since_us is None else max(0.0, (now_us - since_us) / 1_000_000)


def _waiting_user(now_us: int, row: tuple[str, float, set[str], int]) -> WaitingUser:
    user_id, since_us, interests, lease_ms = row
    wait_seconds = max(0.0, (now_us - since_us) / 1_000_000)
    return WaitingUser(user_id, sorted(interests), wait_seconds, lease_ms > 0)


async def queue_summaries() -> tuple[QueueSummary, list[QueueSummary]]:
    """All waiting users, then each interest's queue, largest first: O(interests)."""
    now_us, total, oldest, rows = await store.queue_heads()
    queues = [
        QueueSummary(interest, size, _wait_seconds(now_us, since)) for interest, size, since in rows
    ]
    queues.sort(key=lambda queue: (-queue.waiting, queue.interest))
    return QueueSummary(None, total, _wait_seconds(now_us, oldest)), queues


async def waiting_users(interest: str | None, offset: int, limit: int) -> WaitingPage:
    """A page of one interest's queue (or of every waiting user), longest wait first."""
    now_us, total, rows = await store.queue_page(interest, offset, limit)
    return WaitingPage(total, [_waiting_user(now_us, row) for row in rows])


async def find_waiting_user(user_id: str) -> WaitingUser | None:
    now_us, row = await store.waiting_user(user_id)
    return None if row is None else _waiting_user(now_us, row)


async def metrics_values() -> dict[str, Any]:
    """What ``/metrics`` reports (see :mod:`matchmaking.metrics`)."""
    matches, time_to_match, users_waiting = await store.match_metrics()
    return {
        "matches": matches,
        "time_to_match": time_to_match,
        "users_waiting": users_waiting,
        "active_sessions": await session_selectors.count_active_sessions(),
        "open_streams": open_streams(),
    }


# The admin's Overview: the last hour, per minute (written by services.record_history).

HISTORY_MINUTES = 60


@dataclass(frozen=True)
class MinuteStats:
    minute: int  # whole minutes since the epoch (UTC)
    matches: int
    waiting: int | None  # the most users seen waiting in the minute; None: not sampled
    p50_seconds: float | None  # time to match; None: no match in the minute
    p95_seconds: float | None
    redis_errors: int


@dataclass(frozen=True)
class LastHour:
    minutes: list[MinuteStats]  # oldest first; the last one is the current minute
    matches: int
    peak_waiting: int
    p50_seconds: float | None  # over the hour
    p95_seconds: float | None
    redis_errors: int


def _minute_stats(minute: int, values: dict[str, float]) -> MinuteStats:
    return MinuteStats(
        minute,
        int(values.get(store.HISTORY_MATCHES, 0)),
        int(values[store.HISTORY_WAITING]) if store.HISTORY_WAITING in values else None,
        bucket_quantile(0.5, values),
        bucket_quantile(0.95, values),
        int(values.get(store.HISTORY_REDIS_ERRORS, 0)),
    )


async def last_hour(now: float | None = None) -> LastHour:
    """Matches, users waiting, time to match and Redis errors for each of the last 60
    minutes: one round trip, whatever the traffic."""
    current = int((time.time() if now is None else now) // 60)
    minutes = list(range(current - HISTORY_MINUTES + 1, current + 1))
    values = await store.history(minutes)
    hour: dict[str, float] = {}
    for minute_values in values:
        for name, value in minute_values.items():
            if name.startswith("le:"):
                hour[name] = hour.get(name, 0) + value
    rows = [_minute_stats(m, v) for m, v in zip(minutes, values, strict=True)]
    return LastHour(
        rows,
        matches=sum(row.matches for row in rows),
        peak_waiting=max((row.waiting for row in rows if row.waiting is not None), default=0),
        p50_seconds=bucket_quantile(0.5, hour),
        p95_seconds=bucket_quantile(0.95, hour),
        redis_errors=sum(row.redis_errors for row in rows),
    )

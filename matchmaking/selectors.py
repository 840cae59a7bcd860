"""Matchmaking reads: maintenance, queues, popular interests and the status report."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
from django.conf import settings
from redis.exceptions import RedisError

from . import notifications, store


async def is_maintenance() -> bool:
    flag = await store.get_maintenance_flag()
    return settings.MAINTENANCE_MODE if flag is None else flag == "1"


async def popular_interests(limit: int) -> list[dict[str, object]]:
    rows = await store.popular_interests(settings.POPULAR_WINDOW_SECONDS * 1000, limit)
    return [{"interest": interest, "count": count} for interest, count in rows]


@dataclass(frozen=True)
class QueueOverview:
    users_in_queue: int
    by_interest: dict[str, int]


async def queue_overview() -> QueueOverview:
    total, by_interest = await store.queue_sizes()
    return QueueOverview(users_in_queue=total, by_interest=by_interest)


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
    """The ``/status`` document (SPEC §3.6); O(interests with a queue), never KEYS."""
    from discovery import selectors as discovery_selectors
    from sessions_app import selectors as session_selectors

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
            "openStreams": open_stream_count(),
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
        "serviceInfo": {"serviceName": settings.SERVICE_NAME, "version": settings.SERVICE_VERSION},
        **_process_report(),
    }


def open_stream_count() -> int:
    """Matchmaking streams open in this process."""
    from .consumers import MatchmakingStreamConsumer

    return MatchmakingStreamConsumer.open_streams

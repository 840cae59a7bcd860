"""``GET /metrics``: Prometheus text exposition of the matchmaker.

Two kinds of series, so the numbers stay right with several Daphne processes:

* service-wide series (``animochat_matches_total``, ``animochat_time_to_match_seconds``,
  ``animochat_users_waiting``, ``animochat_active_sessions``) are read from counters the
  matcher keeps in Redis, so every instance reports the same totals: scrape any one of
  them, or all and aggregate with ``max`` (not ``sum``);
* per-process series (``animochat_open_streams``, ``animochat_redis_errors_total`` and
  prometheus-client's ``process_*`` CPU and memory series) describe the process that
  answered and carry a ``process`` label; scrape every instance and ``sum`` them.
"""

from __future__ import annotations

import os
import socket

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

PROCESS = f"{socket.gethostname()}:{os.getpid()}"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_redis_errors = 0


def record_redis_error() -> None:
    """Count a request that failed because Redis was unreachable (this process)."""
    global _redis_errors
    _redis_errors += 1


class _Snapshot:
    """A collector over values read beforehand (collection itself cannot await)."""

    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):
        return iter(self.families)


class _LabelledProcessCollector:
    """prometheus-client's CPU and memory series of this process, with its ``process`` label.

    Unlabelled, the series of the Daphne processes behind one address would overwrite
    each other in Prometheus from one scrape to the next.
    """

    def __init__(self) -> None:
        self.collector = ProcessCollector(registry=None)

    def collect(self):
        for family in self.collector.collect():
            labelled = type(family)(family.name, family.documentation, labels=["process"])
            for sample in family.samples:
                labelled.add_metric([PROCESS], sample.value)
            yield labelled


_process_collector = _LabelledProcessCollector()

# The matcher's bucket bounds (TIME_TO_MATCH_BUCKETS in animochat/lua/lib.lua).
TIME_TO_MATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def cumulative_buckets(time_to_match: dict[str, str]) -> list[tuple[str, int]]:
    """Prometheus buckets from the matcher's one-bucket-per-match counts."""
    buckets, total = [], 0
    for bound in TIME_TO_MATCH_BUCKETS:
        total += int(time_to_match.get(f"le:{bound:g}", 0))
        buckets.append((f"{bound:g}", total))
    buckets.append(("+Inf", total + int(time_to_match.get("le:+Inf", 0))))
    return buckets


def render(
    matches: dict[str, str],
    time_to_match: dict[str, str],
    users_waiting: int,
    active_sessions: int,
    open_streams: int,
) -> bytes:
    total = CounterMetricFamily(
        "animochat_matches",
        "Matches made, by number of shared interests and fallback.",
        labels=["shared_interests", "fallback"],
    )
    for field, count in sorted(matches.items()):
        shared, _, fallback = field.partition(":")
        total.add_metric([shared, "true" if fallback == "1" else "false"], int(count))

    histogram = HistogramMetricFamily(
        "animochat_time_to_match_seconds",
        "How long the waiting side waited for its match.",
        buckets=cumulative_buckets(time_to_match),
        sum_value=int(time_to_match.get("sum_ms", 0)) / 1000,
    )
    waiting = GaugeMetricFamily(
        "animochat_users_waiting", "Users waiting in the queues.", value=users_waiting
    )
    sessions = GaugeMetricFamily(
        "animochat_active_sessions", "Chat sessions not yet ended.", value=active_sessions
    )
    streams = GaugeMetricFamily(
        "animochat_open_streams", "Matchmaking streams open in this process.", labels=["process"]
    )
    streams.add_metric([PROCESS], open_streams)
    errors = CounterMetricFamily(
        "animochat_redis_errors",
        "Requests that failed because Redis was unreachable.",
        labels=["process"],
    )
    errors.add_metric([PROCESS], _redis_errors)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([total, histogram, waiting, sessions, streams, errors]))
    registry.register(_process_collector)
    return generate_latest(registry)

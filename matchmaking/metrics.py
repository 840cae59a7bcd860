"""``GET /metrics``: Prometheus text exposition of the matchmaker.

Two kinds of series, so the numbers stay right with several Daphne processes:

* service-wide series (``animochat_matches_total``, ``animochat_time_to_match_seconds``,
  ``animochat_users_waiting``, ``animochat_active_sessions``) are read from counters the
  service keeps in Redis, so every instance reports the same totals: scrape any one of
  them, or all and aggregate with ``max`` (not ``sum``);
* per-process series (``animochat_open_streams``, ``animochat_redis_errors_total`` and
  prometheus-client's ``process_*`` CPU and memory series) describe the process that
  answered and carry a ``process`` label; scrape every instance and ``sum`` them.
"""

from __future__ import annotations

import contextlib
import os
import socket

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from animochat.redis_errors import redis_error_count

PROCESS = f"{socket.gethostname()}:{os.getpid()}"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_open_streams = 0  # GET /matchmaking requests being answered by this process


def open_streams() -> int:
    """Matchmaking streams open in this process (``MAX_OPEN_STREAMS`` bounds them)."""
    return _open_streams


@contextlib.contextmanager
def counted_stream():
    """Count one open stream for as long as the block runs."""
    global _open_streams
    _open_streams += 1
    try:
        yield
    finally:
        _open_streams -= 1


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

# The bounds of the time-to-match buckets (in seconds).
TIME_TO_MATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def time_to_match_bucket(waited_ms: int) -> str:
    """The bucket a wait falls in, named as the matcher names it (``le:<seconds>``)."""
    for bound in TIME_TO_MATCH_BUCKETS:
        if waited_ms <= bound * 1000:
            return f"le:{bound:g}"
    return "le:+Inf"


def bucket_quantile(q: float, counts: dict[str, float]) -> float | None:
    """The ``q`` quantile (seconds) of waits counted per bucket (``le:<seconds>``), by
    linear interpolation inside the bucket, as Prometheus' ``histogram_quantile``; None
    without any count. A quantile in the open last bucket is its lower bound."""
    bounds = [(f"le:{bound:g}", float(bound)) for bound in TIME_TO_MATCH_BUCKETS]
    total = sum(int(counts.get(name, 0)) for name, _ in bounds) + int(counts.get("le:+Inf", 0))
    if total == 0:
        return None
    rank, below, lower = q * total, 0, 0.0
    for name, upper in bounds:
        count = int(counts.get(name, 0))
        if count and below + count >= rank:
            return lower + (upper - lower) * (rank - below) / count
        below, lower = below + count, upper
    return lower


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
    errors.add_metric([PROCESS], redis_error_count())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([total, histogram, waiting, sessions, streams, errors]))
    registry.register(_process_collector)
    return generate_latest(registry)

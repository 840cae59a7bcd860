"""The admin's Overview: per-minute history in Redis, its quantiles and its SVG charts."""

from __future__ import annotations

import re
import time

import pytest
import redis
from django.urls import reverse

from animochat import redis_errors
from animochat.redis_client import close_redis
from matchmaking import charts, selectors, services, store
from matchmaking.metrics import bucket_quantile, time_to_match_bucket
from tests.test_admin import enqueue, match, run
from tests.test_admin import viewer_client as viewer_client  # a fixture

OVERVIEW_URL = "/admin/matchmaking/"


def test_bucket_quantile_interpolates_like_histogram_quantile():
    assert bucket_quantile(0.5, {}) is None
    # 10 waits in (0.25, 0.5]: the median is halfway through the bucket.
    assert bucket_quantile(0.5, {"le:0.5": 10}) == pytest.approx(0.375)
    # 90 fast, 10 slow: p50 among the fast, p95 halfway into the (5, 10] bucket.
    counts = {"le:0.05": 90, "le:10": 10}
    assert bucket_quantile(0.5, counts) == pytest.approx(0.05 * 50 / 90)
    assert bucket_quantile(0.95, counts) == pytest.approx(7.5)
    assert bucket_quantile(0.99, {"le:+Inf": 3}) == 600  # past the last bound: its bound
    assert time_to_match_bucket(0) == "le:0.05" and time_to_match_bucket(50) == "le:0.05"
    assert time_to_match_bucket(51) == "le:0.1" and time_to_match_bucket(10**7) == "le:+Inf"


def test_nice_ceiling_and_values():
    assert charts.nice_ceiling(0, whole=True) == 1
    assert charts.nice_ceiling(3, whole=True) == 5
    assert charts.nice_ceiling(12, whole=True) == 20
    assert charts.nice_ceiling(0.3, whole=False) == 0.5
    assert charts.nice_ceiling(0.03, whole=False) == pytest.approx(0.05)
    assert [charts.grid_steps(v, whole=True) for v in (1, 2, 5, 10, 20, 25)] == [1, 2, 5, 5, 4, 5]
    assert [charts.grid_steps(v, whole=False) for v in (0.5, 1, 2, 2.5)] == [5, 5, 4, 5]
    assert charts.format_value(0, "s") == "0"
    assert charts.format_value(0.0375, "s") == "37.5 ms"
    assert charts.format_value(7.5, "s") == "7.5 s"
    assert charts.format_value(90, "s") == "1.5 min"
    assert charts.format_value(3.0, "") == "3"


def test_chart_geometry():
    minutes = list(range(1000, 1060))
    values: list[float | None] = [None] * 60
    values[10], values[11], values[30] = 0.2, 0.4, 0.1
    chart = charts.build(
        charts.Chart("c", "t", "lines", [charts.Series("p50", "p50", values, "s")], minutes)
    )
    assert chart.y_max == 0.5 and not chart.empty
    [line] = chart.lines
    assert len(line["points"]) == 3 and len(line["segments"]) == 2  # a gap between 11 and 30
    highest = min(point["y"] for point in line["points"])
    assert highest == pytest.approx(charts.TOP + charts.PLOT_HEIGHT * (1 - 0.4 / 0.5))
    bars = charts.build(
        charts.Chart(
            "b", "t", "bars", [charts.Series("matches", "matches", [0] * 59 + [4])], minutes
        )
    )
    assert bars.y_max == 5 and len(bars.bars) == 60
    assert bars.bars[-1]["height"] == pytest.approx(charts.PLOT_HEIGHT * 4 / 5)
    labels = [label["label"] for label in bars.x_labels]
    assert labels == ["16:40", "16:50", "17:00", "17:10", "17:20", "17:30"]


async def test_history_is_bounded_and_read_back(aredis):
    minute = int(time.time() // 60)
    await aredis.zadd("queue:waiting", {f"u{i}": i for i in range(7)})
    assert await store.record_history(minute, {"matches": 2, "le:0.5": 2}, True) == 7
    assert await store.record_history(minute - 3, {"redis_errors": 4}, False) == -1
    await aredis.zremrangebyrank("queue:waiting", 0, 3)
    assert await store.record_history(minute, {}, True) == 3  # the maximum stays 7
    assert await aredis.ttl(store.history_key(minute - 3)) > 0
    ttl = await aredis.ttl(store.history_key(minute))
    assert (minute + 1) * 60 + 3600 - time.time() - 2 <= ttl <= 3660
    hour = await selectors.last_hour()
    assert len(hour.minutes) == 60 and hour.minutes[-1].minute == minute
    assert hour.minutes[-1].matches == 2 and hour.minutes[-1].waiting == 7
    assert hour.minutes[-1].p50_seconds == pytest.approx(0.375)
    assert hour.minutes[-4].redis_errors == 4 and hour.redis_errors == 4
    assert hour.matches == 2 and hour.peak_waiting == 7
    # An hour later the minute is gone from the page (and from Redis by then).
    later = await selectors.last_hour(now=time.time() + 3600)
    assert later.matches == 0


def test_matches_and_waiting_users_are_recorded_beside_the_matcher(clean_redis):
    services._next_waiting_sample = 0.0
    assert enqueue("lonely", "NOBODY-ELSE").state == services.WAITING_STATE
    match("ow1", "ow2", "OVERVIEW")
    hour = run(selectors.last_hour)
    assert hour.matches == 1 and hour.peak_waiting >= 1
    assert hour.p50_seconds is not None and hour.p50_seconds <= 0.5


def test_redis_errors_wait_for_redis_then_are_written(settings, clean_redis):
    """Errors counted while Redis is unreachable are kept in the process, then written."""
    redis_errors.take_unwritten_errors()
    redis_errors.record_redis_error()
    redis_errors.record_redis_error()
    reachable = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:9/15"
    with pytest.raises(redis.exceptions.ConnectionError):
        run(services.record_history, {})
    assert sum(redis_errors.take_unwritten_errors().values()) == 2
    redis_errors.record_redis_error()
    redis_errors.record_redis_error()
    settings.REDIS_URL = reachable
    run(services.record_history, {})
    assert not redis_errors.has_unwritten_errors()
    assert run(selectors.last_hour).redis_errors == 2


@pytest.mark.django_db
def test_overview_page_draws_the_hour(viewer_client, clean_redis):
    """The section's landing page; view-only, so staff without the permission see it."""
    assert reverse("admin:app_list", kwargs={"app_label": "matchmaking"}) == OVERVIEW_URL
    services._next_waiting_sample = 0.0
    enqueue("lonely", "NOBODY-ELSE")
    match("pa", "pb")
    page = viewer_client.get(OVERVIEW_URL).content.decode()
    assert "<h1>Overview</h1>" in page
    assert re.search(r'id="mm-hour-matches">1<', page)
    for chart in ("mm-chart-matches", "mm-chart-waiting", "mm-chart-time", "mm-chart-errors"):
        assert f'id="{chart}"' in page
    values = re.findall(r'<rect class="mm-value mm-matches"[^>]*data-value="([^"]+)"', page)
    assert len(values) == 60 and values[-1] == "1" and set(values[:-1]) == {"0"}
    assert re.search(r'<circle class="mm-value mm-p50"[^>]*data-value="[\d.]+ ms"', page)
    assert "<script src=" not in page.split('id="mm-live"')[1]  # drawn on the server


async def test_close_redis_waits_for_history(aredis):
    """Bookkeeping started in the background is finished before a client closes."""
    services._next_waiting_sample = 0.0
    await services.enqueue_or_match("bg", ["BG"], "token-bg")
    await close_redis()
    assert (await selectors.last_hour()).peak_waiting == 1

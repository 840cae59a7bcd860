"""The Overview page as an operator meets it: real Daphne, real streams, real Chromium.

Traffic is made by the test through a live Daphne on a Redis of its own: pairs matched
at once and one after a wait, users left waiting, and requests refused while that
Redis is stopped (it is saved first and restarted from its dump, so the hour survives).
The page must then draw every chart with non-zero data, and a screenshot of it must
not be blank (checked pixel by pixel in the browser itself).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time

import pytest
import redis
import requests

from animochat.embedded_redis import EmbeddedRedis
from tests.support.browser import CHROMIUM, NOT_INSTALLED, launch_chromium
from tests.support.servers import BASE_DIR
from tests.test_admin import StreamReader
from tests.test_admin_live import ADMIN_PASSWORD, ADMIN_USERNAME, ARTIFACTS

pytestmark = pytest.mark.slow


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own whose data survives a restart (saved to ``tmp_path``)."""
    data = tmp_path / "redis"
    data.mkdir()
    servers = [EmbeddedRedis(extra_args=["--dir", str(data)]).start()]

    def stop_saved() -> None:
        redis.Redis.from_url(servers[-1].url).save()
        servers[-1].stop()

    def restart() -> None:
        servers.append(EmbeddedRedis(servers[0].port, extra_args=["--dir", str(data)]).start())

    servers[0].stop_saved, servers[0].restart = stop_saved, restart
    yield servers[0]
    for server in servers:
        server.stop()


@pytest.fixture
def server(private_redis, daphne_factory, tmp_path):
    """A Daphne on the private Redis, with an admin user in a database of its own."""
    env = {
        "REDIS_URL": private_redis.url + "/0",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_SUPERUSER_USERNAME": ADMIN_USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
    }
    for command in (["migrate", "--no-input", "-v", "0"], ["ensure_admin"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=BASE_DIR,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "animochat.settings", **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    return daphne_factory(**env)


def pair(base: str, name: str, wait_for_keepalive: bool = False) -> None:
    waiting = StreamReader(base, f"{name}-w", name)
    assert waiting.next_event()["state"] == "WAITING"
    if wait_for_keepalive:  # a second WAITING comes with the first keepalive (1 s)
        assert waiting.next_event()["state"] == "WAITING"
    arriving = StreamReader(base, f"{name}-a", name)
    assert arriving.next_event()["state"] == "MATCHED"
    assert waiting.next_change()["state"] == "MATCHED"
    waiting.close()
    arriving.close()


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


# Runs in the page: the share of pixels of a PNG that differ from its first pixel, and
# the number of distinct colours.
PIXEL_STATS = """async (data) => {
  const image = new Image();
  image.src = "data:image/png;base64," + data;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const colours = new Set();
  let differing = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const rgb = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
    colours.add(rgb);
    if (pixels[i] !== pixels[0] || pixels[i + 1] !== pixels[1] || pixels[i + 2] !== pixels[2]) {
      differing++;
    }
  }
  return {differing: differing / (pixels.length / 4), colours: colours.size};
}"""


def chart_values(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.dataset.value)")


def number(value: str) -> float:
    """``"3"`` → 3, ``"37.5 ms"`` → 0.0375 (seconds), ``"1.2 s"`` → 1.2."""
    amount, _, unit = value.partition(" ")
    return float(amount) * {"": 1, "ms": 0.001, "s": 1, "min": 60}[unit]


@pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)
def test_overview_charts_the_last_hour_in_a_real_browser(server, private_redis):
    from playwright.sync_api import expect, sync_playwright

    base = server.url
    lonely = [StreamReader(base, f"lonely-{i}", f"LONELY-{i}") for i in range(3)]
    for stream in lonely:
        assert stream.next_event()["state"] == "WAITING"
    for i in range(4):
        pair(base, f"FAST-{i}")
    pair(base, "SLOW", wait_for_keepalive=True)
    for stream in lonely:
        assert stream.next_event()["state"] == "WAITING"  # a keepalive: sampled again

    # Redis stops: arriving users are refused (each a Redis error of this process).
    private_redis.stop_saved()
    for i in range(2):
        refused = requests.get(
            f"{base}/matchmaking", params={"userId": f"r{i}", "interests": "X"}, timeout=10
        )
        assert refused.status_code == 503
    private_redis.restart()
    wait_until(lambda: requests.get(f"{base}/maintenance", timeout=5).status_code == 200)
    pair(base, "AFTER")  # its bookkeeping also writes the errors counted meanwhile
    for stream in lonely:
        stream.close()

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(20_000)
            expect.set_options(timeout=15_000)  # the page refreshes itself every 5 s
            page.goto(f"{base}/admin/login/?next=/admin/")
            page.fill("#id_username", ADMIN_USERNAME)
            page.fill("#id_password", ADMIN_PASSWORD)
            page.click("input[type=submit]")
            # The section's landing page, from the index.
            page.locator("#content-main .app-matchmaking").get_by_role(
                "link", name="Overview", exact=True
            ).click()
            expect(page).to_have_url(f"{base}/admin/matchmaking/")
            expect(page.locator("h1")).to_have_text("Overview")
            expect(page.locator("#mm-hour-errors")).not_to_have_text("0")  # refreshes itself

            matches = [number(v) for v in chart_values(page, "#mm-chart-matches rect")]
            assert len(matches) == 60 and sum(matches) == 6
            assert page.inner_text("#mm-hour-matches") == "6"
            waiting = [number(v) for v in chart_values(page, "#mm-chart-waiting circle")]
            assert max(waiting) >= 3  # a point per minute in which someone was sampled
            p50 = [number(v) for v in chart_values(page, "#mm-chart-time circle.mm-p50")]
            p95 = [number(v) for v in chart_values(page, "#mm-chart-time circle.mm-p95")]
            assert p50 and p95 and max(p95) > 0 and max(p95) >= max(p50)
            assert max(p95) >= 0.5  # the slow pair waited through a keepalive
            errors = [number(v) for v in chart_values(page, "#mm-chart-errors rect")]
            assert sum(errors) >= 2
            # Drawn, not only present: the bars and lines have a size on screen. Measured
            # in one script run: the page replaces its charts every 5 s, and a bar found
            # before a refresh has no box after it.
            bars = page.eval_on_selector_all(
                "#mm-chart-matches rect",
                "rects => rects.map(r => [r.dataset.value, r.getBoundingClientRect().height])",
            )
            assert len(bars) == 60
            assert next(height for value, height in bars if value == "0") == 0
            assert max(height for _, height in bars) > 20
            assert page.locator("#mm-chart-time polyline").count() >= 1

            path = ARTIFACTS / "admin-overview.png"
            page.screenshot(path=str(path), full_page=True)
            charts = page.locator(".mm-charts").screenshot()
            stats = page.evaluate(PIXEL_STATS, base64.b64encode(charts).decode())
            assert stats["differing"] > 0.02 and stats["colours"] > 8, stats
        finally:
            browser.close()

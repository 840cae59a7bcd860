"""The admin as an operator meets it: started by the run command, served by Daphne with
DEBUG off, used from a real (headless) Chromium.

The run command (``python -m animochat.launcher``, what ``make run`` runs) is started
once for this module with DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD, a
database of its own and the tests' Redis.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from animochat.embedded_redis import free_port
from tests.support.browser import CHROMIUM, NOT_INSTALLED, launch_chromium
from tests.support.servers import BASE_DIR
from tests.test_admin import SECTIONS, StreamReader, load_waiting_users

ADMIN_USERNAME = "ops"
ADMIN_PASSWORD = "correct horse battery staple"
ARTIFACTS = BASE_DIR / "test-artifacts"


def run_command_env(database: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "TEST_REDIS_URL")
    }
    env.update(
        REDIS_URL=settings.REDIS_URL,
        DATABASE_URL=f"sqlite:///{database}",
        DEBUG="false",
        PORT=str(free_port()),
        HOST="127.0.0.1",
        DISCOVERY_SERVER_URL="http://127.0.0.1:9/",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """``make run`` with the admin user named in the environment; yields its base URL."""
    workdir = tmp_path_factory.mktemp("run")
    env = run_command_env(
        workdir / "db.sqlite3",
        DJANGO_SUPERUSER_USERNAME=ADMIN_USERNAME,
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
    )
    log = (workdir / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "animochat.launcher"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(base + "/maintenance", timeout=1)
                break
            # Refused before the launcher binds; timed out while Daphne is not yet accepting.
            except (requests.ConnectionError, requests.Timeout):
                output = (workdir / "run.log").read_text()
                assert proc.poll() is None, output
                assert time.monotonic() < deadline, output
                time.sleep(0.2)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()


def log_in(base: str, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD):
    """A requests session logged in through the admin's own login form."""
    session = requests.Session()
    login_url = f"{base}/admin/login/"
    session.get(login_url, timeout=5)
    response = session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": login_url},
        timeout=5,
    )
    return session, response


def test_run_command_creates_the_admin_user(service):
    _, response = log_in(service)
    assert response.status_code == 200 and response.url == f"{service}/admin/"
    section = re.search(r'<div class="app-matchmaking module.*?</table>', response.text, re.S)
    assert section, "no Matchmaking section on the admin index"
    assert re.findall(r'aria-describedby="matchmaking-\w+">View</a>', section.group(0))
    for name in SECTIONS:
        assert f">{name}</a>" in section.group(0)

    _, refused = log_in(service, password="wrong")
    assert "Please enter the correct username and password" in refused.text


def test_admin_is_styled_with_debug_off(service):
    login_page = requests.get(f"{service}/admin/login/", timeout=5).text
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+\.css)"', login_page)
    assert "/static/admin/css/base.css" in stylesheets
    for href in stylesheets:
        response = requests.get(service + href, timeout=5)
        assert response.status_code == 200, href
        assert response.headers["content-type"].startswith("text/css")
    debug_only = requests.get(f"{service}/no-such-page", timeout=5)
    assert debug_only.status_code == 404 and "Traceback" not in debug_only.text


def test_large_queue_page_through_daphne(service, clean_redis):
    load_waiting_users(clean_redis, "BIG", 10_000)
    session, _ = log_in(service)
    url = f"{service}/admin/matchmaking/queues/waiting/?interest=BIG&page=137"
    session.get(url, timeout=5)  # templates compiled, connections made
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = session.get(url, timeout=5)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    assert "user-06800" in response.text and "user-06849" in response.text
    assert "user-06799" not in response.text and "user-06850" not in response.text
    print(
        "waiting page 137 of a 10,000-user queue through Daphne: "
        + ", ".join(f"{t * 1000:.1f}" for t in timings)
        + " ms"
    )
    assert max(timings) < 1.0  # the bound: "well under a second"


def test_ensure_admin_updates_the_password_and_refuses_without_the_variables(tmp_path):
    env = run_command_env(tmp_path / "db.sqlite3")

    def manage(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert manage("migrate", "--no-input", "-v", "0").returncode == 0
    missing = manage("ensure_admin")
    assert missing.returncode != 0
    assert "Set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD" in missing.stderr
    names = {"DJANGO_SUPERUSER_USERNAME": "boss"}
    first = manage("ensure_admin", **names, DJANGO_SUPERUSER_PASSWORD="first-password")
    assert first.returncode == 0 and "admin user 'boss' created" in first.stdout
    second = manage("ensure_admin", **names, DJANGO_SUPERUSER_PASSWORD="second-password")
    assert second.returncode == 0 and "admin user 'boss' updated" in second.stdout
    check = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.contrib.auth import authenticate as a;"
        "u = a(username='boss', password='second-password');"
        "print(u.is_staff, u.is_superuser, a(username='boss', password='first-password'))",
    )
    assert check.stdout.splitlines()[-1].split() == ["True", "True", "None"], check.stderr


@pytest.mark.skipif(
    CHROMIUM is None,
    reason=NOT_INSTALLED,
)
def test_operator_session_in_a_real_browser(service, clean_redis):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            # The pages refresh every 5 s: give assertions more than one refresh.
            expect.set_options(timeout=15_000)

            page.goto(f"{service}/admin/")
            expect(page).to_have_url(re.compile(r"/admin/login/"))
            page.fill("#id_username", ADMIN_USERNAME)
            page.fill("#id_password", ADMIN_PASSWORD)
            page.click("input[type=submit]")
            section = page.locator("#content-main .app-matchmaking")
            expect(section).to_contain_text("Matchmaking")
            # Styled by the admin's CSS, served by the app itself (DEBUG is off).
            header_bg = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
            assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent")

            section.get_by_role("link", name="Queues", exact=True).click()
            expect(page.locator("#mm-waiting-total")).to_have_text("0")
            page.evaluate("window.notReloaded = true")

            stream = StreamReader(service, "browser-user", "Browser Test,Anime")
            try:
                assert stream.next_event()["state"] == "WAITING"
                # The page refreshes itself: the user appears without a reload.
                expect(page.locator("#mm-waiting-total")).to_have_text("1")
                expect(page.locator("#mm-queues")).to_contain_text("BROWSER TEST")
                assert page.evaluate("window.notReloaded") is True
                page.screenshot(path=str(ARTIFACTS / "admin-queues.png"), full_page=True)

                page.get_by_role("link", name="BROWSER TEST").click()
                expect(page.locator("#mm-waiting")).to_contain_text("browser-user")
                expect(page.locator("#mm-waiting")).to_contain_text("ANIME")
                page.screenshot(path=str(ARTIFACTS / "admin-waiting.png"), full_page=True)

                page.goto(f"{service}/admin/matchmaking/popular/")
                expect(page.locator("#mm-popular")).to_contain_text("BROWSER TEST")
                page.screenshot(path=str(ARTIFACTS / "admin-popular.png"), full_page=True)

                page.goto(f"{service}/admin/matchmaking/maintenance/")
                expect(page.locator("#mm-maintenance-state")).to_have_text("Maintenance is OFF")
                page.click("#mm-maintenance-toggle")
                expect(page.locator("h1")).to_have_text("Turn maintenance on?")
                assert requests.get(f"{service}/maintenance", timeout=5).status_code == 200
                page.click("#mm-confirm")
                expect(page.locator("#mm-maintenance-state")).to_have_text("Maintenance is ON")
                page.screenshot(path=str(ARTIFACTS / "admin-maintenance.png"), full_page=True)
                public = requests.get(f"{service}/maintenance", timeout=5)
                assert public.status_code == 503 and public.json()["state"] == "MAINTENANCE"
                assert stream.next_change()["state"] == "MAINTENANCE"
            finally:
                stream.close()

            page.click("#mm-maintenance-toggle")
            page.click("#mm-confirm")
            expect(page.locator("#mm-maintenance-state")).to_have_text("Maintenance is OFF")
            assert requests.get(f"{service}/maintenance", timeout=5).status_code == 200
        finally:
            browser.close()

"""`make run`'s launcher: Redis resolution (embedded fallback) and serving end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests
from django.conf import settings

from animochat import launcher
from animochat.embedded_redis import free_port, redis_answers
from tests.support.servers import BASE_DIR


def launcher_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "TEST_REDIS_URL")
    }
    env.update(
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        HEARTBEAT_INTERVAL="1",
        DISCOVERY_SERVER_URL="http://127.0.0.1:9/",
        **extra,
    )
    return env


def test_embedded_redis_when_nothing_answers(monkeypatch):
    monkeypatch.setattr(launcher, "LOCAL_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    env, embedded = launcher.prepare_environment()
    try:
        assert embedded is not None
        assert env["REDIS_URL"] == embedded.url and redis_answers(embedded.url)
    finally:
        embedded.stop()
    assert not redis_answers(embedded.url)


def test_a_local_redis_that_answers_is_used(monkeypatch):
    answering = settings.REDIS_URL.rsplit("/", 1)[0]  # the tests' own Redis server
    monkeypatch.setattr(launcher, "LOCAL_REDIS_URL", answering)
    monkeypatch.delenv("REDIS_URL", raising=False)
    env, embedded = launcher.prepare_environment()
    assert embedded is None and env["REDIS_URL"] == answering


def test_unreachable_explicit_redis_url_refuses_clearly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "animochat.launcher"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=launcher_env(tmp_path, REDIS_URL="redis://127.0.0.1:1"),
    )
    assert proc.returncode == 2
    assert "REDIS_URL=redis://127.0.0.1:1 is not reachable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_configuration_refuses_with_one_line(tmp_path):
    env = launcher_env(tmp_path)
    env["PORT"] = "http"
    proc = subprocess.run(
        [sys.executable, "-m", "animochat.launcher"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "make run: configuration error: PORT must be a whole number, got 'http'"
    )


def test_serves_and_stops_everything_on_ctrl_c(tmp_path, clean_redis):
    env = launcher_env(tmp_path, REDIS_URL=settings.REDIS_URL, RATE_LIMIT_PER_MINUTE="100")
    proc = subprocess.Popen(
        [sys.executable, "-m", "animochat.launcher"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = requests.get(base + "/maintenance", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert response.json()["state"] == "ACTIVE"
        css = requests.get(base + "/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        # With no trusted proxy, the client's own X-Forwarded-For does not name it.
        for spoofed in ("198.18.0.1", "198.18.0.2"):
            requests.post(
                base + "/cancel_matchmaking",
                json={"userId": "spoofer"},
                headers={"X-Forwarded-For": spoofed},
                timeout=5,
            )
        assert {key.decode().split(":")[2] for key in clean_redis.keys("ratelimit:*")} == {
            "127.0.0.1"
        }
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert '"event": "serving"' in output and '"event": "stopping"' in output
    try:
        requests.get(base + "/maintenance", timeout=1)
        raise AssertionError("the server is still answering after Ctrl-C")
    except requests.ConnectionError:
        pass

"""The launcher: Redis resolution (embedded fallback), one port served by several
processes, and exits a process manager can act on."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import psutil
import requests
from django.conf import settings

from animochat import launcher
from animochat.embedded_redis import free_port, redis_answers
from tests.support.discovery_servers import wait_for
from tests.support.launcher import Launcher, launcher_env
from tests.support.servers import BASE_DIR


def test_embedded_redis_when_nothing_answers(monkeypatch):
    monkeypatch.setattr(launcher, "LOCAL_REDIS_URL", f"redis://127.0.0.1:{free_port()}")
    monkeypatch.delenv("REDIS_URL", raising=False)
    env, _, embedded = launcher.prepare_environment()
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
    env, _, embedded = launcher.prepare_environment()
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


def test_an_unreachable_cluster_refuses_clearly(tmp_path):
    nodes = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "animochat.launcher"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env=launcher_env(tmp_path, REDIS_CLUSTER_NODES=nodes),
    )
    assert proc.returncode == 2
    assert f"no Redis Cluster answers with its slots covered at REDIS_CLUSTER_NODES={nodes}" in (
        proc.stderr
    )
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
    run = Launcher(
        launcher_env(
            tmp_path,
            REDIS_URL=settings.REDIS_URL,
            WEB_CONCURRENCY="2",
            RATE_LIMIT_PER_MINUTE="100",
        )
    )
    try:
        run.wait_serving()
        response = requests.get(run.url + "/maintenance", timeout=5)
        assert response.json()["state"] == "ACTIVE"
        css = requests.get(run.url + "/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        # With no trusted proxy, the client's own X-Forwarded-For does not name it.
        for spoofed in ("198.18.0.1", "198.18.0.2"):
            requests.post(
                run.url + "/cancel_matchmaking",
                json={"userId": "spoofer"},
                headers={"X-Forwarded-For": spoofed},
                timeout=5,
            )
        assert {key.decode().split(":")[2] for key in clean_redis.keys("ratelimit:*")} == {
            "127.0.0.1"
        }
        children = [p["pid"] for p in run.wait_event("serving")["processes"]]
        assert sorted(p["name"] for p in run.wait_event("serving")["processes"]) == [
            "heartbeat",
            "sweep",
            "web",
            "web",
        ]
    finally:
        code = run.stop(signal.SIGINT)
    assert code == 0, run.output()
    assert run.events("stopping")
    assert not any(psutil.pid_exists(pid) for pid in children)
    assert not run.answers("/maintenance"), "the server is still answering after Ctrl-C"


def shared_port_backlog(port: int) -> int:
    """The backlog of the socket listening on ``port`` (``ss`` shows it as Send-Q)."""
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(listing[2])


def test_web_processes_share_one_port_and_stop_on_sigterm(tmp_path):
    env = launcher_env(tmp_path, REDIS_URL=settings.REDIS_URL, WEB_CONCURRENCY="2")
    run = Launcher(env, "web")
    try:
        run.wait_serving()
        web = run.pids("web")
        assert len(web) == 2 and [p["name"] for p in run.wait_event("serving")["processes"]] == [
            "web",
            "web",
        ]
        # One socket, bound once: one listener on the port, with the deep backlog.
        assert run.wait_event("serving")["backlog"] == launcher.listen_backlog()
        assert shared_port_backlog(int(env["PORT"])) == launcher.listen_backlog()
        # New connections reach both processes: each answer names its process.
        answered: set[int] = set()

        def both_answered() -> bool:
            body = requests.get(run.url + "/status", timeout=5).json()
            answered.add(body["serviceInfo"]["pid"])
            return answered == set(web)

        assert wait_for(both_answered, timeout=120, interval=0.01), (answered, web)
    finally:
        code = run.stop(signal.SIGTERM)
    assert code == 0, run.output()
    assert run.events("stopping") and not run.events("child exited")
    assert not any(psutil.pid_exists(pid) for pid in web)
    assert not run.answers()


def test_a_child_exiting_stops_the_others_and_fails(tmp_path):
    run = Launcher(launcher_env(tmp_path, REDIS_URL=settings.REDIS_URL, WEB_CONCURRENCY="2"), "web")
    try:
        run.wait_serving()
        crashed, survivor = run.pids("web")
        psutil.Process(crashed).kill()
        code = run.wait_exit(60)
    finally:
        run.stop()
    assert code == launcher.EXIT_CHILD_FAILED != 0, run.output()
    assert run.wait_event("child exited")["pid"] == crashed
    assert not psutil.pid_exists(survivor)
    assert not run.answers()


def test_unusable_port_refuses_clearly(tmp_path):
    env = launcher_env(tmp_path, REDIS_URL=settings.REDIS_URL, HOST="127.0.0.1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["PORT"])))
        taken.listen()
        run = Launcher(env, "web")
        code = run.wait_exit(60)
    assert code == 2
    assert f"make run: cannot listen on 127.0.0.1:{env['PORT']}" in run.output()
    assert "Traceback" not in run.output()

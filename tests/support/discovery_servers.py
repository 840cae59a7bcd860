"""Real processes for discovery tests: `manage.py discovery_server` and `manage.py heartbeat`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

from animochat.embedded_redis import free_port
from tests.support.servers import BASE_DIR, stop_process


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate()`` until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class ManagedProcess:
    """A ``manage.py`` command as a child process, logging to a temporary file."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "animochat.settings",
            "REDIS_URL": settings.REDIS_URL,
            **(env or {}),
        }
        self.log_path = Path(tempfile.mkstemp(prefix=f"{args[0]}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", *self.args],
                cwd=BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines are ignored)."""
        events = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "event" in entry:
                events.append(entry)
        return events

    def event_names(self) -> list[str]:
        return [entry["event"] for entry in self.events()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Signal the process and wait; returns its exit code."""
        if self.process is None:
            return None
        return stop_process(self.process, sig, timeout)


class DiscoveryServerProcess(ManagedProcess):
    """``manage.py discovery_server`` on a free port (kept across restarts)."""

    def __init__(self, down_after: float | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        args = ["discovery_server", "--port", str(self.port)]
        if down_after is not None:
            args += ["--down-after", str(down_after)]
        super().__init__(args)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> DiscoveryServerProcess:
        self.spawn()
        if not wait_for(self.answers, timeout, 0.1):
            self.stop()
            raise RuntimeError(f"discovery_server did not answer:\n{self.log()}")
        return self

    def answers(self) -> bool:
        if not self.running():
            raise RuntimeError(f"discovery_server exited:\n{self.log()}")
        try:
            return requests.get(self.url + "/services", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def register(self, service_name: str, version: str, url: str) -> int:
        body = {"serviceName": service_name, "version": version, "url": url}
        return requests.post(self.url + "/register", json=body, timeout=5).status_code

    def unregister(self, service_name: str, version: str, url: str) -> int:
        body = {"serviceName": service_name, "version": version, "url": url}
        return requests.delete(self.url + "/unregister", json=body, timeout=5).status_code

    def requests_seen(self) -> list[dict[str, Any]]:
        return requests.get(self.url + "/_requests", timeout=5).json()


class HeartbeatProcess(ManagedProcess):
    """``manage.py heartbeat`` with the given environment (``--interval`` optional)."""

    def __init__(self, env: dict[str, str], interval: float | None = None) -> None:
        args = ["heartbeat"] if interval is None else ["heartbeat", "--interval", str(interval)]
        super().__init__(args, env)

    def start(self) -> HeartbeatProcess:
        self.spawn()
        return self

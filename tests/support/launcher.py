"""The launcher (``animochat-matchmaking``) as a real child process, its JSON log read live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

from animochat.embedded_redis import free_port
from tests.support.discovery_servers import wait_for
from tests.support.servers import BASE_DIR, stop_process


def launcher_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test run's environment for a launcher on a free port, minus the test Redis."""
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


class Launcher:
    """``python -m animochat.launcher [args]``; every line it prints is kept."""

    def __init__(
        self,
        env: dict[str, str],
        *args: str,
        command: list[str] | None = None,
        cwd: Path = BASE_DIR,
    ) -> None:
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "animochat.launcher"]), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def events(self, name: str) -> list[dict]:
        found = []
        for line in list(self.lines):
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("event") == name:
                    found.append(entry)
        return found

    def wait_event(self, name: str, timeout: float = 90) -> dict:
        assert wait_for(lambda: self.events(name) or self.process.poll() is not None, timeout)
        assert self.events(name), self.output()
        return self.events(name)[0]

    def pids(self, name: str) -> list[int]:
        serving = self.wait_event("serving")
        return [p["pid"] for p in serving["processes"] if p["name"] == name]

    def answers(self, path: str = "/healthz") -> bool:
        try:
            return requests.get(self.url + path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_serving(self, timeout: float = 90) -> None:
        assert wait_for(lambda: self.answers() or self.process.poll() is not None, timeout)
        assert self.process.poll() is None, self.output()

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> int:
        code = stop_process(self.process, sig, 60)
        self.reader.join(10)
        return code

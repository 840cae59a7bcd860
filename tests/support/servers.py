"""Real server processes for integration tests: Daphne serving the project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from animochat.embedded_redis import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def stop_process(process: subprocess.Popen, sig: int, timeout: float) -> int:
    """Signal ``process`` unless it has ended, wait (killing it past ``timeout``)."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class DaphneProcess:
    """``daphne animochat.asgi:application`` on a free port, logging to a file."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "animochat.settings", **(env or {})}
        self.log_path = Path(tempfile.mkstemp(prefix="daphne-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> DaphneProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "animochat.serve",  # as the launcher starts Daphne
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                # As animochat/launcher.py serves it: no access log.
                "-v",
                "0",
                "animochat.asgi:application",
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                # Any answer will do (with https settings, a redirect to https).
                requests.get(self.url + "/maintenance", timeout=1, allow_redirects=False)
                return self
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"daphne did not answer:\n{self.log()}") from None
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.process is not None:
            stop_process(self.process, sig, timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

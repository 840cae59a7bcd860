"""``manage.py sweep_queues`` removes ghosts anywhere in the queues, not just at heads."""

from __future__ import annotations

import os
import subprocess
import sys

from matchmaking import selectors, services
from tests.support.servers import BASE_DIR


async def test_sweep_command_removes_lapsed_waiters_only(aredis, settings):
    # Leases that outlive the command's start-up (seconds on a busy machine): only the
    # leases deleted below have lapsed.
    settings.LEASE_SECONDS = 600
    # Distinct interests: nobody matches, so everyone stays queued.
    for n in range(30):
        await services.enqueue_or_match(
            f"u{n}", [f"I{n}", "SHARED" if n == 0 else f"J{n}"], f"t{n}"
        )
    for n in range(0, 30, 3):
        await aredis.delete(f"lease:u{n}")  # their server was killed
    proc = subprocess.run(
        [sys.executable, "manage.py", "sweep_queues", "--once"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert '"event": "swept_lapsed_waiters", "removed": 10' in proc.stderr
    overview = await selectors.queue_overview()
    assert overview.users_in_queue == 20 and overview.queue_count == 40
    queued = await aredis.zrange("queue:sizes", 0, -1)
    assert "SHARED" not in queued and "I0" not in queued and "I1" in queued
    assert not await aredis.exists("user_interests:u3")
    assert await aredis.exists("user_interests:u4")


def test_sweep_command_with_redis_down_says_so_once():
    proc = subprocess.run(
        [sys.executable, "manage.py", "sweep_queues", "--once"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "TEST_REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    assert proc.returncode == 0
    assert proc.stderr.count('"event": "redis_unavailable"') == 1
    assert "Traceback" not in proc.stderr

"""Maintenance shared through Redis: the command, the endpoints and waiting streams."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.support.servers import BASE_DIR
from tests.support.sse_client import open_stream


def maintenance_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "maintenance", *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_command_closes_waiting_streams_on_another_process(daphne_pair):
    first, second = daphne_pair
    waiting = [
        await open_stream(server.url, params={"userId": f"m{n}", "interests": f"M{n}"})
        for n, server in enumerate(daphne_pair)
    ]
    for stream in waiting:
        assert (await stream.next_event())["state"] == "WAITING"
    try:
        result = maintenance_command("on", "--message", "Back in 5 minutes.")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "MAINTENANCE"
        for stream in waiting:
            assert await stream.next_change() == {
                "state": "MAINTENANCE",
                "code": "MAINTENANCE",
                "message": "Back in 5 minutes.",
            }
            assert await stream.next_change() is None

        for server in (first, second):
            response = requests.get(server.url + "/maintenance", timeout=5)
            assert response.status_code == 503 and response.json()["state"] == "MAINTENANCE"
            assert response.json()["code"] == "MAINTENANCE"
            popular = requests.get(server.url + "/interests/popular", timeout=5)
            assert popular.status_code == 503 and popular.json()["code"] == "MAINTENANCE"
            assert requests.get(server.url + "/status", timeout=5).json()["serviceState"] == (
                "MAINTENANCE"
            )
        refused = await open_stream(first.url, params={"userId": "late"})
        assert refused.status == 503
        assert (await refused.next_event())["code"] == "MAINTENANCE"
        assert maintenance_command("status").stdout.strip() == "MAINTENANCE"
    finally:
        assert maintenance_command("off").stdout.strip() == "ACTIVE"
    response = requests.get(second.url + "/maintenance", timeout=5)
    assert response.status_code == 200
    assert response.json() == {
        "state": "ACTIVE",
        "message": "The matchmaking service is operational.",
    }


async def test_initial_value_from_environment(daphne_factory):
    server = daphne_factory(MAINTENANCE_MODE="true")
    assert requests.get(server.url + "/maintenance", timeout=5).status_code == 503
    stream = await open_stream(server.url, params={"userId": "x"})
    assert stream.status == 503


def test_command_rejects_unknown_action():
    result = maintenance_command("maybe")
    assert result.returncode != 0 and "invalid choice" in result.stderr

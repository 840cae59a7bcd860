"""``pip install .`` makes a working service, and the Procfile's commands run from it.

The wheel is built from a copy of the checkout and installed into a fresh virtual
environment outside it; every command then runs from an empty temporary directory, so
nothing can be imported from the checkout. The dependencies come from the test run's
own environment (a path file), so nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.support.launcher import Launcher, launcher_env
from tests.support.servers import BASE_DIR
from tests.test_admin_live import log_in

PACKAGES = ("animochat", "matchmaking", "sessions_app", "discovery")
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "__pycache__",
    "staticfiles",
    "db.sqlite3",
    ".env",
    ".secret_key",
    "test-artifacts",
    ".*_cache",
    ".hypothesis",
)


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **options)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("build")
    # A copy: setuptools keeps build/ in the source tree, where a file deleted from the
    # checkout would live on and be shipped.
    source = root / "source"
    shutil.copytree(BASE_DIR, source, ignore=NOT_SOURCE)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip_wheel, "-w", str(root / "dist"), str(source)])
    (built,) = (root / "dist").glob("animochat_matchmaking-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A virtual environment holding the wheel; returns its ``bin`` directory."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    pip_install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    run([*pip_install, "--no-deps", str(wheel)])
    # Only now the dependencies: pip saw an empty environment. A bare path line adds the
    # directory without running its .pth files (an editable install of the checkout).
    (target,) = Path(venv / "lib").glob("python3*/site-packages")
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


@pytest.fixture
def workdir(tmp_path) -> Path:
    """An empty directory to run from, where the service keeps its files."""
    directory = tmp_path / "service"
    directory.mkdir()
    return directory


def installed_env(bin_dir: Path, workdir: Path, **extra: str) -> dict[str, str]:
    env = launcher_env(workdir, REDIS_URL=settings.REDIS_URL, WEB_CONCURRENCY="1", **extra)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return env


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for package in PACKAGES:
        for path in (BASE_DIR / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                name = path.relative_to(BASE_DIR).as_posix()
                assert name in shipped, f"{name} is not in the wheel"
    assert not [name for name in shipped if name.startswith(("tests/", "bench/"))]


def test_the_installed_service_runs_from_anywhere(installed, workdir):
    env = installed_env(installed, workdir)
    where = run(
        ["python", "-c", "import animochat, matchmaking; print(animochat.__file__)"],
        cwd=workdir,
        env=env,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)), where
    usage = run(["animochat-matchmaking", "--help"], cwd=workdir, env=env).stdout
    assert "web" in usage and "manage" in usage


def procfile() -> dict[str, str]:
    lines = (BASE_DIR / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_every_procfile_command_starts_from_the_installed_service(installed, workdir):
    commands = procfile()
    assert set(commands) == {"release", "web", "heartbeat", "sweep"}
    env = installed_env(
        installed,
        workdir,
        DJANGO_SUPERUSER_USERNAME="operator",
        DJANGO_SUPERUSER_PASSWORD="a long enough password",
    )

    # The release step migrates the database and collects static files into this directory.
    run(["sh", "-c", commands["release"]], cwd=workdir, env=env)
    assert (workdir / "db.sqlite3").is_file()
    assert (workdir / "staticfiles" / "admin" / "css" / "base.css").is_file()
    run(["python", "-m", "animochat.manage", "ensure_admin"], cwd=workdir, env=env)

    for worker in ("heartbeat", "sweep"):
        usage = run(["sh", "-c", commands[worker] + " --help"], cwd=workdir, env=env).stdout
        assert "--interval" in usage, worker

    web = Launcher(env, command=["sh", "-c", f"exec {commands['web']}"], cwd=workdir)
    try:
        web.wait_serving()
        # Lua scripts from the wheel: readiness loads them into Redis.
        ready = requests.get(web.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        popular = requests.get(web.url + "/interests/popular", timeout=5)
        assert popular.status_code == 200 and popular.json() == []
        # Templates from the wheel: an admin page of the Matchmaking section.
        session, _ = log_in(web.url, "operator", "a long enough password")
        page = session.get(web.url + "/admin/matchmaking/queues/", timeout=10)
        assert page.status_code == 200 and 'id="mm-queues"' in page.text, page.text[:500]
        css = requests.get(web.url + "/static/admin/css/base.css", timeout=5)
        assert css.status_code == 200
    finally:
        code = web.stop(signal.SIGTERM)
    assert code == 0, web.output()

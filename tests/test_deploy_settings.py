"""Deployment settings: Django's own deploy checks, https behaviour through a real
Daphne, and the generated ``.secret_key``."""

from __future__ import annotations

import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings

from animochat import launcher
from tests.support.servers import BASE_DIR

PUBLIC = "https://mm.example.com"


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "TEST_REDIS_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=BASE_DIR,
        env={
            **base,
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "REDIS_URL": settings.REDIS_URL,
            "RENDER_EXTERNAL_URL": "",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"RENDER_EXTERNAL_URL": PUBLIC, "TRUSTED_PROXY_HOPS": "1"},
        {"SECURE_COOKIES": "true", "TRUSTED_PROXY_HOPS": "2"},
    ],
)
def test_deploy_check_passes_behind_https(env):
    done = deploy_check(**env)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr


def test_deploy_check_warns_without_https():
    plain = deploy_check()
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in plain.stderr, plain.stderr
    # No trusted proxy reports the scheme: redirecting to https could loop, so it is off.
    unproxied = deploy_check(RENDER_EXTERNAL_URL=PUBLIC)
    assert "security.W008" in unproxied.stderr and "security.W012" not in unproxied.stderr
    assert "security.W012" in deploy_check(RENDER_EXTERNAL_URL=PUBLIC, SECURE_COOKIES="no").stderr


def get(server, path: str, proto: str, forwarded_for: str | None = None) -> requests.Response:
    headers = {"X-Forwarded-Proto": proto}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return requests.get(server.url + path, headers=headers, allow_redirects=False, timeout=10)


def test_https_through_a_trusted_proxy(daphne_factory):
    server = daphne_factory(
        RENDER_EXTERNAL_URL=PUBLIC,
        TRUSTED_PROXY_HOPS="1",
        ALLOWED_HOSTS="127.0.0.1,mm.example.com",
    )
    secure = get(server, "/admin/login/", "https", forwarded_for="203.0.113.7")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    cookie = next(c for c in secure.cookies if c.name == "csrftoken")
    assert cookie.secure
    plain = get(server, "/admin/login/", "http", forwarded_for="203.0.113.7")
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")


def test_a_forged_proto_header_is_not_believed_without_a_trusted_proxy(daphne_factory):
    server = daphne_factory(RENDER_EXTERNAL_URL=PUBLIC, ALLOWED_HOSTS="127.0.0.1")
    forged = get(server, "/admin/login/", "https")
    assert forged.status_code == 200  # no redirect loop with no proxy to report https
    assert "Strict-Transport-Security" not in forged.headers  # not taken for https
    assert next(c for c in forged.cookies if c.name == "csrftoken").secure


@pytest.fixture
def key_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / ".secret_key"
    monkeypatch.setattr(launcher, "SECRET_KEY_FILE", path)
    return path


def test_secret_key_file_is_created_private(key_file, monkeypatch):
    # Created private, not made private afterwards: with any chmod refused and a umask
    # that hides nothing, the file still never has more than 0600.
    def refuse(*args, **kwargs):
        raise AssertionError("chmod called")

    monkeypatch.setattr(Path, "chmod", refuse)
    monkeypatch.setattr(os, "chmod", refuse)
    old_umask = os.umask(0)
    try:
        key = launcher.local_secret_key()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key) >= 50 and key_file.read_text() == key
    assert launcher.local_secret_key() == key  # kept
    assert [p.name for p in key_file.parent.iterdir()] == [".secret_key"]  # no leftovers


def test_an_existing_readable_secret_key_file_is_made_private(key_file):
    key_file.write_text("kept-key")
    key_file.chmod(0o644)
    assert launcher.local_secret_key() == "kept-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_generated_key_with_a_public_url_is_warned_about(key_file, monkeypatch, capsys):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("REDIS_URL", settings.REDIS_URL)
    monkeypatch.setenv("RENDER_EXTERNAL_URL", PUBLIC)
    env, _, _ = launcher.prepare_environment()
    assert env["SECRET_KEY"] == key_file.read_text()
    [warning] = [
        e for e in log_lines(capsys.readouterr().err) if e["event"] == "secret_key_per_instance"
    ]
    assert warning["level"] == "WARNING" and "same SECRET_KEY" in warning["message"]

    monkeypatch.setenv("SECRET_KEY", "set-for-every-instance")
    launcher.prepare_environment()
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("RENDER_EXTERNAL_URL", "")
    launcher.prepare_environment()
    events = [e["event"] for e in log_lines(capsys.readouterr().err)]
    assert "secret_key_per_instance" not in events

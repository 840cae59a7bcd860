"""The admin's log-in throttle (counted in the real Redis) and ``ensure_admin``'s
password rules.

In-process through the Django test client, and across two real Daphne processes
sharing one database and one Redis: a lock earned on one process holds on the other.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from animochat.login_throttle import FAILURE_LIMIT, LOCKOUT_SECONDS
from tests.support.discovery_servers import wait_for
from tests.support.servers import BASE_DIR

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
PASSWORD = "a long enough pass phrase"


def attempt(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("ops", "", PASSWORD, is_staff=True)


def test_five_failures_lock_the_username_and_address_for_fifteen_minutes(staff, clean_redis):
    client = Client()
    for _ in range(FAILURE_LIMIT):
        response = attempt(client, "ops", "wrong")
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()
    [key] = clean_redis.keys("login_failures:*")
    assert len(key) < 60
    assert LOCKOUT_SECONDS - 5 <= clean_redis.ttl(key) <= LOCKOUT_SECONDS

    refused = attempt(client, "ops", PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= LOCKOUT_SECONDS
    assert "Too many failed log-ins" in refused.content.decode()
    assert not logged_in(client)
    assert attempt(client, "OPS", PASSWORD).status_code == 429  # nor by changing case

    # Another address, or another username from this address, is not locked.
    assert attempt(client, "ops", PASSWORD, address="203.0.113.9").status_code == 302
    assert logged_in(client)
    assert attempt(Client(), "someone-else", "wrong").status_code == 200
    # An IPv6 client is one client across its /64.
    for n in range(FAILURE_LIMIT):
        attempt(Client(), "ops", "wrong", address=f"2001:db8:1:2::{n + 1}")
    assert attempt(Client(), "ops", PASSWORD, address="2001:db8:1:2:ffff::9").status_code == 429
    assert attempt(Client(), "ops", PASSWORD, address="2001:db8:1:3::1").status_code == 302

    # Refused attempts are not counted (nor do they extend the lock); once the lock
    # expires (brought forward here), the right password works again.
    assert clean_redis.get(key) == str(FAILURE_LIMIT).encode()
    clean_redis.pexpire(key, 50)
    assert wait_for(lambda: not clean_redis.exists(key))
    fresh = Client()
    assert attempt(fresh, "ops", PASSWORD).status_code == 302 and logged_in(fresh)


def test_a_successful_log_in_resets_the_count(staff, clean_redis):
    client = Client()
    for _ in range(FAILURE_LIMIT - 1):
        attempt(client, "ops", "wrong")
    assert attempt(client, "ops", PASSWORD).status_code == 302
    assert clean_redis.keys("login_failures:*") == []
    for _ in range(FAILURE_LIMIT - 1):
        attempt(Client(), "ops", "wrong")
    assert attempt(Client(), "ops", PASSWORD).status_code == 302


@pytest.fixture
def shared_database(tmp_path):
    """A migrated database with the staff user "ops", for processes to share."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    env["DJANGO_SETTINGS_MODULE"] = "animochat.settings"
    env.update(DJANGO_SUPERUSER_USERNAME="ops", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    for command in (["migrate", "--no-input", "-v", "0"], ["ensure_admin"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=BASE_DIR, env=env, check=True, timeout=120
        )
    return env["DATABASE_URL"]


def form_attempt(base: str, username: str, password: str) -> requests.Response:
    session = requests.Session()
    session.get(f"{base}/admin/login/", timeout=10)
    return session.post(
        f"{base}/admin/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        allow_redirects=False,
        timeout=10,
    )


def test_the_lock_holds_across_processes(shared_database, daphne_factory):
    first = daphne_factory(DATABASE_URL=shared_database)
    second = daphne_factory(DATABASE_URL=shared_database)
    assert form_attempt(second.url, "ops", PASSWORD).status_code == 302  # the user exists
    for _ in range(FAILURE_LIMIT):
        assert form_attempt(first.url, "ops", "wrong").status_code == 200
    refused = form_attempt(second.url, "ops", PASSWORD)
    assert refused.status_code == 429 and "sessionid" not in refused.cookies
    lock_line = [line for line in first.log().splitlines() if "admin_login_locked" in line]
    assert len(lock_line) == 1 and PASSWORD not in lock_line[0] and "wrong" not in lock_line[0]


def test_ensure_admin_applies_the_password_validators(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "administrator")
    for weak in ("short", "password123", "12345678901", "administrator1"):
        monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", weak)
        with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD is refused"):
            call_command("ensure_admin")
    assert not django_user_model.objects.filter(username="administrator").exists()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("ensure_admin")
    assert django_user_model.objects.get(username="administrator").check_password(PASSWORD)

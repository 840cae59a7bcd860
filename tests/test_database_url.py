"""DATABASE_URL: SQLite or PostgreSQL, its query parameters kept, against a real server.

The PostgreSQL tests use the server at ``TEST_POSTGRES_URL`` (default: the local one,
``postgresql://postgres@127.0.0.1:5432/test``), in a database of their own that they
create and drop.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from animochat import config
from animochat.settings import database_settings
from tests.support.servers import BASE_DIR

SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def test_postgres_url_becomes_django_settings_with_its_options():
    settings = database_settings(
        "postgresql://matcher:p%40ss@db.example.com:6543/animochat?sslmode=require"
    )
    assert settings["ENGINE"] == "django.db.backends.postgresql"
    assert (settings["NAME"], settings["USER"], settings["PASSWORD"]) == (
        "animochat",
        "matcher",
        "p@ss",
    )
    assert (settings["HOST"], settings["PORT"]) == ("db.example.com", 6543)
    assert settings["OPTIONS"] == {"sslmode": "require"}
    assert database_settings("postgres://u@h/app")["ENGINE"] == "django.db.backends.postgresql"


def test_sqlite_url_keeps_its_path():
    settings = database_settings("sqlite:////srv/animochat/db.sqlite3")
    assert settings["ENGINE"] == "django.db.backends.sqlite3"
    assert settings["NAME"] == "/srv/animochat/db.sqlite3"


def test_postgres_without_its_driver_says_what_to_install(monkeypatch):
    monkeypatch.setattr(config.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(
        config.ConfigError, match=r"pip install 'animochat-matchmaking\[postgres\]'"
    ):
        config.load_config({"SECRET_KEY": "k", "DATABASE_URL": "postgresql://u@h/app"})
    sqlite = config.load_config({"SECRET_KEY": "k", "DATABASE_URL": "sqlite:///db.sqlite3"})
    assert sqlite.database_url == "sqlite:///db.sqlite3"


@pytest.fixture
def scratch_database():
    """A database of this test's own on the PostgreSQL server; yields its URL."""
    name = f"animochat_test_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(SERVER_URL)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}", query=""))
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "animochat.settings",
        "DATABASE_URL": url,
        "DJANGO_SUPERUSER_USERNAME": "operator",
        "DJANGO_SUPERUSER_PASSWORD": "a long enough password",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_migrate_and_admin_user_on_postgres(scratch_database):
    url = scratch_database + "?sslmode=disable&connect_timeout=5"
    for args in (("check", "--database", "default"), ("migrate", "--no-input"), ("ensure_admin",)):
        result = manage(url, *args)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with psycopg.connect(scratch_database) as connection:
        users = connection.execute("SELECT username, is_staff FROM auth_user").fetchall()
    assert users == [("operator", True)]


def test_sslmode_reaches_the_driver(scratch_database):
    """A TLS demand that cannot be met, whether or not this server speaks TLS: the
    connection fails only if the URL's parameters reach the driver (without them it
    succeeds, as the test above shows)."""
    unmeetable = "sslmode=verify-full&sslrootcert=/nonexistent/root.crt"
    result = manage(f"{scratch_database}?{unmeetable}", "migrate", "--no-input")
    assert result.returncode != 0
    assert "SSL" in result.stderr or "root certificate" in result.stderr, result.stderr[-2000:]

"""Configuration parsing: good values, bad values, and the one-line start-up error."""

import dataclasses
import subprocess
import sys

import pytest
from django.conf import settings

from animochat.config import (
    DEFAULT_CHAT_SERVER_URLS,
    SETTINGS,
    Computed,
    ConfigError,
    comma_list,
    interest_list,
    load_config,
    read_dotenv,
    text,
)
from tests import settings as test_settings
from tests.support.servers import BASE_DIR

BASE = {"SECRET_KEY": "k"}


def config(**env):
    return load_config({**BASE, **env}, base_dir=BASE_DIR)


def test_defaults():
    c = config()
    assert c.port == 3000
    assert c.redis_url == "redis://localhost:6379" and "REDIS_URL" not in c.given
    assert c.chat_server_urls == DEFAULT_CHAT_SERVER_URLS
    assert c.debug is False and c.maintenance_mode is False
    assert c.keepalive_seconds == 15 and c.lease_seconds == 30
    assert c.heartbeat_interval == 5
    assert c.cors_allowed_origins == ("*",)
    assert c.sse_retry_ms == 3000 and c.default_fallback_after is None


def test_good_values():
    c = config(
        PORT="8080",
        REDIS_URL="rediss://user:pw@cache:6380/2",
        DEBUG="yes",
        MAINTENANCE_MODE="on",
        CHAT_SERVER_URLS="https://a.example/, http://b.example",
        RENDER_EXTERNAL_URL="https://mm.example.com/",
        HEARTBEAT_INTERVAL="14.5",
        SSE_RETRY_MS="500",
        DEFAULT_FALLBACK_AFTER="2.5",
    )
    assert c.port == 8080 and "REDIS_URL" in c.given and c.debug and c.maintenance_mode
    assert c.chat_server_urls == ("https://a.example", "http://b.example")
    assert c.render_external_url == "https://mm.example.com"
    assert "mm.example.com" in c.allowed_hosts
    assert c.heartbeat_interval == 14.5
    assert c.sse_retry_ms == 500 and c.default_fallback_after == 2.5
    assert config(DEFAULT_FALLBACK_AFTER="0").default_fallback_after == 0


def test_sentinels():
    assert config().redis_sentinels == () and config().redis_master_name == "mymaster"
    c = config(REDIS_SENTINELS=" s1:26379, [::1]:26380,10.0.0.3:5000 ", REDIS_MASTER_NAME="mm")
    assert c.redis_sentinels == (("s1", 26379), ("::1", 26380), ("10.0.0.3", 5000))
    assert c.redis_master_name == "mm"


def test_cluster_nodes_and_match_pools():
    assert config().redis_cluster_nodes == () and config().match_pools == ("default",)
    c = config(REDIS_CLUSTER_NODES="10.0.0.1:7000, 10.0.0.2:7001", MATCH_POOLS=" eu,us ,eu")
    assert c.redis_cluster_nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert c.match_pools == ("eu", "us")


def test_secure_cookies_follow_an_https_public_url_unless_set():
    assert config().secure_cookies is False
    assert config(RENDER_EXTERNAL_URL="http://mm.example.com").secure_cookies is False
    assert config(RENDER_EXTERNAL_URL="https://mm.example.com").secure_cookies is True
    assert config(SECURE_COOKIES="true").secure_cookies is True
    off = config(RENDER_EXTERNAL_URL="https://mm.example.com", SECURE_COOKIES="false")
    assert off.secure_cookies is False


def test_chat_server_allowed_hosts():
    assert config().chat_server_allowed_hosts == ()  # any host
    hosts = config(
        CHAT_SERVER_ALLOWED_HOSTS=" Chat.Example.com, .onrender.com ,"
    ).chat_server_allowed_hosts
    assert hosts == ("chat.example.com", ".onrender.com")


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 2), (8, 8), (32, 8)])
def test_web_concurrency_defaults_to_the_cores_up_to_8(monkeypatch, cores, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)))
    assert config().web_concurrency == expected
    assert config(WEB_CONCURRENCY="12").web_concurrency == 12


def test_launcher_settings():
    assert config().host == "0.0.0.0" and config(HOST="127.0.0.1").host == "127.0.0.1"
    assert config().access_log is False and config(ACCESS_LOG="true").access_log is True


def test_empty_chat_server_list_is_allowed():
    assert config(CHAT_SERVER_URLS="").chat_server_urls == ()


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"SSE_RETRY_MS": "10"}, "SSE_RETRY_MS"),
        ({"DEFAULT_FALLBACK_AFTER": "601"}, "DEFAULT_FALLBACK_AFTER"),
        ({"DEFAULT_FALLBACK_AFTER": "soon"}, "DEFAULT_FALLBACK_AFTER"),
        ({"PORT": "70000"}, "PORT"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:notaport"}, "REDIS_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"MAINTENANCE_MODE": "2"}, "MAINTENANCE_MODE"),
        ({"CHAT_SERVER_URLS": "ftp://x"}, "CHAT_SERVER_URLS"),
        ({"CHAT_SERVER_ALLOWED_HOSTS": "https://chat.example"}, "CHAT_SERVER_ALLOWED_HOSTS"),
        ({"SECURE_COOKIES": "sometimes"}, "SECURE_COOKIES"),
        ({"CHAT_SERVER_ALLOWED_HOSTS": "a.example,b example"}, "CHAT_SERVER_ALLOWED_HOSTS"),
        ({"DISCOVERY_SERVER_URL": "not a url"}, "DISCOVERY_SERVER_URL"),
        ({"HEARTBEAT_INTERVAL": "15"}, "HEARTBEAT_INTERVAL"),
        ({"KEEPALIVE_SECONDS": "10", "LEASE_SECONDS": "5"}, "LEASE_SECONDS"),
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"TRUSTED_PROXY_HOPS": "-1"}, "TRUSTED_PROXY_HOPS"),
        ({"TRUSTED_PROXY_HOPS": "one"}, "TRUSTED_PROXY_HOPS"),
        ({"REDIS_SENTINELS": "sentinel-a"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:26379,b:port"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": ":26379"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:0"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "a:\u00b2"}, "REDIS_SENTINELS"),  # isdigit(), yet not int()
        ({"REDIS_SENTINELS": "a:1", "REDIS_URL": "unix:///tmp/r.sock"}, "REDIS_SENTINELS"),
        ({"REDIS_CLUSTER_NODES": "a:1", "REDIS_SENTINELS": "b:2"}, "REDIS_CLUSTER_NODES"),
        ({"REDIS_CLUSTER_NODES": "a:1", "REDIS_URL": "unix:///tmp/r.sock"}, "REDIS_CLUSTER_NODES"),
        ({"MATCH_POOLS": "EU"}, "MATCH_POOLS"),
        ({"MATCH_POOLS": "{p:eu}"}, "MATCH_POOLS"),
        ({"MATCH_POOLS": ","}, "MATCH_POOLS"),
        ({"AUTH_JWT_SECRET": "s" * 31}, "AUTH_JWT_SECRET"),
        ({"AUTH_JWKS_URL": "ftp://keys.example"}, "AUTH_JWKS_URL"),
        ({"AUTH_JWKS_URL": "http://keys.example/jwks.json"}, "AUTH_JWKS_URL"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
        ({"HOST": "localhost"}, "HOST"),
        ({"HOST": "::"}, "HOST"),
        ({"ACCESS_LOG": "loud"}, "ACCESS_LOG"),
    ],
)
def test_bad_values_name_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        config(**env)


def test_log_level_error_lists_every_level_it_accepts():
    with pytest.raises(ConfigError) as refused:
        config(LOG_LEVEL="loud")
    assert str(refused.value) == (
        "LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got 'LOUD'"
    )
    assert config(LOG_LEVEL="critical").log_level == "CRITICAL"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_a_malformed_value_of_any_setting_is_refused_naming_it(setting):
    try:
        config(**{setting.name: "\u00b2 not:a:value"})
    except ConfigError as error:
        assert str(error).startswith(setting.name)
    else:  # free text: names, keys, passwords, lists of names
        assert setting.parse in (text, comma_list, interest_list)


def test_an_empty_value_means_unset_except_for_lists_and_the_audience():
    empty = {s.name: "" for s in SETTINGS}
    c = config(**{**empty, "SECRET_KEY": "k", "RENDER_EXTERNAL_URL": "https://mm.example"})
    assert c.demo_page is True and c.secure_cookies is True and c.port == 3000
    assert c.chat_server_urls == () and c.popular_blocklist == ()
    assert c.auth_jwt_audience == ""
    assert c.given == {"SECRET_KEY", "RENDER_EXTERNAL_URL"} | {
        s.name for s in SETTINGS if s.keeps_empty
    }


def test_django_settings_are_the_declared_ones_under_their_names():
    # The settings module as loaded (the test runner adds "testserver" to ALLOWED_HOSTS).
    for s in SETTINGS:
        if s.django:
            assert getattr(test_settings, s.name) == getattr(test_settings.CONFIG, s.field)
        else:  # the launcher's alone (PORT…), or made into Django's own (DATABASES…)
            assert not hasattr(settings, s.name), s.name


def test_defaults_and_checks_read_only_settings_declared_before_them():
    parsed = dataclasses.asdict(config(DEBUG="true"))
    for index, s in enumerate(SETTINGS):
        before = {earlier.field: parsed[earlier.field] for earlier in SETTINGS[:index]}
        # A KeyError here names a setting that is declared after the one reading it.
        if isinstance(s.default, Computed):
            s.default.compute(before, BASE_DIR)
        if s.check is not None:
            s.check(parsed[s.field], before)


def test_secrets_stay_out_of_the_configuration_repr():
    c = config(SECRET_KEY="s" * 40, AUTH_JWT_SECRET="j" * 40, DJANGO_SUPERUSER_PASSWORD="pw-1")
    assert "s" * 40 not in repr(c) and "j" * 40 not in repr(c) and "pw-1" not in repr(c)
    assert "port=3000" in repr(c)


def test_demo_page_is_on_unless_turned_off():
    assert config().demo_page is True
    assert config(DEMO_PAGE="false").demo_page is False
    with pytest.raises(ConfigError, match="DEMO_PAGE must be true or false"):
        config(DEMO_PAGE="sometimes")


def test_debug_allows_missing_secret_key():
    assert load_config({"DEBUG": "true"}, base_dir=BASE_DIR).secret_key


def test_dotenv_parsing(tmp_path):
    path = tmp_path / ".env"
    path.write_text("# comment\nexport PORT=4000\nREDIS_URL='redis://x:1'\n\nA=\"b c\"\n")
    assert read_dotenv(path) == {"PORT": "4000", "REDIS_URL": "redis://x:1", "A": "b c"}
    path.write_text("NOEQUALS\n")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        read_dotenv(path)


def test_malformed_value_stops_startup_with_one_line():
    env = {"PATH": "/usr/bin:/bin", "SECRET_KEY": "k", "PORT": "not-a-number"}
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "Configuration error: PORT must be a whole number, got 'not-a-number'"
    )

"""Service configuration read from the environment and an optional ``.env`` file.

Every setting is parsed here, once, into a frozen :class:`Config`. A bad value raises
:class:`ConfigError` whose message names the variable, so start-up can stop with one
clear line instead of a traceback deep inside Django or Daphne.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from animochat.clientaddr import is_loopback

# Run from a checkout, the service keeps its files (.env, .secret_key, db.sqlite3,
# staticfiles) in the checkout; installed from a wheel (site-packages), in the working
# directory it is started from.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def project_dir() -> Path:
    """Where ``.env``, ``.secret_key``, the SQLite database and ``staticfiles`` live."""
    if (SOURCE_ROOT / "manage.py").is_file() and (SOURCE_ROOT / "pyproject.toml").is_file():
        return SOURCE_ROOT
    return Path.cwd()


DEFAULT_CHAT_SERVER_URLS = (
    "https://animochat-chat-server.onrender.com",
    "https://animochat-chat-server-1.onrender.com",
)
DEFAULT_REDIS_URL = "redis://localhost:6379"
DEFAULT_REDIS_MASTER_NAME = "mymaster"  # Sentinel's own example name
REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_POPULAR_BLOCKLIST = ("FUBU", "FWB", "FUCK", "FUCK BUDDY", "NUDE", "NUDES", "SOP", "SOC")
MIN_JWT_SECRET_BYTES = 32

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the variable."""


@dataclass(frozen=True)
class Config:
    port: int
    redis_url: str
    redis_url_explicit: bool
    redis_sentinels: tuple[tuple[str, int], ...]
    redis_master_name: str
    discovery_server_url: str
    render_external_url: str
    secure_cookies: bool
    chat_server_urls: tuple[str, ...]
    chat_server_allowed_hosts: tuple[str, ...]
    maintenance_mode: bool
    debug: bool
    secret_key: str
    allowed_hosts: tuple[str, ...]
    database_url: str
    cors_allowed_origins: tuple[str, ...]
    keepalive_seconds: float
    lease_seconds: float
    popular_window_seconds: int
    popular_blocklist: tuple[str, ...]
    session_ttl_seconds: int
    heartbeat_interval: float
    rematch_cooldown: int
    rate_limit_per_minute: int
    read_rate_limit_per_minute: int
    max_streams_per_client: int
    max_open_streams: int
    max_wait_seconds: int
    trusted_proxy_hops: int
    sse_retry_ms: int
    default_fallback_after: float | None
    auth_jwt_secret: str
    auth_jwt_audience: str
    auth_jwks_url: str
    log_level: str
    host: str
    web_concurrency: int
    access_log: bool
    demo_page: bool


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines; ``#`` comments, ``export`` and quotes are allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def parse_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def parse_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")
    return value


def parse_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def parse_http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


def parse_url_list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in env:
        return default
    urls = [item.strip() for item in env[name].split(",") if item.strip()]
    return tuple(parse_http_url(url, name).rstrip("/") for url in urls)


def parse_interest_list(
    env: Mapping[str, str], name: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    """A comma list of interests, normalized as requests are (trimmed, upper case)."""
    if name not in env:
        return default
    return tuple(
        dict.fromkeys(item.strip().upper() for item in env[name].split(",") if item.strip())
    )


_HOST_PATTERN = re.compile(r"\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def parse_host_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma list of host names; a leading dot also matches every subdomain."""
    hosts = [item.strip().lower() for item in env.get(name, "").split(",") if item.strip()]
    for host in hosts:
        if not _HOST_PATTERN.fullmatch(host):
            raise ConfigError(
                f"{name} must list host names (like chat.example.com or .example.com), got {host!r}"
            )
    return tuple(hosts)


def parse_redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(
            f"REDIS_URL must start with redis://, rediss:// or unix://, got {value!r}"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"REDIS_URL has no host: {value!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ConfigError(f"REDIS_URL has an invalid port: {value!r}") from None
    return value


def parse_sentinels(env: Mapping[str, str]) -> tuple[tuple[str, int], ...]:
    """``REDIS_SENTINELS``: ``host:port`` items, comma separated (``[::1]:26379`` for IPv6)."""
    sentinels = []
    for item in env.get("REDIS_SENTINELS", "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        host = host.strip().removeprefix("[").removesuffix("]")
        # isascii(): isdigit() alone passes "²", which int() then refuses.
        if (
            not sep
            or not host
            or not (port.isascii() and port.isdigit())
            or not 1 <= int(port) <= 65535
        ):
            raise ConfigError(f"REDIS_SENTINELS must list host:port items, got {item!r}")
        sentinels.append((host, int(port)))
    return tuple(sentinels)


def parse_host(value: str) -> str:
    # Every Daphne process is handed one socket the launcher bound; Daphne adopts an
    # inherited socket as IPv4 only.
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ConfigError(f"HOST must be an IPv4 address such as 0.0.0.0, got {value!r}") from None
    return value


def default_web_concurrency() -> int:
    """One Daphne process per core this process may run on (one event loop each), up to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def parse_database_url(value: str) -> str:
    if not value.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise ConfigError(f"DATABASE_URL must be sqlite:///<path> or postgresql://…, got {value!r}")
    # Said here in one line, rather than by Django's "Error loading psycopg2 or psycopg
    # module" at the first query.
    if not value.startswith("sqlite") and importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "DATABASE_URL is a PostgreSQL URL, but psycopg is not installed: "
            "pip install 'animochat-matchmaking[postgres]'"
        )
    return value


def parse_jwt_secret(env: Mapping[str, str]) -> str:
    secret = env.get("AUTH_JWT_SECRET", "").strip()
    # HS256 with a short secret can be brute-forced offline from any one token.
    if secret and len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(
            f"AUTH_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes, "
            f"got {len(secret.encode())}"
        )
    return secret


def parse_jwks_url(env: Mapping[str, str]) -> str:
    url = env.get("AUTH_JWKS_URL", "").strip()
    if not url:
        return ""
    parts = urlsplit(parse_http_url(url, "AUTH_JWKS_URL"))
    # Whoever can alter the key set in transit can sign any identity.
    if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
        raise ConfigError(f"AUTH_JWKS_URL must be https:// (http only on loopback), got {url!r}")
    return url


def load_config(env: Mapping[str, str] | None = None, base_dir: Path | None = None) -> Config:
    """Build the configuration from ``env`` (default: ``os.environ`` over ``.env``)."""
    base_dir = base_dir or project_dir()
    if env is None:
        env = {**read_dotenv(base_dir / ".env"), **os.environ}

    debug = parse_bool(env, "DEBUG", False)
    secret_key = env.get("SECRET_KEY", "").strip()
    if not secret_key:
        if not debug:
            raise ConfigError(
                "SECRET_KEY is required when DEBUG is off "
                "(`make run` generates a local one; set DEBUG=true for throwaway use)"
            )
        secret_key = "insecure-development-key"

    keepalive = parse_float(env, "KEEPALIVE_SECONDS", 15.0, 0.05, 3600)
    lease = parse_float(env, "LEASE_SECONDS", max(30.0, 2 * keepalive), 0.1, 7200)
    if lease <= keepalive:
        raise ConfigError(
            f"LEASE_SECONDS ({lease:g}) must be longer than KEEPALIVE_SECONDS ({keepalive:g}), "
            "or live waiting users would lose their place between renewals"
        )

    heartbeat = parse_float(env, "HEARTBEAT_INTERVAL", 5.0, 0.1, 3600)
    if heartbeat >= 15:
        raise ConfigError(
            f"HEARTBEAT_INTERVAL must be under 15 seconds (the discovery server marks "
            f"instances DOWN after 15 s of silence), got {heartbeat:g}"
        )

    render_url = env.get("RENDER_EXTERNAL_URL", "").strip().rstrip("/")
    if render_url:
        parse_http_url(render_url, "RENDER_EXTERNAL_URL")

    hosts_raw = env.get("ALLOWED_HOSTS", "").strip()
    if hosts_raw:
        allowed_hosts = tuple(h.strip() for h in hosts_raw.split(",") if h.strip())
    else:
        allowed_hosts = ("localhost", "127.0.0.1", "[::1]")
        if render_url:
            allowed_hosts += (urlsplit(render_url).hostname or "",)

    origins_raw = env.get("CORS_ALLOWED_ORIGINS", "*").strip() or "*"
    origins = tuple(o.strip().rstrip("/") for o in origins_raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*":
            parse_http_url(origin, "CORS_ALLOWED_ORIGINS")

    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

    redis_raw = env.get("REDIS_URL", "").strip()
    sentinels = parse_sentinels(env)
    if sentinels and redis_raw.startswith("unix://"):
        raise ConfigError("REDIS_SENTINELS needs a redis:// or rediss:// REDIS_URL, not unix://")
    return Config(
        port=parse_int(env, "PORT", 3000, 1, 65535),
        redis_url=parse_redis_url(redis_raw or DEFAULT_REDIS_URL),
        redis_url_explicit=bool(redis_raw),
        redis_sentinels=sentinels,
        redis_master_name=env.get("REDIS_MASTER_NAME", "").strip() or DEFAULT_REDIS_MASTER_NAME,
        discovery_server_url=parse_http_url(
            env.get("DISCOVERY_SERVER_URL", "").strip()
            or "https://animochat-service-discovery.onrender.com/",
            "DISCOVERY_SERVER_URL",
        ),
        render_external_url=render_url,
        # Served over https (an https public URL says so; SECURE_COOKIES=true for
        # another front end): cookies are sent over https only, with HSTS.
        secure_cookies=parse_bool(env, "SECURE_COOKIES", render_url.startswith("https://")),
        chat_server_urls=parse_url_list(env, "CHAT_SERVER_URLS", DEFAULT_CHAT_SERVER_URLS),
        chat_server_allowed_hosts=parse_host_list(env, "CHAT_SERVER_ALLOWED_HOSTS"),
        maintenance_mode=parse_bool(env, "MAINTENANCE_MODE", False),
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        database_url=parse_database_url(
            env.get("DATABASE_URL", "").strip() or f"sqlite:///{base_dir / 'db.sqlite3'}"
        ),
        cors_allowed_origins=origins,
        keepalive_seconds=keepalive,
        lease_seconds=lease,
        popular_window_seconds=parse_int(env, "POPULAR_WINDOW_SECONDS", 600, 1, 86400 * 7),
        popular_blocklist=parse_interest_list(env, "POPULAR_BLOCKLIST", DEFAULT_POPULAR_BLOCKLIST),
        session_ttl_seconds=parse_int(env, "SESSION_TTL_SECONDS", 86400, 60, 86400 * 365),
        heartbeat_interval=heartbeat,
        rematch_cooldown=parse_int(env, "REMATCH_COOLDOWN", 60, 0, 86400),
        rate_limit_per_minute=parse_int(env, "RATE_LIMIT_PER_MINUTE", 300, 0, 1_000_000),
        read_rate_limit_per_minute=parse_int(env, "READ_RATE_LIMIT_PER_MINUTE", 1200, 0, 1_000_000),
        max_streams_per_client=parse_int(env, "MAX_STREAMS_PER_CLIENT", 20, 0, 1_000_000),
        max_open_streams=parse_int(env, "MAX_OPEN_STREAMS", 10_000, 1, 10_000_000),
        max_wait_seconds=parse_int(env, "MAX_WAIT_SECONDS", 1800, 0, 86400 * 7),
        trusted_proxy_hops=parse_int(env, "TRUSTED_PROXY_HOPS", 0, 0, 16),
        sse_retry_ms=parse_int(env, "SSE_RETRY_MS", 3000, 100, 3_600_000),
        # Unset: streams without fallbackAfter match by interest only.
        default_fallback_after=(
            parse_float(env, "DEFAULT_FALLBACK_AFTER", 0.0, 0, 600)
            if env.get("DEFAULT_FALLBACK_AFTER", "").strip()
            else None
        ),
        auth_jwt_secret=parse_jwt_secret(env),
        # Unset: what Supabase issues; set but empty: the audience is not checked.
        auth_jwt_audience=env.get("AUTH_JWT_AUDIENCE", "authenticated").strip(),
        auth_jwks_url=parse_jwks_url(env),
        log_level=log_level,
        host=parse_host(env.get("HOST", "").strip() or "0.0.0.0"),
        web_concurrency=parse_int(env, "WEB_CONCURRENCY", default_web_concurrency(), 1, 64),
        access_log=parse_bool(env, "ACCESS_LOG", False),
        demo_page=parse_bool(env, "DEMO_PAGE", True),
    )

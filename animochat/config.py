"""Service configuration read from the environment and an optional ``.env`` file.

Each setting is declared once, as a field of :class:`Config` made by :func:`setting`:
its variable (the field's name in upper case), how its text is parsed and checked, its
default and its help text. That one declaration drives the parsing here (once, at
start-up, into a frozen :class:`Config`), the Django setting of the same name
(``animochat/settings.py``), the README's configuration table and ``.env.example``
(both written by ``python -m animochat.config_docs --write``).

A bad value raises :class:`ConfigError` whose message names the variable, so start-up
can stop with one clear line instead of a traceback deep inside Django or Daphne.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
REDIS_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_POPULAR_BLOCKLIST = ("FUBU", "FWB", "FUCK", "FUCK BUDDY", "NUDE", "NUDES", "SOP", "SOC")
MIN_JWT_SECRET_BYTES = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The discovery server marks an instance DOWN after this long without a heartbeat.
DISCOVERY_SILENCE_SECONDS = 15

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the variable."""


# --- Parsers: (text, variable name) -> value, or ConfigError naming the variable. ---
# The text arrives trimmed and never empty, unless the setting keeps an empty value
# as a value of its own (see ``setting(keeps_empty=…)``).

Parser = Callable[[str, str], Any]


def integer(lo: int, hi: int) -> Parser:
    return _in_range(int, "a whole number", lo, hi, str)


def seconds(lo: float, hi: float) -> Parser:
    return _in_range(float, "a number of seconds", lo, hi, "{:g}".format)


def _in_range(
    convert: Callable[[str], Any], kind: str, lo: Any, hi: Any, show: Callable[[Any], str]
) -> Parser:
    def parse(text: str, name: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise ConfigError(f"{name} must be {kind}, got {text!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(
                f"{name} must be between {show(lo)} and {show(hi)}, got {show(value)}"
            )
        return value

    return parse


def boolean(text: str, name: str) -> bool:
    value = text.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {text!r}")


def text(value: str, _name: str) -> str:
    return value


def choice(*choices: str) -> Parser:
    """One of ``choices``, in any case."""

    def parse(value: str, name: str) -> str:
        if value.upper() not in choices:
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            raise ConfigError(f"{name} must be {listed}, got {value.upper()!r}")
        return value.upper()

    return parse


def comma_list(value: str, _name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {value!r}")
    return value


def base_url(value: str, name: str) -> str:
    """An http(s) URL without its trailing ``/``, ready to have paths appended."""
    return http_url(value.rstrip("/"), name)


def url_list(value: str, name: str) -> tuple[str, ...]:
    return tuple(base_url(url, name) for url in comma_list(value, name))


def origin_list(value: str, name: str) -> tuple[str, ...]:
    """``*`` or http(s) origins."""
    return tuple(o if o == "*" else base_url(o, name) for o in comma_list(value, name))


def interest_list(value: str, name: str) -> tuple[str, ...]:
    """Interests normalized as requests are (trimmed, upper case), each once."""
    return tuple(dict.fromkeys(item.upper() for item in comma_list(value, name)))


_HOST_PATTERN = re.compile(r"\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def host_list(value: str, name: str) -> tuple[str, ...]:
    """Host names; a leading dot also matches every subdomain."""
    hosts = comma_list(value.lower(), name)
    for host in hosts:
        if not _HOST_PATTERN.fullmatch(host):
            raise ConfigError(
                f"{name} must list host names (like chat.example.com or .example.com), got {host!r}"
            )
    return hosts


def redis_connection_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in REDIS_SCHEMES:
        raise ConfigError(f"{name} must start with redis://, rediss:// or unix://, got {value!r}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{name} has no host: {value!r}")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {value!r}") from None
    return value


def host_port_list(value: str, name: str) -> tuple[tuple[str, int], ...]:
    """``host:port`` items (``[::1]:26379`` for IPv6)."""
    pairs = []
    for item in comma_list(value, name):
        host, sep, port = item.rpartition(":")
        host = host.strip().removeprefix("[").removesuffix("]")
        # isascii(): isdigit() alone passes "²", which int() then refuses.
        if (
            not sep
            or not host
            or not (port.isascii() and port.isdigit())
            or not 1 <= int(port) <= 65535
        ):
            raise ConfigError(f"{name} must list host:port items, got {item!r}")
        pairs.append((host, int(port)))
    return tuple(pairs)


def ipv4_address(value: str, name: str) -> str:
    # Every Daphne process is handed one socket the launcher bound; Daphne adopts an
    # inherited socket as IPv4 only.
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be an IPv4 address such as 0.0.0.0, got {value!r}"
        ) from None
    return value


def database_connection_url(value: str, name: str) -> str:
    if not value.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise ConfigError(f"{name} must be sqlite:///<path> or postgresql://…, got {value!r}")
    # Said here in one line, rather than by Django's "Error loading psycopg2 or psycopg
    # module" at the first query.
    if not value.startswith("sqlite") and importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            f"{name} is a PostgreSQL URL, but psycopg is not installed: "
            "pip install 'animochat-matchmaking[postgres]'"
        )
    return value


def jwt_secret(value: str, name: str) -> str:
    # HS256 with a short secret can be brute-forced offline from any one token.
    if len(value.encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigError(
            f"{name} must be at least {MIN_JWT_SECRET_BYTES} bytes, got {len(value.encode())}"
        )
    return value


def jwks_url(value: str, name: str) -> str:
    parts = urlsplit(http_url(value, name))
    # Whoever can alter the key set in transit can sign any identity.
    if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
        raise ConfigError(f"{name} must be https:// (http only on loopback), got {value!r}")
    return value


# --- Declarations ---

Values = Mapping[str, Any]  # the settings parsed so far, by field name


@dataclass(frozen=True)
class Computed:
    """A default worked out at start-up from settings declared before it, or the machine."""

    shown: str  # how the README and .env.example state it (Markdown)
    compute: Callable[[Values, Path], Any]  # (values so far, project directory) -> value


@dataclass(frozen=True)
class Setting:
    """One environment variable: what the service and its documentation know of it."""

    name: str  # the variable; the Config field is its name in lower case
    parse: Parser
    default: Any  # the value when unset (or empty), or a Computed one
    help: str  # Markdown: the README's "Meaning" and the comment in .env.example
    section: str  # its heading in .env.example
    shown: str | None  # the default in words, where its value says too little
    check: Callable[[Any, Values], None] | None  # a rule against settings declared before it
    keeps_empty: bool  # an empty value is a value of its own (an empty list), not "unset"
    django: bool  # also a Django setting of the same name
    secret: bool  # kept out of Config's repr

    @property
    def field(self) -> str:
        return self.name.lower()


def setting(
    parse: Parser,
    default: Any,
    help: str,
    *,
    section: str,
    shown: str | None = None,
    check: Callable[[Any, Values], None] | None = None,
    keeps_empty: bool = False,
    django: bool = True,
    secret: bool = False,
) -> Any:
    """A field of :class:`Config` that is a setting; its name comes from the field."""
    declaration = Setting(
        "", parse, default, help, section, shown, check, keeps_empty, django, secret
    )
    return dataclasses.field(repr=not secret, metadata={"setting": declaration})


# .env.example's headings, in order.
SERVING = "Serving"
REDIS = "Redis"
DISCOVERY = "Discovery and chat servers"
SECURITY = "Security"
DATABASE = "Database of admin users"
MATCHMAKING = "Matchmaking"


def default_web_concurrency() -> int:
    """One Daphne process per core this process may run on (one event loop each), up to 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def development_secret_key(values: Values, _base_dir: Path) -> str:
    if not values["debug"]:
        raise ConfigError(
            "SECRET_KEY is required when DEBUG is off "
            "(`make run` generates a local one; set DEBUG=true for throwaway use)"
        )
    return "insecure-development-key"


def local_hosts(values: Values, _base_dir: Path) -> tuple[str, ...]:
    public = urlsplit(values["render_external_url"]).hostname
    return ("localhost", "127.0.0.1", "[::1]") + ((public,) if public else ())


def check_heartbeat(interval: float, _values: Values) -> None:
    if interval >= DISCOVERY_SILENCE_SECONDS:
        raise ConfigError(
            f"HEARTBEAT_INTERVAL must be under {DISCOVERY_SILENCE_SECONDS} seconds (the "
            f"discovery server marks instances DOWN after {DISCOVERY_SILENCE_SECONDS} s of "
            f"silence), got {interval:g}"
        )


def check_lease(lease: float, values: Values) -> None:
    keepalive = values["keepalive_seconds"]
    if lease <= keepalive:
        raise ConfigError(
            f"LEASE_SECONDS ({lease:g}) must be longer than KEEPALIVE_SECONDS ({keepalive:g}), "
            "or live waiting users would lose their place between renewals"
        )


def check_sentinels(sentinels: tuple, values: Values) -> None:
    if sentinels and values["redis_url"].startswith("unix://"):
        raise ConfigError("REDIS_SENTINELS needs a redis:// or rediss:// REDIS_URL, not unix://")


def check_cluster_nodes(nodes: tuple, values: Values) -> None:
    if nodes and values["redis_sentinels"]:
        raise ConfigError(
            "REDIS_CLUSTER_NODES and REDIS_SENTINELS exclude each other "
            "(a cluster fails over by itself)"
        )
    if nodes and values["redis_url"].startswith("unix://"):
        raise ConfigError(
            "REDIS_CLUSTER_NODES needs a redis:// or rediss:// REDIS_URL, not unix://"
        )


_POOL_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def pool_list(value: str, name: str) -> tuple[str, ...]:
    """Names of match pools: lower-case letters, digits, ``-`` and ``_``, each once."""
    pools = tuple(dict.fromkeys(comma_list(value, name)))
    for pool in pools:
        if not _POOL_PATTERN.fullmatch(pool):
            raise ConfigError(
                f"{name} must list pool names of 1 to 32 lower-case letters, digits, - or _ "
                f"(starting with a letter or digit), got {pool!r}"
            )
    if not pools:
        raise ConfigError(f"{name} must name at least one pool")
    return pools


@dataclass(frozen=True)
class Config:
    """Every setting, parsed; declared in the order they are parsed and documented (a
    computed default or a check reads only settings declared above it)."""

    # --- Serving ---
    port: int = setting(
        integer(1, 65535),
        3000,
        "HTTP port of the web processes",
        section=SERVING,
        django=False,  # the launcher's: the socket is bound before Django starts
    )
    host: str = setting(
        ipv4_address,
        "0.0.0.0",
        "IPv4 address the web processes listen on",
        section=SERVING,
        django=False,
    )
    web_concurrency: int = setting(
        integer(1, 64),
        Computed("the CPU cores available, at most 8", lambda _v, _d: default_web_concurrency()),
        "Daphne processes the launcher runs on the one port (1 to 64)",
        section=SERVING,
        django=False,
    )
    render_external_url: str = setting(
        base_url,
        "",
        "This service's public URL (Render sets it); needed to register with discovery",
        section=SERVING,
    )
    trusted_proxy_hops: int = setting(
        integer(0, 16),
        0,
        "Proxies in front of the service that each append to `X-Forwarded-For`; the client "
        "is the N-th address from the right, and `X-Forwarded-Proto` is believed under the "
        "same rule. `0`: the socket peer is the client and forwarding headers are ignored "
        "(see [Security](#security))",
        section=SERVING,
    )
    access_log: bool = setting(
        boolean,
        False,
        "One JSON line per request (`animochat.access`), credentials in the query string redacted",
        section=SERVING,
    )
    debug: bool = setting(boolean, False, "Django debug mode", section=SERVING)
    demo_page: bool = setting(
        boolean,
        True,
        "Serve the live demo page at `/demo/` (`false`: 404, and `/openapi.json` leaves it out)",
        section=SERVING,
    )
    log_level: str = setting(
        choice(*LOG_LEVELS),
        "INFO",
        f"Level of the JSON logs: {', '.join(f'`{level}`' for level in LOG_LEVELS)}",
        section=SERVING,
        django=False,  # LOGGING's
    )

    # --- Redis ---
    redis_url: str = setting(
        redis_connection_url,
        Computed("`redis://localhost:6379`", lambda _v, _d: DEFAULT_REDIS_URL),
        "Queues, sessions, the Channels layer and the cache. If set and unreachable, "
        "`make run` refuses to start; unset, `make run` starts an embedded Redis when "
        "nothing answers on localhost:6379",
        section=REDIS,
    )
    redis_sentinels: tuple[tuple[str, int], ...] = setting(
        host_port_list,
        (),
        "Comma list of Redis Sentinel `host:port`. When set, the command client, the "
        "Channels layer and the cache connect to the primary Sentinel names, and find the "
        "new one by themselves after a failover; `REDIS_URL` then gives only the database "
        "number, credentials and TLS (`rediss://`), not the host",
        section=REDIS,
        check=check_sentinels,
    )
    redis_master_name: str = setting(
        text,
        "mymaster",  # Sentinel's own example name
        "Name of the primary in Sentinel (`sentinel monitor <name> …`); used with "
        "`REDIS_SENTINELS`",
        section=REDIS,
    )
    redis_cluster_nodes: tuple[tuple[str, int], ...] = setting(
        host_port_list,
        (),
        "Comma list of Redis Cluster nodes `host:port` (any few; the rest are found). "
        "When set, every client, the Channels layer (sharded pub/sub) and the cache use "
        "the cluster, which must run Redis 7 or later, and each match pool's keys live in "
        "one hash slot (see [Redis Cluster](#redis-cluster-and-match-pools)); `REDIS_URL` "
        "then gives only the credentials and TLS (`rediss://`), not the host",
        section=REDIS,
        check=check_cluster_nodes,
    )

    # --- Discovery and chat servers ---
    discovery_server_url: str = setting(
        http_url,
        "https://animochat-service-discovery.onrender.com/",
        "AnimoChat Service Discovery (a trailing `/` is fine)",
        section=DISCOVERY,
    )
    heartbeat_interval: float = setting(
        seconds(0.1, 3600),
        5.0,
        f"Discovery heartbeat period; must be under {DISCOVERY_SILENCE_SECONDS} s",
        section=DISCOVERY,
        check=check_heartbeat,
    )
    chat_server_urls: tuple[str, ...] = setting(
        url_list,
        DEFAULT_CHAT_SERVER_URLS,
        "Comma list used while discovery knows no chat server (empty: none)",
        section=DISCOVERY,
        shown="the two public AnimoChat chat servers",
        keeps_empty=True,
    )
    chat_server_allowed_hosts: tuple[str, ...] = setting(
        host_list,
        (),
        "Comma list of host names chat servers from discovery may have; `.example.com` also "
        "matches its subdomains (see Service discovery)",
        section=DISCOVERY,
        shown="— (any host)",
    )
    maintenance_mode: bool = setting(
        boolean,
        False,
        "Initial maintenance state until someone toggles it",
        section=DISCOVERY,
    )

    # --- Security ---
    secret_key: str = setting(
        text,
        Computed("— (required when `DEBUG` is off)", development_secret_key),
        "Signs admin sessions and CSRF tokens; the same on every instance. `make run` "
        "generates one into `.secret_key` (mode 0600) when it is unset, and warns when "
        "`RENDER_EXTERNAL_URL` is set, since each instance would then sign with its own key",
        section=SECURITY,
        secret=True,
    )
    allowed_hosts: tuple[str, ...] = setting(
        comma_list,
        Computed("`localhost,127.0.0.1,[::1]` + the host of `RENDER_EXTERNAL_URL`", local_hosts),
        "Host names served",
        section=SECURITY,
    )
    secure_cookies: bool = setting(
        boolean,
        Computed(
            "`true` when `RENDER_EXTERNAL_URL` is `https://…`, else `false`",
            lambda values, _d: values["render_external_url"].startswith("https://"),
        ),
        "The service is served over https: with `DEBUG` off, session and CSRF cookies are "
        "https-only, HSTS is sent (one year, subdomains), the public URL is a trusted CSRF "
        "origin, and with `TRUSTED_PROXY_HOPS` above 0 plain http is redirected to https "
        "(see [Security](#security))",
        section=SECURITY,
        django=False,  # HTTPS and the cookie settings derived from it
    )
    cors_allowed_origins: tuple[str, ...] = setting(
        origin_list,
        ("*",),
        "Comma list of origins allowed to call the API",
        section=SECURITY,
    )
    rate_limit_per_minute: int = setting(
        integer(0, 1_000_000),
        300,
        "Requests per client address (an IPv6 client per /64) per minute to `/matchmaking` "
        "and to the POST endpoints (0: off)",
        section=SECURITY,
    )
    read_rate_limit_per_minute: int = setting(
        integer(0, 1_000_000),
        1200,
        "The same for the read endpoints `/interests/popular`, `/status`, "
        "`/session/<userId>`, `/metrics`, counted apart (0: off)",
        section=SECURITY,
    )
    max_streams_per_client: int = setting(
        integer(0, 1_000_000),
        20,
        "Concurrent `/matchmaking` streams per client address (an IPv6 client per /64), "
        "counted across processes; the next gets 429 `TOO_MANY_STREAMS` (0: off)",
        section=SECURITY,
    )
    max_open_streams: int = setting(
        integer(1, 10_000_000),
        10_000,
        "Concurrent `/matchmaking` requests per process; beyond it 503 `SERVER_BUSY` with "
        "`Retry-After: 5`, before any Redis work",
        section=SECURITY,
    )
    auth_jwt_secret: str = setting(
        jwt_secret,
        "",
        "When set, every endpoint taking a `userId` requires a matching HS256 JWT (see "
        f"[Verified identity](#verified-identity-optional)); at least {MIN_JWT_SECRET_BYTES} "
        "bytes",
        section=SECURITY,
        secret=True,
    )
    auth_jwks_url: str = setting(
        jwks_url,
        "",
        "When set, RS256/ES256 JWTs are verified with the keys of this JSON Web Key Set "
        "(Supabase: `https://<project>.supabase.co/auth/v1/.well-known/jwks.json`); https "
        "only (http on loopback). May be combined with `AUTH_JWT_SECRET`",
        section=SECURITY,
    )
    auth_jwt_audience: str = setting(
        text,
        "authenticated",
        "The `aud` a token must name (Supabase issues `authenticated`); set it empty to "
        "skip the check",
        section=SECURITY,
        keeps_empty=True,
    )

    # --- Database of admin users ---
    database_url: str = setting(
        database_connection_url,
        Computed(
            "`sqlite:///db.sqlite3`",
            lambda _v, base_dir: f"sqlite:///{base_dir / 'db.sqlite3'}",
        ),
        "Database of admin users. `postgresql://user:password@host:5432/name` needs the "
        "`postgres` extra (`pip install '.[postgres]'`, in `make test`'s set); query "
        "parameters such as `?sslmode=require` reach the driver",
        section=DATABASE,
        django=False,  # DATABASES
    )
    django_superuser_username: str = setting(
        text,
        "",
        "With `DJANGO_SUPERUSER_PASSWORD`: `make run` creates or updates this admin user",
        section=DATABASE,
        django=False,  # the launcher's, and `manage.py ensure_admin`'s
    )
    django_superuser_password: str = setting(
        text,
        "",
        "The password of that admin user (Django's password validators apply)",
        section=DATABASE,
        django=False,
        secret=True,
    )

    # --- Matchmaking ---
    keepalive_seconds: float = setting(
        seconds(0.05, 3600),
        15.0,
        "Interval of `: keepalive` comments and lease renewals on waiting streams",
        section=MATCHMAKING,
    )
    lease_seconds: float = setting(
        seconds(0.1, 7200),
        Computed(
            "`30` (at least twice `KEEPALIVE_SECONDS`)",
            lambda values, _d: max(30.0, 2 * values["keepalive_seconds"]),
        ),
        "How long a waiting user's place outlives its stream's last renewal",
        section=MATCHMAKING,
        check=check_lease,
    )
    rematch_cooldown: int = setting(
        integer(0, 86400),
        60,
        "Seconds during which two users just matched are not matched with each other again "
        "(0: off)",
        section=MATCHMAKING,
    )
    sse_retry_ms: int = setting(
        integer(100, 3_600_000),
        3000,
        "The `retry:` field every stream starts with: how long a browser's `EventSource` "
        "waits before reconnecting (100 to 3,600,000)",
        section=MATCHMAKING,
    )
    default_fallback_after: float | None = setting(
        seconds(0, 600),
        None,
        "`fallbackAfter` (seconds, 0 to 600) of streams that send none, so interest users meet "
        "random-chat users after that long without a client change",
        section=MATCHMAKING,
        shown="— (off)",
    )
    max_wait_seconds: int = setting(
        integer(0, 86400 * 7),
        1800,
        "A stream waiting that long gets `ERROR WAIT_TIMEOUT`, its place is given back and it "
        "ends (0: no limit)",
        section=MATCHMAKING,
    )
    session_ttl_seconds: int = setting(
        integer(60, 86400 * 365),
        86400,
        "How long an unended chat session stays retrievable",
        section=MATCHMAKING,
    )
    match_pools: tuple[str, ...] = setting(
        pool_list,
        ("default",),
        "Comma list of match pools (a region, a language, a campus): users are matched only "
        "within their pool, which a stream names with `pool=`; streams naming none go to "
        "the first. Each pool's queues and sessions live in one Redis hash slot, so on a "
        "cluster the pools spread over the primaries",
        section=MATCHMAKING,
    )
    popular_window_seconds: int = setting(
        integer(1, 86400 * 7),
        600,
        "Window of `/interests/popular` and of the estimated wait",
        section=MATCHMAKING,
    )
    popular_blocklist: tuple[str, ...] = setting(
        interest_list,
        DEFAULT_POPULAR_BLOCKLIST,
        "Comma list of interests never shown among popular interests (empty: none); the "
        'admin hides and shows interests at run time (see "Popular interests")',
        section=MATCHMAKING,
        keeps_empty=True,
    )

    # Not a setting: which declared variables the environment set (non-empty). The
    # launcher starts an embedded Redis only when REDIS_URL is not one of them.
    given: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)

    def django_settings(self) -> dict[str, Any]:
        """The settings Django code reads, each under its variable's name."""
        return {s.name: getattr(self, s.field) for s in SETTINGS if s.django}


SETTINGS: tuple[Setting, ...] = tuple(
    dataclasses.replace(f.metadata["setting"], name=f.name.upper())
    for f in dataclasses.fields(Config)
    if "setting" in f.metadata
)


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


def read_environment(base_dir: Path | None = None) -> dict[str, str]:
    """The environment over ``.env`` (the environment wins)."""
    return {**read_dotenv((base_dir or project_dir()) / ".env"), **os.environ}


def load_config(env: Mapping[str, str] | None = None, base_dir: Path | None = None) -> Config:
    """Every setting from ``env`` (default: :func:`read_environment`), in declaration order."""
    base_dir = base_dir or project_dir()
    if env is None:
        env = read_environment(base_dir)
    values: dict[str, Any] = {}
    given = set()
    for s in SETTINGS:
        raw = env.get(s.name)
        value = raw.strip() if raw is not None else ""
        if value or (raw is not None and s.keeps_empty):
            values[s.field] = s.parse(value, s.name)
            given.add(s.name)
        elif isinstance(s.default, Computed):
            values[s.field] = s.default.compute(values, base_dir)
        else:
            values[s.field] = s.default
        if s.check is not None:
            s.check(values[s.field], values)
    return Config(**values, given=frozenset(given))

"""Django settings, all taken from :mod:`animochat.config` (environment and ``.env``), read
once per process."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import dj_database_url

from animochat.config import ConfigError, load_config, project_dir
from animochat.redis_client import SENTINEL_OPTIONS

# The checkout, or the working directory of an installed service (see project_dir).
BASE_DIR = project_dir()

try:
    CONFIG = load_config(base_dir=BASE_DIR)
except ConfigError as error:
    sys.stderr.write(f"Configuration error: {error}\n")
    raise SystemExit(2) from None

# Every declared setting Django code reads, under its variable's name: settings.REDIS_URL,
# settings.KEEPALIVE_SECONDS… (declared in animochat/config.py, where each says which).
globals().update(CONFIG.django_settings())

SERVICE_NAME = "matchmaking-server"
SERVICE_VERSION = "1.0.0"

INSTALLED_APPS = [
    "daphne",
    "animochat.apps.AnimochatAdminConfig",  # django.contrib.admin, with the project's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # Swagger UI and Redoc builds as static files: /docs needs no CDN.
    "drf_spectacular_sidecar",
    "animochat",
    "matchmaking",
    "sessions_app",
    "discovery",
]

MIDDLEWARE = [
    "animochat.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "animochat.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "animochat.urls"
CSRF_FAILURE_VIEW = "animochat.views.csrf_failure"
APPEND_SLASH = False
ASGI_APPLICATION = "animochat.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Each app ships its own templates (inside the package, so in the wheel too).
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_settings(url: str) -> dict[str, object]:
    """Django's settings for ``DATABASE_URL``; query parameters (``?sslmode=require``,
    which managed PostgreSQL services ask for) become the driver's options."""
    return dj_database_url.parse(url)


DATABASES = {"default": database_settings(CONFIG.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CONFIG.redis_url,
        "KEY_PREFIX": "django",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
    }
}
if CONFIG.redis_sentinels:
    # django-redis' Sentinel client finds the primary named by the URL's host. Given as
    # a list of one URL it uses the primary only: a session just written is read back
    # there, never from a replica that may not have it yet.
    _url = urlsplit(CONFIG.redis_url)
    _credentials = _url.netloc.rpartition("@")[0]
    _master = CONFIG.redis_master_name
    _netloc = f"{_credentials}@{_master}" if _credentials else _master
    CACHES["default"]["LOCATION"] = [_url._replace(netloc=_netloc).geturl()]
    CACHES["default"]["OPTIONS"].update(
        CLIENT_CLASS="django_redis.client.SentinelClient",
        CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
        SENTINELS=CONFIG.redis_sentinels,
        SENTINEL_KWARGS=SENTINEL_OPTIONS,
    )
if CONFIG.redis_cluster_nodes:
    # The URL gives only credentials and TLS; the nodes come from REDIS_CLUSTER_NODES.
    CACHES["default"]["OPTIONS"]["CONNECTION_FACTORY"] = (
        "animochat.cluster_cache.ClusterConnectionFactory"
    )
# Admin log-ins live in the database, cached in Redis for every instance to share.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Pub/sub channels ignore Redis database numbers, so the database is part of the
# prefix: deployments (or test runs) sharing one Redis never hear each other.
_REDIS_DB = "0" if CONFIG.redis_cluster_nodes else urlsplit(CONFIG.redis_url).path.strip("/") or "0"
# One Redis inbox per process (see animochat/channel_layer.py); it connects to the
# project's Redis, through Sentinel when REDIS_SENTINELS is set, as the other clients do
# (on a cluster, a sharded channel on the primary of its slot).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "animochat.channel_layer.RedisInboxChannelLayer",
        "CONFIG": {"prefix": f"animochat.db{_REDIS_DB}."},
    }
}

# Django's standard set; `manage.py ensure_admin` applies them too.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served by WhiteNoise inside the app, so the admin is styled under Daphne with DEBUG off.
WHITENOISE_USE_FINDERS = True
# The client kit's TypeScript declarations are text, not MPEG transport streams.
WHITENOISE_MIMETYPES = {".ts": "text/plain"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Served over https (SECURE_COOKIES, on by default for an https RENDER_EXTERNAL_URL).
# Whether a request came over https is decided with its client address, under
# TRUSTED_PROXY_HOPS (animochat/clientaddr.py sets the ASGI scheme from a trusted
# proxy's X-Forwarded-Proto). SECURE_PROXY_SSL_HEADER stays unset on purpose: Django
# would believe that header from anyone, proxy or not.
HTTPS = CONFIG.secure_cookies and not CONFIG.debug
if HTTPS:
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 365 * 86400
    # Only this host's own subdomains; nothing a neighbour on the same parent domain serves.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Behind a proxy that reports the scheme, plain http is redirected; with no trusted
    # proxy every request would look like http (TLS ends at the proxy) and loop.
    SECURE_SSL_REDIRECT = CONFIG.trusted_proxy_hops > 0
    if CONFIG.render_external_url:
        _public = urlsplit(CONFIG.render_external_url)
        CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
# Asking browsers to preload HSTS is a promise about the whole registrable domain, for
# its owner to make (and one a *.onrender.com tenant cannot), so it is not asked.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# Refuse oversized requests early (4xx) rather than parsing megabytes.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "animochat.logging.JsonFormatter"}},
    "filters": {"without_traceback": {"()": "animochat.logging.WithoutTraceback"}},
    "handlers": {
        "stderr": {"class": "animochat.logging.TurnStreamHandler", "formatter": "json"},
        "stderr_one_line": {
            "class": "animochat.logging.TurnStreamHandler",
            "formatter": "json",
            "filters": ["without_traceback"],
        },
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        **{
            name: {"handlers": ["stderr"], "level": CONFIG.log_level, "propagate": False}
            for name in ("animochat", "matchmaking", "sessions_app", "discovery", "django.request")
        },
        # ACCESS_LOG's lines: when it is on, whatever LOG_LEVEL says.
        "animochat.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # Refused requests (a Host header not in ALLOWED_HOSTS): one line each.
        "django.security": {"handlers": ["stderr_one_line"], "propagate": False},
    },
}

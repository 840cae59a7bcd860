"""The discovery heartbeat: stay registered and keep the shared chat-server list fresh
(docs/PROTOCOL.md#heartbeat).

:class:`Heartbeat` is what ``manage.py heartbeat`` runs. Each beat it

1. registers (or heartbeats: the protocol has one call for both) as
   ``SERVICE_NAME``/``SERVICE_VERSION`` at ``RENDER_EXTERNAL_URL``, when that is set;
2. asks discovery for every RUNNING ``chat-service``/``1.0.0`` instance and writes the
   URLs to Redis for every matcher, with a TTL of a few beats: if the heartbeat or the
   registry dies, the list lapses and the matchers fall back to ``CHAT_SERVER_URLS``;
   a definite "none running" deletes it at once. Anyone who can register with the
   registry could otherwise send users anywhere, so only https URLs (plain http only
   to loopback, or with ``DEBUG`` on) on ``CHAT_SERVER_ALLOWED_HOSTS`` are kept, at
   most ``MAX_CHAT_SERVERS``; refused entries are logged once per change of the list
   and never handed to users;
3. records what happened in ``discovery:state`` for ``/status``.

It beats every ``interval`` seconds (under the registry's 15-second DOWN timeout),
backs off while the registry fails every call, and logs state changes only: never one
line per beat. On stop it unregisters with ``serviceName``, ``version`` and ``url``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import redis
from django.http.request import validate_host
from redis.exceptions import RedisError

from animochat.clientaddr import is_loopback
from animochat.logging import log_event

from . import store
from .client import DiscoveryClient, DiscoveryError

logger = logging.getLogger("discovery.heartbeat")

CHAT_SERVICE_NAME = "chat-service"
CHAT_SERVICE_VERSION = "1.0.0"
REGISTRY_DOWN_AFTER_SECONDS = 15.0
LIST_TTL_BEATS = 3
MAX_BACKOFF_BEATS = 6
MAX_CHAT_SERVERS = 32


def validate_interval(interval: float) -> float:
    """The beat interval, refused (ValueError) unless 0 < interval < 15 seconds."""
    if not interval > 0:
        raise ValueError(f"the heartbeat interval must be a positive number, got {interval:g}")
    if interval >= REGISTRY_DOWN_AFTER_SECONDS:
        raise ValueError(
            f"the heartbeat interval must be under {REGISTRY_DOWN_AFTER_SECONDS:g} seconds "
            f"(the discovery server marks instances DOWN after {REGISTRY_DOWN_AFTER_SECONDS:g} s "
            f"of silence), got {interval:g}"
        )
    return interval


def request_timeout(interval: float) -> float:
    """Per-call HTTP timeout: about one beat, at least 1 s, at most 5 s."""
    return min(5.0, max(1.0, interval))


def backoff_delay(
    interval: float, failed_beats: int, jitter: Callable[[], float] = random.random
) -> float:
    """Seconds until the next beat after ``failed_beats`` beats in a row got no answer.

    The first retry comes after one interval (a single lost beat must not let the
    registry mark us DOWN); then the wait doubles up to ``MAX_BACKOFF_BEATS`` intervals,
    shortened by up to a quarter at random so instances that failed together do not
    retry in lockstep.
    """
    if failed_beats <= 1:
        return interval
    ceiling = interval * min(2 ** (failed_beats - 1), MAX_BACKOFF_BEATS)
    return ceiling * (1 - 0.25 * jitter())


def screen_chat_servers(
    urls: Iterable[str], allowed_hosts: tuple[str, ...], allow_plain_http: bool
) -> tuple[list[str], list[dict[str, str]]]:
    """The URLs users may be sent to (sorted, at most ``MAX_CHAT_SERVERS``) and the
    refused ones, each with its reason.

    ``allowed_hosts`` follows Django's ``ALLOWED_HOSTS`` rules (``.example.com`` also
    matches subdomains); empty allows any host.
    """
    accepted: list[str] = []
    refused: list[dict[str, str]] = []
    for url in sorted(set(urls)):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" and not (allow_plain_http or is_loopback(host)):
            refused.append({"url": url, "reason": "not https"})
        elif allowed_hosts and not validate_host(host, list(allowed_hosts)):
            refused.append({"url": url, "reason": "host not in CHAT_SERVER_ALLOWED_HOSTS"})
        elif len(accepted) >= MAX_CHAT_SERVERS:
            refused.append({"url": url, "reason": f"more than {MAX_CHAT_SERVERS} chat servers"})
        else:
            accepted.append(url)
    return accepted, refused


def chat_servers_in_use(
    discovered: Sequence[str], fallback: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """Where the chat servers matches are assigned to come from, and the servers:
    ``"discovery"`` (the list in Redis), ``"fallback"`` (``CHAT_SERVER_URLS``) or
    ``"none"`` (matching answers NO_CHAT_SERVER). The matcher decides the same way in
    Lua (``chat_servers`` in matchmaking/lua/lib.lua)."""
    if discovered:
        return "discovery", tuple(discovered)
    if fallback:
        return "fallback", tuple(fallback)
    return "none", ()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Health:
    """Whether one recurring operation works, logging only when that changes."""

    def __init__(self, failing_event: str, recovered_event: str) -> None:
        self.failing_event, self.recovered_event = failing_event, recovered_event
        self.failing_since: float | None = None
        self.failures = 0
        self.error = ""

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def failed(self, error: str, **fields: object) -> None:
        self.failures += 1
        self.error = error
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log_event(logger, self.failing_event, logging.WARNING, error=error, **fields)

    def succeeded(self, **fields: object) -> bool:
        """Record a success; True (after logging the recovery) if it was failing."""
        if self.failing_since is None:
            return False
        log_event(
            logger,
            self.recovered_event,
            failures=self.failures,
            failedForSeconds=round(time.monotonic() - self.failing_since, 1),
            lastError=self.error,
            **fields,
        )
        self.failing_since, self.failures, self.error = None, 0, ""
        return True


class Heartbeat:
    """Registration, heartbeats and the chat-server list for one service instance."""

    def __init__(
        self,
        client: DiscoveryClient,
        redis_client: redis.Redis,
        *,
        service_name: str,
        version: str,
        url: str,
        interval: float,
        fallback_servers: tuple[str, ...],
        allowed_hosts: tuple[str, ...] = (),
        allow_plain_http: bool = False,
    ) -> None:
        self.client = client
        self.redis = redis_client
        self.service_name, self.version, self.url = service_name, version, url
        self.interval = validate_interval(interval)
        self.fallback_servers = fallback_servers
        self.allowed_hosts, self.allow_plain_http = allowed_hosts, allow_plain_http
        self.last_listed: list[str] | None = None
        self.registered = False
        self.registration = Health("heartbeat_failing", "heartbeat_recovered")
        self.listing = Health("chat_server_list_failing", "chat_server_list_recovered")
        self.redis_health = Health("redis_unavailable", "redis_recovered")
        # Every field is written on every beat: the hash shows this run, not an older one.
        self.state: dict[str, str] = {
            "registration": "off" if not url else "failing",  # or registered, unregistered
            "registeredUrl": "",  # the URL registered with discovery ("" when not)
            "discoveryServerUrl": client.base_url,
            "heartbeatInterval": f"{interval:g}",  # seconds
            "lastHeartbeatAt": "",  # ISO 8601 time of the last accepted heartbeat
            "lastRefreshAt": "",  # ISO 8601 time discovery last answered the list
            "lastError": "",  # the current failure, "" when none
        }
        self.effective: tuple[str, tuple[str, ...]] | None = None

    def run(self, stop: threading.Event) -> None:
        """Beat until ``stop`` is set, then unregister."""
        log_event(
            logger,
            "heartbeat_started",
            discoveryServerUrl=self.client.base_url,
            url=self.url or None,
            interval=self.interval,
        )
        if not self.url:
            log_event(
                logger,
                "registration_off",
                logging.WARNING,
                reason="RENDER_EXTERNAL_URL is not set, so this service does not register "
                "with discovery; the chat-server list is still refreshed",
            )
        failed_beats = 0
        while not stop.is_set():
            started = time.monotonic()
            failed_beats = 0 if self.beat() else failed_beats + 1
            delay = backoff_delay(self.interval, failed_beats)
            stop.wait(max(0.0, started + delay - time.monotonic()))
        self.unregister()
        log_event(logger, "heartbeat_stopped")

    def beat(self) -> bool:
        """One beat; False when discovery answered none of its calls."""
        answered = False
        if self.url:
            answered |= self.send_heartbeat()
        servers = self.fetch_chat_servers()
        answered |= servers is not None
        self.publish(servers)
        return answered

    def send_heartbeat(self) -> bool:
        try:
            created = self.client.register(self.service_name, self.version, self.url)
        except DiscoveryError as error:
            self.registration.failed(str(error), url=self.url)
            self.state.update(registration="failing", lastError=str(error))
            return False
        recovered = self.registration.succeeded(url=self.url, newInstance=created)
        if not recovered and (not self.registered or created):
            # First success, or the registry forgot us (it restarted) and we are back.
            log_event(logger, "registered", url=self.url, newInstance=created)
        self.registered = True
        self.state.update(
            registration="registered",
            registeredUrl=self.url,
            lastHeartbeatAt=now_iso(),
            lastError="",
        )
        return True

    def fetch_chat_servers(self) -> list[str] | None:
        """RUNNING chat servers, sorted so every refresh writes the same list; None on failure."""
        try:
            instances = self.client.discover_all(CHAT_SERVICE_NAME, CHAT_SERVICE_VERSION)
        except DiscoveryError as error:
            self.listing.failed(str(error))
            if not self.registration.failing:
                self.state["lastError"] = str(error)
            return None
        self.listing.succeeded()
        self.state["lastRefreshAt"] = now_iso()
        if not self.registration.failing:
            self.state["lastError"] = ""
        listed = sorted({instance.url for instance in instances})
        accepted, refused = screen_chat_servers(listed, self.allowed_hosts, self.allow_plain_http)
        if refused and listed != self.last_listed:
            log_event(
                logger,
                "chat_servers_refused",
                logging.WARNING,
                # The registry's text: bounded, whatever it sends.
                refused=[{**entry, "url": entry["url"][:200]} for entry in refused[:20]],
                refusedCount=len(refused),
            )
        self.last_listed = listed
        return accepted

    def publish(self, servers: list[str] | None) -> None:
        """Write the list (when discovery answered) and the state; log a changed outcome."""
        ttl_ms = int(self.interval * LIST_TTL_BEATS * 1000)
        try:
            if servers is None:
                effective = store.save_state(self.redis, self.state)
            else:
                effective = store.save_chat_servers(self.redis, servers, ttl_ms, self.state)
        except (RedisError, OSError) as error:
            self.redis_health.failed(str(error) or type(error).__name__)
            return
        self.redis_health.succeeded()
        outcome = chat_servers_in_use(effective, self.fallback_servers)
        if outcome != self.effective:
            self.effective = outcome
            log_event(logger, "chat_servers_changed", source=outcome[0], servers=list(outcome[1]))

    def unregister(self) -> None:
        if not self.url:
            return
        try:
            known = self.client.unregister(self.service_name, self.version, self.url)
        except DiscoveryError as error:
            log_event(logger, "unregister_failed", logging.WARNING, url=self.url, error=str(error))
            return
        log_event(logger, "unregistered", url=self.url, known=known)
        self.state.update(registration="unregistered", registeredUrl="", lastError="")
        # A Redis failure was already reported by the beats, and this process is leaving.
        with contextlib.suppress(RedisError, OSError):
            store.save_state(self.redis, self.state)

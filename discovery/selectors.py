"""Discovery reads for ``/status`` and the admin dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from . import store
from .services import REGISTRY_DOWN_AFTER_SECONDS, chat_servers_in_use

REGISTRATION_NOTES = {
    "registered": "Registered with discovery; heartbeats are being accepted.",
    "failing": "Heartbeats are failing; discovery may list this service as DOWN.",
    "stale": "No heartbeat for 15 s or more: is `manage.py heartbeat` running?",
    "unregistered": "Unregistered: the heartbeat stopped cleanly.",
    "off": "Registration off: RENDER_EXTERNAL_URL is not set.",
    "unknown": "No heartbeat has reported yet: is `manage.py heartbeat` running?",
}


async def discovery_status() -> dict[str, Any]:
    """Discovery as every instance sees it (read from Redis, so all report the same).

    A plain dict with these keys:

    - ``registration``: ``"registered"`` (last heartbeat accepted less than 15 s ago),
      ``"failing"`` (the last attempt failed), ``"stale"`` (registered, but no heartbeat
      for 15 s: the registry will have marked us DOWN), ``"unregistered"`` (the
      heartbeat stopped cleanly), ``"off"`` (no ``RENDER_EXTERNAL_URL``) or
      ``"unknown"`` (no heartbeat process has reported to this Redis).
    - ``registrationNote``: one sentence explaining ``registration``.
    - ``registeredUrl``: the URL registered with discovery; None unless registered
      (or stale, or failing after having registered).
    - ``discoveryServerUrl``: the registry the heartbeat talks to.
    - ``lastHeartbeat``: ISO 8601 time of the last accepted heartbeat, or None.
    - ``heartbeatAgeSeconds``: seconds since then, or None.
    - ``lastRefresh``: ISO 8601 time discovery last answered the chat-server list, or None.
    - ``lastError``: the current failure as the heartbeat logged it, or None.
    - ``chatServers``: the chat-server URLs matches are assigned to right now.
    - ``chatServerSource``: ``"discovery"`` (the list in Redis), ``"fallback"``
      (``CHAT_SERVER_URLS``) or ``"none"`` (matching answers NO_CHAT_SERVER).

    Raises ``RedisError`` when Redis is unreachable, like the other ``/status`` reads.
    """
    discovered, state = await store.read_discovery()
    source, servers = chat_servers_in_use(discovered, settings.CHAT_SERVER_URLS)

    last_heartbeat = state.get("lastHeartbeatAt") or None
    age = _seconds_since(last_heartbeat)
    registration = state.get("registration") or "unknown"
    if registration == "registered" and (age is None or age >= REGISTRY_DOWN_AFTER_SECONDS):
        registration = "stale"
    registered_url = state.get("registeredUrl") or None
    if registration in ("off", "unregistered", "unknown"):
        registered_url = None

    return {
        "registration": registration,
        "registrationNote": REGISTRATION_NOTES.get(registration, ""),
        "registeredUrl": registered_url,
        "discoveryServerUrl": state.get("discoveryServerUrl") or settings.DISCOVERY_SERVER_URL,
        "lastHeartbeat": last_heartbeat,
        "heartbeatAgeSeconds": None if age is None else round(age, 1),
        "lastRefresh": state.get("lastRefreshAt") or None,
        "lastError": state.get("lastError") or None,
        "chatServers": list(servers),
        "chatServerSource": source,
    }


def _seconds_since(iso_time: str | None) -> float | None:
    if not iso_time:
        return None
    try:
        then = datetime.fromisoformat(iso_time)
    except ValueError:
        return None
    return max(0.0, (datetime.now(UTC) - then).total_seconds())

"""Discovery reads for /status and the admin."""

from __future__ import annotations

from typing import Any

from django.conf import settings


async def discovery_status() -> dict[str, Any]:
    return {
        "registeredUrl": settings.RENDER_EXTERNAL_URL or None,
        "chatServers": list(settings.CHAT_SERVER_URLS),
        "chatServerSource": "fallback",
    }

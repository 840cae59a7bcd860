"""Chat-session reads."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from . import store


async def get_user_session(user_id: str) -> dict[str, Any] | None:
    """The user's active session ``{chatId, serverUrl, participants, interest, createdAt}``."""
    return await store.get_user_session(user_id)


async def count_active_sessions() -> int:
    return await store.count_active_sessions(settings.SESSION_TTL_SECONDS)

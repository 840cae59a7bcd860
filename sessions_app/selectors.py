"""Chat-session reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from . import store


async def get_user_session(user_id: str) -> dict[str, Any] | None:
    """The user's active session ``{chatId, serverUrl, participants, interest, createdAt}``."""
    return await store.get_user_session(user_id)


async def count_active_sessions() -> int:
    return await store.count_active_sessions(settings.SESSION_TTL_SECONDS)


# Reads for the admin dashboard.


@dataclass(frozen=True)
class ActiveSession:
    chat_id: str
    server_url: str
    participants: list[str]
    interest: str
    age_seconds: float


@dataclass(frozen=True)
class SessionPage:
    total: int
    sessions: list[ActiveSession]


def _active_session(session: dict[str, Any], now_ms: int) -> ActiveSession:
    return ActiveSession(
        chat_id=session["chatId"],
        server_url=session.get("serverUrl", ""),
        participants=list(session.get("participants", [])),
        interest=session.get("interest", ""),
        age_seconds=max(0.0, (now_ms - session.get("createdAt", now_ms)) / 1000),
    )


async def list_active_sessions(offset: int, limit: int) -> SessionPage:
    """A page of the sessions within their time-to-live, newest first."""
    now_ms, total, sessions = await store.recent_sessions(
        settings.SESSION_TTL_SECONDS, offset, limit
    )
    return SessionPage(total, [_active_session(session, now_ms) for session in sessions])


async def find_sessions(query: str) -> list[ActiveSession]:
    """The session whose chat id is ``query`` and the session of user ``query``."""
    now_ms, sessions = await store.find_sessions(query)
    return [_active_session(session, now_ms) for session in sessions]

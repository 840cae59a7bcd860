"""Chat-session writes: ending a session, for the web client and for the admin."""

from __future__ import annotations

from typing import Any

from . import store


async def end_user_session(user_id: str) -> dict[str, Any] | None:
    """End the user's session for both participants; the ended session, or None."""
    return await store.end_user_session(user_id)


async def end_session_through(participant: str, chat_id: str) -> bool:
    """End chat ``chat_id`` through ``participant``, only while it is still their
    session: a stale page never ends the newer chat the participant has moved on to.
    False if it had already ended."""
    current = await store.get_user_session(participant) if participant else None
    if current is None or current.get("chatId") != chat_id:
        return False
    await store.end_user_session(participant)
    return True

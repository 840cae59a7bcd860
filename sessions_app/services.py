"""Chat-session writes."""

from __future__ import annotations

from typing import Any

from . import store


async def end_user_session(user_id: str) -> dict[str, Any] | None:
    """End the user's session for both participants; the ended session, or None."""
    return await store.end_user_session(user_id)

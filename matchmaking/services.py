"""Matchmaking writes: the matcher, leases, cancel and maintenance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from . import notifications, store

MAINTENANCE_MESSAGE = "The matchmaking service is under maintenance. Please try again later."


@dataclass(frozen=True)
class MatchResult:
    """Outcome of :func:`enqueue_or_match`; ``state`` is one of the ``*_STATE`` names."""

    state: str
    partner: str = ""
    interest: str = ""
    chat_id: str = ""
    chat_server_url: str = ""
    partner_waited_ms: int = 0
    partner_token: str = ""


WAITING_STATE = "WAITING"
MATCHED_STATE = "MATCHED"
MAINTENANCE_STATE = "MAINTENANCE"
NO_CHAT_SERVER_STATE = "NO_CHAT_SERVER"


async def enqueue_or_match(user_id: str, interests: list[str], token: str) -> MatchResult:
    """Match ``user_id`` with the longest-waiting compatible user, or queue them.

    One Lua call does it all atomically (see ``lua/enqueue_or_match.lua``); ``token``
    identifies the stream that will own the user's place while they wait.
    ``interests`` must already be normalized (see :mod:`matchmaking.validation`).
    """
    reply = await store.enqueue_or_match(
        user_id,
        interests,
        token,
        uuid.uuid4().hex,
        lease_ms=int(settings.LEASE_SECONDS * 1000),
        window_ms=settings.POPULAR_WINDOW_SECONDS * 1000,
        session_ttl_s=settings.SESSION_TTL_SECONDS,
        maintenance_default=settings.MAINTENANCE_MODE,
        fallback_servers=settings.CHAT_SERVER_URLS,
    )
    if reply[0] != MATCHED_STATE:
        return MatchResult(state=reply[0])
    partner, interest, chat_id, server, waited_ms, partner_token = reply[1:]
    return MatchResult(
        MATCHED_STATE, partner, interest, chat_id, server, int(waited_ms), partner_token
    )


# Outcomes of renew_lease.
LEASE_RENEWED = 1
LEASE_GONE = 0
LEASE_TAKEN = -1


async def renew_lease(user_id: str, token: str) -> int:
    """Keep a waiting user's place; returns LEASE_RENEWED, LEASE_GONE or LEASE_TAKEN."""
    return await store.renew_lease(user_id, token, int(settings.LEASE_SECONDS * 1000))


async def leave_queues(user_id: str, token: str = "") -> bool:
    """Remove the user from every queue (only if ``token`` still owns their place)."""
    return await store.leave_queues(user_id, token)


async def cancel_matchmaking(user_id: str) -> bool:
    """Take the user out of every queue and close their open stream, wherever it is."""
    was_waiting = await store.leave_queues(user_id, "")
    await notifications.send_to_user(user_id, notifications.STREAM_CANCELLED)
    return was_waiting


async def set_maintenance(on: bool, message: str = MAINTENANCE_MESSAGE) -> None:
    """Switch maintenance for every instance; entering it closes every waiting stream."""
    await store.set_maintenance_flag(on)
    if on:
        await notifications.broadcast(notifications.SERVICE_MAINTENANCE, message=message)

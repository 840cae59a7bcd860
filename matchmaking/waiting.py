"""A queued stream's wait: its clocks, its keepalive, and the messages that end it.

:class:`WaitingStream` is the part of the ``GET /matchmaking`` consumer
(:class:`matchmaking.consumers.MatchmakingStreamConsumer`, built on it) that runs while
the user holds a place in the queues. It waits for whichever comes first: a message
from the Channels layer (dispatched by type name, as Channels' consumers do), the
client's disconnect, or one of the clocks of :class:`WaitClock` (the keepalive that
renews the place every ``KEEPALIVE_SECONDS``, the user's ``fallbackAfter``, the longest
wait ``MAX_WAIT_SECONDS``).

A keepalive that finds the place gone settles what became of it
(:func:`matchmaking.services.settle_lost_place`): a match whose notification was lost
is told from the session store, once its arriving side has confirmed it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from django.conf import settings

from animochat import pools
from animochat.logging import log_event
from animochat.sse import KEEPALIVE_COMMENT, EventStream, Receive

from . import events, notifications, services, stream_ids

logger = logging.getLogger("matchmaking.stream")

# How long a stream whose place vanished waits for the notification saying why.
NOTIFICATION_GRACE_SECONDS = 1.0

KEEPALIVE = "keepalive"
FALLBACK = "fallback"
GIVE_UP = "give_up"


class WaitClock:
    """The keepalive (again and again), the fallback time and the longest wait (once
    each) of a stream that started waiting at ``started`` (``time.monotonic()``)."""

    def __init__(self, started: float, fallback_after: float | None) -> None:
        self.next_keepalive = time.monotonic() + settings.KEEPALIVE_SECONDS
        self.fallback_at = started + fallback_after if fallback_after else None
        max_wait = settings.MAX_WAIT_SECONDS
        self.give_up_at = started + max_wait if max_wait else None

    def timeout(self) -> float:
        """Seconds until the next of them."""
        deadline = min(t for t in (self.next_keepalive, self.fallback_at, self.give_up_at) if t)
        return max(0.0, deadline - time.monotonic())

    def due(self) -> str | None:
        """The one that has come (giving up first), now spent; None if none has."""
        now = time.monotonic()
        if self.give_up_at and now >= self.give_up_at:
            self.give_up_at = None
            return GIVE_UP
        if self.fallback_at and now >= self.fallback_at:
            self.fallback_at = None
            return FALLBACK
        if now >= self.next_keepalive:
            self.next_keepalive = now + settings.KEEPALIVE_SECONDS
            return KEEPALIVE
        return None


class WaitingStream:
    """A stream's state and its wait; the consumer adds the request before it."""

    def __init__(self, receive: Receive, stream: EventStream) -> None:
        self.receive, self.stream = receive, stream
        self.token = secrets.token_hex(16)  # names the stream in its ended id and stream slot
        self.user_id = ""  # once the request is read
        self.interests: list[str] = []  # the user's, for the estimated wait
        self.pool = pools.default_pool()  # the stream's match pool (pool=)
        self.slot_client = ""  # the client address holding a stream slot, once claimed
        # Unconfirmed matches that took this stream's place: when each was first seen.
        self.pending_seen: dict[str, float] = {}
        self.subscription = notifications.Subscription()

    @property
    def channel(self) -> str:
        """The stream's channel, once subscribed: also the token of the user's lease."""
        return self.subscription.channel

    async def wait(self, started: float, fallback_after: float | None) -> str:
        """Wait for a message, a disconnect or the next of the stream's clocks; return
        how the stream ended (see ``consumers.GIVES_PLACE_BACK``)."""
        disconnect = asyncio.ensure_future(self.receive())
        message = self.subscription.receive()
        clock = WaitClock(started, fallback_after)
        on_time = {
            GIVE_UP: lambda: self.on_wait_timeout(started),
            FALLBACK: lambda: self.on_fallback_time(started),
            KEEPALIVE: self.on_keepalive,
        }
        try:
            while True:
                done, _ = await asyncio.wait(
                    {message, disconnect},
                    timeout=clock.timeout(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnect in done:
                    return "disconnect"
                if message in done:
                    outcome = await self.dispatch(message.result())
                    if not outcome:  # read on (most messages end the wait)
                        message = self.subscription.receive()
                else:
                    outcome = await on_time[due]() if (due := clock.due()) else None
                if outcome:
                    return outcome
        finally:
            disconnect.cancel()

    async def on_matched_here(self, result: services.MatcherReply, started: float) -> str:
        """Confirm the match this stream's call made and tell both sides (the user is
        told to retry if the partner undid it first)."""
        confirmed = await services.complete_match(result, self.user_id, self.channel)
        if confirmed is None:
            log_event(logger, "match_undone", user=self.user_id, chatId=result.chat_id)
            await self.stream.reject(events.service_unavailable())
            return "undone"
        log_event(
            logger,
            "match",
            user=self.user_id,
            partner=confirmed.partner,
            chatId=confirmed.chat_id,
            interest=confirmed.interest,
            fallback=confirmed.fallback,
            chatServer=confirmed.chat_server_url,
            partnerWaitedMs=confirmed.partner_waited_ms,
            ms=ms(started),
        )
        await self.stream.reply(
            200, events.matched(confirmed, confirmed.partner), confirmed.chat_id
        )
        return "matched"

    async def on_wait_timeout(self, started: float) -> str | None:
        """MAX_WAIT_SECONDS have passed: give the place back first, so a partner arriving
        meanwhile is never matched with a user told the search stopped; then say so."""
        if not await services.leave_queues(self.user_id, self.channel, self.pool):
            return await self.on_keepalive()  # matched, replaced or cancelled just now
        log_event(logger, "wait_timeout", user=self.user_id, waitedMs=ms(started))
        await self.stream.reject(events.wait_timeout(), self.ended_id(stream_ids.WAIT_TIMEOUT))
        return "wait_timeout"

    async def on_fallback_time(self, started: float) -> str | None:
        """The user waited ``fallbackAfter`` seconds: anyone past theirs will do now."""
        result = await services.enter_fallback(self.user_id, self.channel, self.pool)
        if result.state != services.MATCHED_STATE:
            return None  # still waiting (now for anyone too), or already taken care of
        return await self.on_matched_here(result, started)

    async def on_keepalive(self) -> str | None:
        if self.slot_client:
            services.renew_stream_slot(self.slot_client, self.token)
        lease = await services.renew_lease(self.user_id, self.channel, self.interests, self.pool)
        if lease.state == services.WAITING_STATE:
            await self.stream.event(events.waiting(lease), comment=KEEPALIVE_COMMENT)
            return None
        if lease.state == services.TAKEN_STATE:
            await self.end_with(events.replaced(), stream_ids.REPLACED)
            return "replaced"
        # No lease: matched while the notification was lost, or the place is gone.
        settled = await services.settle_lost_place(
            self.user_id, self.channel, self.pending_seen, self.pool
        )
        if settled.state == services.MATCHED_STATE:
            await self.stream.close(events.matched(settled, settled.partner), settled.chat_id)
            return "matched"
        if settled.state == services.PENDING_STATE:
            await self.stream.write(KEEPALIVE_COMMENT)  # the user is not told yet
        if settled.state != services.GONE_STATE:
            return None  # still pending, or undone: the user waits on in their place
        # A cancel takes the place away just before it tells this stream: let its
        # message arrive (it may have already) rather than report a loss the user did
        # not suffer.
        if (message := self.subscription.next) is not None:
            await asyncio.wait({message}, timeout=NOTIFICATION_GRACE_SECONDS)
            if message.done():
                return None  # wait() acts on the message next
        await self.stream.reject(events.queue_place_lost())
        return "lost"

    # -- messages from the Channels layer, by type -------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> str | None:
        """Hand a message to the method named for its type, as Channels' consumers do
        (``match.found`` -> :meth:`match_found`); return an outcome if the stream ends."""
        kind = message.get("type", "")
        handler = getattr(self, kind.replace(".", "_"), None) if "." in kind else None
        return await handler(message) if handler and not kind.startswith("_") else None

    async def match_found(self, message: dict[str, Any]) -> str:
        await self.stream.close(message["event"], message["event"]["chatId"])
        return "matched"

    async def stream_replaced(self, message: dict[str, Any]) -> str:
        await self.end_with(events.replaced(), stream_ids.REPLACED)
        return "replaced"

    async def stream_cancelled(self, message: dict[str, Any]) -> str:
        await self.end_with(events.cancelled(), stream_ids.CANCELLED)
        return "cancelled"

    async def service_maintenance(self, message: dict[str, Any]) -> str:
        await self.end_with(events.maintenance(message.get("message", "")), stream_ids.MAINTENANCE)
        return "maintenance"

    async def layer_connection_lost(self, message: dict[str, Any]) -> str | None:
        # Notifications may be lost from now on, and Redis may be down: check the
        # place now instead of at the next keepalive.
        return await self.on_keepalive()

    def ended_id(self, kind: str) -> str:
        return stream_ids.ended_stream_id(self.user_id, kind, self.token)

    async def end_with(self, event: dict[str, Any], kind: str) -> None:
        """End the stream with ``event``, whose id makes a reconnect get 204."""
        await self.stream.close(event, self.ended_id(kind))


def ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)

"""``GET /matchmaking``: the Server-Sent Events stream that finds a user a partner.

This module is the orchestration only: the transport is :mod:`animochat.sse`, the
events :mod:`matchmaking.events`, the query's checks :mod:`matchmaking.validation`.
It is a raw ASGI application rather than a Channels ``AsyncHttpConsumer`` or a Django
view: the stream must listen to the client (for disconnects), to the Channels layer
(for notifications) and to a keepalive timer at once, which ``AsyncHttpConsumer``
cannot do once ``handle()`` runs, at a fraction of a Django view's per-request cost.

Notifications are lossless by construction: the stream's channel, which its process
listens on before the channel exists, is the token of the lease that holds the user's
place, so whoever takes or ends that place (a partner arriving a microsecond later, a
newer stream, a cancel) learns where to tell the stream from the same atomic script.
A stream whose notification was lost anyway (a Redis blip) learns of its match from
the session store at the next keepalive, but only once the arriving side, holding the
matcher's reply, has confirmed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from animochat.auth import NotAuthorized, bearer_token
from animochat.clientaddr import client_bucket, scope_client
from animochat.errors import InvalidInput
from animochat.logging import log_event
from animochat.ratelimit import RateLimited, check_rate_limit
from animochat.redis_errors import record_redis_error
from animochat.sse import KEEPALIVE_COMMENT, EventStream, StreamClosed, read_body, request_headers
from sessions_app import selectors as session_selectors

from . import events, metrics, notifications, services, stream_ids
from .validation import StreamRequest, parse_stream_query

logger = logging.getLogger("matchmaking.stream")

# How long a stream whose place vanished waits for the notification saying why.
NOTIFICATION_GRACE_SECONDS = 1.0
# Outcomes after which the stream may still hold a place in the queues.
GIVES_PLACE_BACK = {"disconnect", "replaced", "maintenance"}


class MatchmakingStreamConsumer:
    """One instance per ``GET /matchmaking`` request; see the module docstring."""

    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            await cls(scope, receive, send).handle()

        return app

    def __init__(self, scope, receive, send) -> None:
        self.scope, self.receive = scope, receive
        self.headers = request_headers(scope)
        self.stream = EventStream(send, self.headers.get("origin"), settings.SSE_RETRY_MS)
        self.token = uuid.uuid4().hex  # names the stream in its ended id and stream slot
        self.user_id = ""  # once the request is read
        self.interests: list[str] = []  # the user's, for the estimated wait
        self.slot_client = ""  # the client address holding a stream slot, once claimed
        # Unconfirmed matches that took this stream's place: when each was first seen.
        self.pending_seen: dict[str, float] = {}
        self.subscription = notifications.Subscription()

    @property
    def channel(self) -> str:
        """The stream's channel, once subscribed: also the token of the user's lease."""
        return self.subscription.channel

    async def handle(self) -> None:
        await read_body(self.receive)
        method = self.scope["method"]
        if method == "OPTIONS":
            await self.stream.preflight()
        elif method not in ("GET", "HEAD"):
            await self.stream.reply(405, events.method_not_allowed(), headers={"Allow": "GET"})
        # Before any Redis work: a process past MAX_OPEN_STREAMS sheds load at once.
        elif metrics.open_streams() >= settings.MAX_OPEN_STREAMS:
            log_event(logger, "server_busy", logging.WARNING, open=metrics.open_streams())
            await self.stream.reply(503, events.server_busy(), headers={"Retry-After": "5"})
        else:
            with metrics.counted_stream():
                await self.serve()

    def parse_query(self) -> StreamRequest:
        return parse_stream_query(self.scope.get("query_string", b""))

    async def serve(self) -> None:
        """A GET within the process's stream limit: check it, then match or wait."""
        client = client_bucket(scope_client(self.scope))
        try:
            request = self.parse_query()
            await check_rate_limit("matchmaking", scope_client(self.scope))
            token = bearer_token(self.headers.get("authorization")) or request.token
            await services.authorize_stream(request.user_id, request.ticket, token)
        except (InvalidInput, NotAuthorized) as error:
            return await self.stream.reject(error.status, error.code, error.message)
        except RateLimited as error:
            retry = {"Retry-After": str(error.retry_after)}
            return await self.stream.reject(429, "RATE_LIMITED", error.message, retry)
        except (RedisError, OSError):
            return await self.stream.reply(503, events.service_unavailable())
        self.user_id = request.user_id
        with contextlib.suppress(StreamClosed):
            if last_event_id := self.headers.get("last-event-id", "").strip():
                return await self.resume(last_event_id)  # EventSource reconnecting
            try:
                if not await services.claim_stream_slot(client, self.token):
                    log_event(logger, "too_many_streams", logging.WARNING, user=self.user_id)
                    return await self.stream.reply(429, events.too_many_streams())
                self.slot_client = client
                await self.match_or_wait(request)
            except (RedisError, OSError):
                await self.stream.reply(503, events.service_unavailable())
            finally:
                if self.slot_client:
                    with contextlib.suppress(Exception):
                        await services.release_stream_slot(client, self.token)

    async def resume(self, last_event_id: str) -> None:
        """Answer a reconnect without queuing the user or touching their session."""
        try:
            session = await session_selectors.get_user_session(self.user_id)
        except (RedisError, OSError):
            return await self.stream.reply(503, events.service_unavailable())
        if session and session["chatId"] == last_event_id:
            log_event(logger, "resumed", user=self.user_id, chatId=last_event_id)
            event = events.matched_from_session(session, self.user_id)
            await self.stream.reply(200, event, last_event_id)
        elif stream_ids.is_chat_id(last_event_id) or stream_ids.names_ended_stream(
            self.user_id, last_event_id
        ):
            log_event(logger, "reconnect_refused", user=self.user_id, lastEventId=last_event_id)
            await self.stream.no_content()
        else:
            await self.stream.reply(400, events.invalid_last_event_id())

    async def match_or_wait(self, request: StreamRequest) -> None:
        user_id, self.interests, started = request.user_id, request.interests, time.monotonic()
        queued = False
        try:
            await self.subscription.open()
            result = await services.enqueue_or_match(
                user_id, self.interests, self.channel, request.fallback_after
            )
            if result.replaced_token:  # an older stream held the place: it must close
                await notifications.send(result.replaced_token, notifications.STREAM_REPLACED)
            if result.state == services.MATCHED_STATE:
                return await self.on_matched_here(result, started)
            if result.state == services.MAINTENANCE_STATE:
                ended_id = self.ended_id(stream_ids.MAINTENANCE)
                return await self.stream.reply(503, events.maintenance(), ended_id)
            if result.state == services.NO_CHAT_SERVER_STATE:
                return await self.stream.reply(503, events.no_chat_server())
            queued = True
            log_event(logger, "enqueue", user=user_id, interests=self.interests, ms=ms(started))
            await self.stream.start(200)
            await self.stream.event(events.waiting(result))
            outcome = await self.wait(started, request.fallback_after)
            if queued := outcome in GIVES_PLACE_BACK:
                await self.leave(outcome, started)
                queued = False
        except (RedisError, OSError):
            log_event(logger, "redis_unavailable", logging.WARNING, user=user_id)
            record_redis_error()
            with contextlib.suppress(StreamClosed):
                await self.stream.reply(503, events.service_unavailable())
        except asyncio.CancelledError:
            # Server shutdown (SIGTERM): give the place back, then tell the client.
            # Daphne gathers its cancelled applications before stopping the reactor, and
            # one re-raised CancelledError would end that wait early, stranding the
            # other streams' places; so this returns normally once cleaned up.
            if queued:
                with contextlib.suppress(Exception):
                    await self.leave("shutdown", started)
                queued = False
            with contextlib.suppress(Exception):
                if self.stream.started:
                    await self.stream.close(events.server_shutdown())
                else:  # stopped during the matcher's call (undone): nothing to resume
                    await self.stream.reply(503, events.service_unavailable())
        finally:
            if queued:  # the client vanished mid-write, or Redis failed mid-wait
                with contextlib.suppress(Exception):
                    await self.leave("disconnect", started)
            await self.subscription.close()

    async def on_matched_here(self, result: services.MatcherReply, started: float) -> str:
        """Confirm the match this stream's call made and tell both sides (the user is
        told to retry if the partner undid it first)."""
        confirmed = await services.complete_match(result, self.user_id, self.channel)
        if confirmed is None:
            log_event(logger, "match_undone", user=self.user_id, chatId=result.chat_id)
            await self.stream.reply(503, events.service_unavailable())
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

    async def leave(self, outcome: str, started: float) -> None:
        removed = await services.leave_queues(self.user_id, self.channel)
        log_event(logger, outcome, user=self.user_id, removed=removed, waitedMs=ms(started))

    async def wait(self, started: float, fallback_after: float | None) -> str:
        """Wait for a message, a disconnect, a keepalive, the fallback time or the end
        of the longest wait; return how the stream ended (see ``GIVES_PLACE_BACK``)."""
        disconnect = asyncio.ensure_future(self.receive())
        message = self.subscription.receive()
        next_keepalive = time.monotonic() + settings.KEEPALIVE_SECONDS
        fallback_at = started + fallback_after if fallback_after else None
        give_up_at = started + settings.MAX_WAIT_SECONDS if settings.MAX_WAIT_SECONDS else None
        try:
            while True:
                deadline = min(t for t in (next_keepalive, fallback_at, give_up_at) if t)
                done, _ = await asyncio.wait(
                    {message, disconnect},
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                now, outcome = time.monotonic(), None
                if disconnect in done:
                    return "disconnect"
                if message in done:
                    received, message = message.result(), self.subscription.receive()
                    outcome = await self.dispatch(received)
                elif give_up_at and now >= give_up_at:
                    give_up_at = None
                    outcome = await self.on_wait_timeout(started)
                elif fallback_at and now >= fallback_at:
                    fallback_at = None
                    outcome = await self.on_fallback_time(started)
                elif now >= next_keepalive:
                    next_keepalive = now + settings.KEEPALIVE_SECONDS
                    outcome = await self.on_keepalive()
                if outcome:
                    return outcome
        finally:
            disconnect.cancel()

    async def on_wait_timeout(self, started: float) -> str | None:
        """MAX_WAIT_SECONDS have passed: give the place back first, so a partner arriving
        meanwhile is never matched with a user told the search stopped; then say so."""
        if not await services.leave_queues(self.user_id, self.channel):
            return await self.on_keepalive()  # matched, replaced or cancelled just now
        log_event(logger, "wait_timeout", user=self.user_id, waitedMs=ms(started))
        await self.end_with(events.wait_timeout(), stream_ids.WAIT_TIMEOUT)
        return "wait_timeout"

    async def on_fallback_time(self, started: float) -> str | None:
        """The user waited ``fallbackAfter`` seconds: anyone past theirs will do now."""
        result = await services.enter_fallback(self.user_id, self.channel)
        if result.state != services.MATCHED_STATE:
            return None  # still waiting (now for anyone too), or already taken care of
        return await self.on_matched_here(result, started)

    async def on_keepalive(self) -> str | None:
        if self.slot_client:
            services.renew_stream_slot(self.slot_client, self.token)
        lease = await services.renew_lease(self.user_id, self.channel, self.interests)
        if lease.state == services.WAITING_STATE:
            await self.stream.event(events.waiting(lease), comment=KEEPALIVE_COMMENT)
            return None
        if lease.state == services.TAKEN_STATE:
            await self.end_with(events.replaced(), stream_ids.REPLACED)
            return "replaced"
        # No lease: matched while the notification was lost, or the place is gone.
        settled = await services.settle_lost_place(self.user_id, self.channel, self.pending_seen)
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
        await self.stream.close(events.queue_place_lost())
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

"""``GET /matchmaking``: the Server-Sent Events stream that finds a user a partner.

This module is the orchestration only: the transport is :mod:`animochat.sse`, the
events and errors :mod:`matchmaking.events`, the query's checks
:mod:`matchmaking.validation`, the wait in the queue :mod:`matchmaking.waiting` (which
this consumer builds on), the matcher's rules :mod:`matchmaking.services`.
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

from django.conf import settings
from redis.exceptions import RedisError

from animochat.auth import bearer_token
from animochat.clientaddr import client_bucket, scope_client
from animochat.errors import ApiError
from animochat.logging import log_event
from animochat.ratelimit import check_rate_limit
from animochat.redis_errors import record_redis_error
from animochat.sse import EventStream, StreamClosed, read_body, request_headers

from . import events, metrics, notifications, selectors, services, stream_ids
from .validation import StreamRequest, parse_stream_query
from .waiting import WaitingStream, ms

logger = logging.getLogger("matchmaking.stream")

# Outcomes after which the stream may still hold a place in the queues.
GIVES_PLACE_BACK = {"disconnect", "replaced", "maintenance"}


class MatchmakingStreamConsumer(WaitingStream):
    """One instance per ``GET /matchmaking`` request; see the module docstring."""

    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            await cls(scope, receive, send).handle()

        return app

    def __init__(self, scope, receive, send) -> None:
        self.scope = scope
        self.headers = request_headers(scope)
        origin = self.headers.get("origin")
        super().__init__(receive, EventStream(send, origin, settings.SSE_RETRY_MS))

    async def handle(self) -> None:
        await read_body(self.receive)
        method = self.scope["method"]
        if method == "OPTIONS":
            await self.stream.preflight()
        elif method not in ("GET", "HEAD"):
            await self.stream.reject(events.method_not_allowed())
        # Before any Redis work: a process past MAX_OPEN_STREAMS sheds load at once.
        elif metrics.open_streams() >= settings.MAX_OPEN_STREAMS:
            log_event(logger, "server_busy", logging.WARNING, open=metrics.open_streams())
            await self.stream.reject(events.server_busy())
        else:
            with metrics.counted_stream(), contextlib.suppress(StreamClosed):
                await self.serve()

    def parse_query(self) -> StreamRequest:
        return parse_stream_query(self.scope.get("query_string", b""))

    async def serve(self) -> None:
        """A GET within the process's stream limit: check it, then resume, or match or
        wait; every refusal on the way is an :class:`ApiError`."""
        client = client_bucket(scope_client(self.scope))
        try:
            request = self.parse_query()
            await check_rate_limit("matchmaking", scope_client(self.scope))
            token = bearer_token(self.headers.get("authorization")) or request.token
            await services.authorize_stream(request.user_id, request.ticket, token)
            self.user_id = request.user_id
            if last_event_id := self.headers.get("last-event-id", "").strip():
                return await self.resume(last_event_id)  # EventSource reconnecting
            if not await services.claim_stream_slot(client, self.token):
                log_event(logger, "too_many_streams", logging.WARNING, user=self.user_id)
                raise events.too_many_streams()
            self.slot_client = client
            await self.match_or_wait(request)
        except ApiError as error:
            await self.stream.reject(error)
        except (RedisError, OSError):
            await self.stream.reject(events.service_unavailable())
        finally:
            if self.slot_client:
                with contextlib.suppress(Exception):
                    await services.release_stream_slot(client, self.token)

    async def resume(self, last_event_id: str) -> None:
        event = await selectors.reconnect_event(self.user_id, last_event_id)
        if event is None:
            log_event(logger, "reconnect_refused", user=self.user_id, lastEventId=last_event_id)
            return await self.stream.no_content()
        log_event(logger, "resumed", user=self.user_id, chatId=last_event_id)
        await self.stream.reply(200, event, last_event_id)

    async def match_or_wait(self, request: StreamRequest) -> None:
        user_id, self.interests, started = request.user_id, request.interests, time.monotonic()
        self.pool = request.pool
        queued = False
        try:
            await self.subscription.open()
            result = await services.enqueue_or_match(
                user_id, self.interests, self.channel, request.fallback_after, self.pool
            )
            # An older stream held the place (in this pool or another): it must close.
            for replaced in filter(None, (result.replaced_token, *result.other_replaced_tokens)):
                await notifications.send(replaced, notifications.STREAM_REPLACED)
            if result.state == services.MATCHED_STATE:
                return await self.on_matched_here(result, started)
            if result.state == services.MAINTENANCE_STATE:
                ended_id = self.ended_id(stream_ids.MAINTENANCE)
                return await self.stream.reply(503, events.maintenance(), ended_id)
            if result.state == services.NO_CHAT_SERVER_STATE:
                return await self.stream.reject(events.no_chat_server())
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
                await self.stream.reject(events.service_unavailable())
        except asyncio.CancelledError:
            # Server shutdown (SIGTERM): give the place back, then tell the client.
            # Daphne gathers its cancelled applications before stopping the reactor, and
            # one re-raised CancelledError would end that wait early, stranding the
            # other streams' places; so this returns normally once cleaned up.
            if queued:
                with contextlib.suppress(Exception):
                    await self.leave("shutdown", started)
                queued = False
            # Stopped during the matcher's call (undone), the stream had not started.
            ended = events.server_shutdown() if self.stream.started else None
            with contextlib.suppress(Exception):
                await self.stream.reject(ended or events.service_unavailable())
        finally:
            if queued:  # the client vanished mid-write, or Redis failed mid-wait
                with contextlib.suppress(Exception):
                    await self.leave("disconnect", started)
            await self.subscription.close()

    async def leave(self, outcome: str, started: float) -> None:
        removed = await services.leave_queues(self.user_id, self.channel, self.pool)
        log_event(logger, outcome, user=self.user_id, removed=removed, waitedMs=ms(started))

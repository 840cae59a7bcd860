"""``GET /matchmaking``: the Server-Sent Events stream that finds a user a partner.

This is a raw ASGI application rather than a Channels ``AsyncHttpConsumer`` or a
Django view: the stream must listen to the client (for disconnects), to the Channels
layer (for match notifications) and to a keepalive timer at the same time, which
``AsyncHttpConsumer`` cannot do once ``handle()`` is running, and a raw application
has a fraction of a Django view's per-request cost (see the README's benchmarks).

The order of steps is what makes notifications lossless: the stream joins its user's
group *before* the matcher can queue the user, so a partner arriving a microsecond
later always finds someone listening. A stream whose notification was lost anyway
(a Redis blip) learns of its match from the session store at the next keepalive, but
only once the arriving side, holding the matcher's reply, has confirmed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from animochat.auth import NotAuthorized, authorize_user, bearer_token
from animochat.clientaddr import client_bucket, scope_client
from animochat.http import cors_headers, preflight_headers
from animochat.logging import log_event
from animochat.ratelimit import RateLimited, check_rate_limit
from sessions_app import selectors as session_selectors

from . import notifications, selectors, services, stream_ids
from .metrics import record_redis_error
from .validation import InvalidInput, normalize_interests, parse_number, validate_user_id

logger = logging.getLogger("matchmaking.stream")

MAX_QUERY_STRING = 8 * 1024
MAX_FALLBACK_AFTER = 600
SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
KEEPALIVE_COMMENT = b": keepalive\n\n"


def sse_event(payload: dict[str, Any], event_id: str = "") -> bytes:
    """One event; ``event_id`` (terminal events only) comes back as ``Last-Event-ID``."""
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"id: " + event_id.encode() + b"\n" + data if event_id else data


class StreamClosed(Exception):
    """The client went away; nothing more can be sent."""


class MatchmakingStreamConsumer:
    """One instance per ``GET /matchmaking`` request; see the module docstring."""

    open_streams = 0  # in this process, for /status

    @classmethod
    def as_asgi(cls):
        async def app(scope, receive, send):
            await cls(scope, receive, send).handle()

        return app

    def __init__(self, scope, receive, send) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self.origin = self.headers.get("origin")
        self.token = uuid.uuid4().hex
        self.user_id = ""  # once the request is read
        self.started = False
        # The reconnection delay EventSource is told, sent before the first event.
        self.preamble = f"retry: {settings.SSE_RETRY_MS}\n\n".encode()
        self.channel = ""
        self.listener: asyncio.Future | None = None  # the pending layer.receive()
        self.interests: list[str] = []  # the user's, for the estimated wait
        self.slot_client = ""  # the client address holding a stream slot, once claimed
        # Unconfirmed matches that took this stream's place: when each was first seen.
        self.pending_seen: dict[str, float] = {}

    # -- ASGI plumbing -------------------------------------------------------------

    async def start(self, status: int, extra: dict[str, str] | None = None) -> None:
        headers = {**SSE_HEADERS, **cors_headers(self.origin), **(extra or {})}
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        self.started = True

    async def write(self, body: bytes, more: bool = True) -> None:
        body, self.preamble = self.preamble + body, b""
        try:
            await self.send({"type": "http.response.body", "body": body, "more_body": more})
        except (OSError, RuntimeError) as error:  # Daphne: connection already closed
            raise StreamClosed from error

    async def reply(
        self, status: int, payload: dict[str, Any], event_id: str = "", **headers: str
    ) -> None:
        """Answer with a single event and end the stream."""
        if not self.started:
            await self.start(status, headers)
        await self.write(sse_event(payload, event_id), more=False)

    async def no_content(self) -> None:
        """204: what makes an EventSource stop reconnecting."""
        headers = {"Cache-Control": "no-cache", **cors_headers(self.origin)}
        await self.send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await self.send({"type": "http.response.body", "body": b""})

    def ended_id(self, kind: str) -> str:
        return stream_ids.ended_stream_id(self.user_id, kind, self.token)

    async def reject(self, status: int, code: str, message: str, **headers: str) -> None:
        await self.reply(status, {"state": "ERROR", "code": code, "message": message}, **headers)

    async def read_request(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    # -- the request ---------------------------------------------------------------

    async def handle(self) -> None:
        await self.read_request()
        method = self.scope["method"]
        if method == "OPTIONS":
            headers = preflight_headers(self.origin)
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                }
            )
            await self.send({"type": "http.response.body", "body": b""})
            return
        if method not in ("GET", "HEAD"):
            await self.reject(405, "METHOD_NOT_ALLOWED", "Use GET for /matchmaking.", Allow="GET")
            return
        # Before any Redis work: a process past MAX_OPEN_STREAMS sheds load at once.
        if MatchmakingStreamConsumer.open_streams >= settings.MAX_OPEN_STREAMS:
            log_event(logger, "server_busy", logging.WARNING, open=self.open_streams)
            await self.reject(
                503, "SERVER_BUSY", SERVER_BUSY_MESSAGE, **{"Retry-After": SERVER_BUSY_RETRY}
            )
            return
        MatchmakingStreamConsumer.open_streams += 1
        try:
            await self.serve()
        finally:
            MatchmakingStreamConsumer.open_streams -= 1

    async def serve(self) -> None:
        """A GET within the process's stream limit: check it, then match or wait."""
        client = client_bucket(scope_client(self.scope))
        claimed = False
        try:
            request = self.parse_query()
            await check_rate_limit("matchmaking", scope_client(self.scope))
            await self.authorize(request)
        except InvalidInput as error:
            await self.reject(error.status, error.code, error.message)
            return
        except NotAuthorized as error:
            await self.reject(error.status, error.code, error.message)
            return
        except RateLimited as error:
            await self.reject(
                429, "RATE_LIMITED", error.message, **{"Retry-After": str(error.retry_after)}
            )
            return
        except (RedisError, OSError):
            await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
            return
        self.user_id = request.user_id
        last_event_id = self.headers.get("last-event-id", "").strip()
        if last_event_id:  # EventSource reconnecting after a terminal event
            with contextlib.suppress(StreamClosed):
                await self.resume(request.user_id, last_event_id)
            return
        try:
            claimed = await services.claim_stream_slot(client, self.token)
            if not claimed:
                log_event(logger, "too_many_streams", logging.WARNING, user=request.user_id)
                await self.reject(429, "TOO_MANY_STREAMS", TOO_MANY_STREAMS_MESSAGE)
                return
            self.slot_client = client
            await self.match_or_wait(request)
        except StreamClosed:
            pass
        except (RedisError, OSError):
            with contextlib.suppress(StreamClosed):
                await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
        finally:
            if claimed:
                with contextlib.suppress(Exception):
                    await services.release_stream_slot(client, self.token)

    async def resume(self, user_id: str, last_event_id: str) -> None:
        """Answer a reconnect without queuing the user or touching their session."""
        try:
            session = await session_selectors.get_user_session(user_id)
        except (RedisError, OSError):
            await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
            return
        if session and session["chatId"] == last_event_id:
            log_event(logger, "resumed", user=user_id, chatId=last_event_id)
            await self.reply(200, session_matched_event(session, user_id), last_event_id)
        elif stream_ids.is_chat_id(last_event_id) or stream_ids.names_ended_stream(
            user_id, last_event_id
        ):
            log_event(logger, "reconnect_refused", user=user_id, lastEventId=last_event_id)
            await self.no_content()
        else:
            await self.reject(
                400,
                "INVALID_LAST_EVENT_ID",
                "Last-Event-ID names no stream of this user; open a new EventSource.",
            )

    async def authorize(self, request: StreamRequest) -> None:
        """A ticket, when given, must be unused and the user's own; else the token is
        checked (when auth is on), from the header or, for EventSource, ``?token=``."""
        if request.ticket:
            if await services.redeem_stream_ticket(request.ticket) != request.user_id:
                raise NotAuthorized(403, "FORBIDDEN", "The ticket belongs to another userId.")
            return
        token = bearer_token(self.headers.get("authorization")) or request.token
        await authorize_user(request.user_id, token)

    def parse_query(self) -> StreamRequest:
        raw = self.scope.get("query_string", b"")
        if len(raw) > MAX_QUERY_STRING:
            raise InvalidInput("QUERY_TOO_LONG", "The query string is too long.", status=414)
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise InvalidInput("INVALID_QUERY", "The query string is not valid UTF-8.") from None
        user_ids = [value for key, value in pairs if key == "userId"]
        if len(user_ids) > 1:
            raise InvalidInput("DUPLICATE_USER_ID", "Give userId only once.")
        user_id = validate_user_id(user_ids[0] if user_ids else None)
        # The web client sends the list as `interests`; older clients as `interest`.
        raw_interests = [value for key, value in pairs if key in ("interest", "interests")]
        tokens = [value for key, value in pairs if key == "token"]
        tickets = [value for key, value in pairs if key == "ticket"]
        fallback = [value for key, value in pairs if key == "fallbackAfter"]
        return StreamRequest(
            user_id,
            normalize_interests(",".join(raw_interests)),
            (tokens or [""])[-1],
            validate_fallback_after(fallback[-1] if fallback else None),
            (tickets or [""])[-1],
        )

    async def match_or_wait(self, request: StreamRequest) -> None:
        user_id, interests = request.user_id, request.interests
        self.interests = interests
        layer = get_channel_layer()
        group = notifications.user_group(user_id)
        started = time.monotonic()
        try:
            self.channel = await layer.new_channel()
        except (RedisError, OSError):
            await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
            return
        queued = False
        try:
            await layer.group_add(group, self.channel)
            await layer.group_add(notifications.BROADCAST_GROUP, self.channel)
            result = await services.enqueue_or_match(
                user_id, interests, self.token, request.fallback_after
            )
            if result.replaced_token:  # an older stream held the place: it must close
                await notifications.send_to_user(
                    user_id, notifications.STREAM_REPLACED, token=self.token
                )
            if result.state == services.MATCHED_STATE:
                await self.on_matched_here(user_id, result, started)
                return
            if result.state == services.MAINTENANCE_STATE:
                await self.reply(
                    503,
                    services.MAINTENANCE_BODY,
                    self.ended_id(stream_ids.MAINTENANCE),
                )
                return
            if result.state == services.NO_CHAT_SERVER_STATE:
                await self.reject(503, "NO_CHAT_SERVER", NO_CHAT_SERVER_MESSAGE)
                return
            queued = True
            log_event(logger, "enqueue", user=user_id, interests=interests, ms=elapsed_ms(started))
            await self.start(200)
            await self.write(sse_event(waiting_event(result)))
            self.listener = asyncio.ensure_future(layer.receive(self.channel))
            outcome = await self.wait(user_id, started, request.fallback_after)
            queued = outcome in GIVES_PLACE_BACK
            if queued:
                await self.leave(user_id, outcome, started)
                queued = False
        except (RedisError, OSError):
            log_event(logger, "redis_unavailable", logging.WARNING, user=user_id)
            record_redis_error()
            with contextlib.suppress(StreamClosed):
                if self.started:
                    await self.write(sse_event(UNAVAILABLE_EVENT), more=False)
                else:
                    await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
        except asyncio.CancelledError:
            # Server shutdown (SIGTERM): give the place back, then tell the client.
            # Daphne gathers its cancelled applications before stopping the reactor, and
            # one re-raised CancelledError would end that wait early, stranding the
            # other streams' places; so this returns normally once cleaned up.
            if queued:
                with contextlib.suppress(Exception):
                    await self.leave(user_id, "shutdown", started)
                queued = False
            with contextlib.suppress(Exception):
                if self.started:
                    await self.write(sse_event(SHUTDOWN_EVENT), more=False)
                else:  # stopped during the matcher's call (undone): nothing to resume
                    await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
        finally:
            if queued:  # the client vanished mid-write, or Redis failed mid-wait
                with contextlib.suppress(Exception):
                    await self.leave(user_id, "disconnect", started)
            if self.listener is not None:
                self.listener.cancel()
            with contextlib.suppress(Exception):
                await layer.group_discard(group, self.channel)
                await layer.group_discard(notifications.BROADCAST_GROUP, self.channel)
            with contextlib.suppress(Exception):
                await notifications.release_channel(self.channel)

    async def on_matched_here(
        self, user_id: str, result: services.MatchResult, started: float
    ) -> bool:
        """Confirm the match this stream's call made, then tell both sides.

        The partner is told only once the match is confirmed, that is once this stream
        holds the reply: never for a chat whose arriving side was not told. False
        (and the user told to retry) if the partner undid the match first.
        """
        confirmed = await services.confirm_match(result, user_id, self.token)
        if confirmed is None:
            log_event(logger, "match_undone", user=user_id, chatId=result.chat_id)
            await self.reject(503, "SERVICE_UNAVAILABLE", UNAVAILABLE_MESSAGE)
            return False
        result = confirmed
        event = matched_event(result)
        if result.tell_partner:
            await notifications.send_to_user(
                result.partner,
                notifications.MATCH_FOUND,
                token=result.partner_token,
                event={**event, "matchedUserId": user_id},
            )
        log_event(
            logger,
            "match",
            user=user_id,
            partner=result.partner,
            chatId=result.chat_id,
            interest=result.interest,
            fallback=result.fallback,
            chatServer=result.chat_server_url,
            partnerWaitedMs=result.partner_waited_ms,
            ms=elapsed_ms(started),
        )
        await self.reply(200, {**event, "matchedUserId": result.partner}, result.chat_id)
        return True

    async def leave(self, user_id: str, outcome: str, started: float) -> None:
        removed = await services.leave_queues(user_id, self.token)
        log_event(logger, outcome, user=user_id, removed=removed, waitedMs=elapsed_ms(started))

    async def wait(self, user_id: str, started: float, fallback_after: float | None) -> str:
        """Wait for a notification, a disconnect, a keepalive or the fallback time.

        Returns how the stream ended (see ``GIVES_PLACE_BACK``).
        """
        disconnect = asyncio.ensure_future(self.receive())
        next_keepalive = time.monotonic() + settings.KEEPALIVE_SECONDS
        fallback_at = started + fallback_after if fallback_after else None
        give_up_at = started + settings.MAX_WAIT_SECONDS if settings.MAX_WAIT_SECONDS else None
        try:
            while True:
                deadline = min(
                    next_keepalive, fallback_at or next_keepalive, give_up_at or next_keepalive
                )
                done, _ = await asyncio.wait(
                    {self.listener, disconnect},
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnect in done:
                    return "disconnect"
                if self.listener in done:
                    message = self.listener.result()
                    self.listener = asyncio.ensure_future(get_channel_layer().receive(self.channel))
                    if message.get("type") == notifications.LAYER_CONNECTION_LOST:
                        # Notifications may be lost from now on, and Redis may be down:
                        # check the place now instead of at the next keepalive.
                        outcome = await self.on_keepalive(user_id)
                    else:
                        outcome = await self.on_message(message)
                elif give_up_at and time.monotonic() >= give_up_at:
                    give_up_at = None
                    outcome = await self.on_wait_timeout(user_id, started)
                elif fallback_at and time.monotonic() >= fallback_at:
                    fallback_at = None
                    outcome = await self.on_fallback_time(user_id, started)
                elif time.monotonic() >= next_keepalive:
                    next_keepalive = time.monotonic() + settings.KEEPALIVE_SECONDS
                    outcome = await self.on_keepalive(user_id)
                else:
                    outcome = None
                if outcome:
                    return outcome
        finally:
            disconnect.cancel()

    async def on_wait_timeout(self, user_id: str, started: float) -> str | None:
        """MAX_WAIT_SECONDS have passed: give the place back, then say so and end.

        The place is given back first, so a partner arriving meanwhile can never be
        matched with a stream that has already told its user it stopped waiting.
        """
        if not await services.leave_queues(user_id, self.token):
            # Matched, replaced or cancelled just now: act on that instead.
            return await self.on_keepalive(user_id)
        log_event(logger, "wait_timeout", user=user_id, waitedMs=elapsed_ms(started))
        await self.end_with(WAIT_TIMEOUT_EVENT, stream_ids.WAIT_TIMEOUT)
        return "wait_timeout"

    async def on_fallback_time(self, user_id: str, started: float) -> str | None:
        """The user waited ``fallbackAfter`` seconds: anyone past theirs will do now."""
        result = await services.enter_fallback(user_id, self.token)
        if result.state != services.MATCHED_STATE:
            return None  # still waiting (now for anyone too), or already taken care of
        return "matched" if await self.on_matched_here(user_id, result, started) else "undone"

    async def on_message(self, message: dict[str, Any]) -> str | None:
        """Act on a Channels-layer message; return an outcome if the stream ends."""
        kind = message.get("type")
        if kind == notifications.MATCH_FOUND and message.get("token") == self.token:
            event = message["event"]
            await self.write(sse_event(event, event["chatId"]), more=False)
            return "matched"
        if kind == notifications.STREAM_REPLACED and message.get("token") != self.token:
            await self.end_with(REPLACED_EVENT, stream_ids.REPLACED)
            return "replaced"
        if kind == notifications.STREAM_CANCELLED:
            await self.end_with(CANCELLED_EVENT, stream_ids.CANCELLED)
            return "cancelled"
        if kind == notifications.SERVICE_MAINTENANCE:
            event = {**services.MAINTENANCE_BODY, "message": message.get("message", "")}
            await self.end_with(event, stream_ids.MAINTENANCE)
            return "maintenance"
        return None

    async def end_with(self, event: dict[str, Any], kind: str) -> None:
        """End the stream with ``event``, whose id makes a reconnect get 204."""
        await self.write(sse_event(event, self.ended_id(kind)), more=False)

    async def on_keepalive(self, user_id: str) -> str | None:
        if self.slot_client:
            services.renew_stream_slot(self.slot_client, self.token)
        lease = await services.renew_lease(user_id, self.token, self.interests)
        if lease.state == services.WAITING_STATE:
            await self.write(KEEPALIVE_COMMENT + sse_event(waiting_event(lease)))
            return None
        if lease.state == services.TAKEN_STATE:
            await self.end_with(REPLACED_EVENT, stream_ids.REPLACED)
            return "replaced"
        # No lease: matched while the notification was lost, or the place is gone. The
        # matcher ended any older session when this stream queued, so a session now is
        # this stream's match, once its arriving side has confirmed it.
        session, pending = await selectors.user_session_and_pending(user_id)
        if session and pending:
            settled = await self.on_pending_match(user_id, session["chatId"])
            if settled is None:
                return None
            event = {**matched_event(settled), "matchedUserId": settled.partner}
            await self.write(sse_event(event, settled.chat_id), more=False)
            return "matched"
        if session:
            event = session_matched_event(session, user_id)
            await self.write(sse_event(event, session["chatId"]), more=False)
            return "matched"
        # A cancel takes the place away just before it tells this stream: let its
        # message arrive (it may have already) rather than report a loss the user did
        # not suffer.
        if self.listener is not None:
            await asyncio.wait({self.listener}, timeout=NOTIFICATION_GRACE_SECONDS)
            if self.listener.done():
                return None  # wait() acts on the message next
        await self.write(sse_event(LOST_EVENT), more=False)
        return "lost"

    async def on_pending_match(self, user_id: str, chat_id: str) -> services.MatchResult | None:
        """This waiting user's place went to a match its arriving side has not confirmed:
        that side may never have had the reply (a timeout, a crash), so the user is not
        told yet. Past the grace period the match is undone, and the user waits on in
        their original place; the match if it was confirmed meanwhile."""
        seen = self.pending_seen.setdefault(chat_id, time.monotonic())
        if time.monotonic() - seen < services.CONFIRM_GRACE_SECONDS:
            await self.write(KEEPALIVE_COMMENT)
            return None
        settled = await services.undo_unanswered(chat_id, user_id, self.token)
        return settled if settled.state == services.MATCHED_STATE else None


@dataclass(frozen=True)
class StreamRequest:
    user_id: str
    interests: list[str]
    token: str  # JWT from ?token=, for EventSource clients that cannot send headers
    # seconds (DEFAULT_FALLBACK_AFTER when not given); None: interest matches only
    fallback_after: float | None
    ticket: str = ""  # one-use, from POST /matchmaking/ticket: keeps tokens out of URLs


def validate_fallback_after(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return settings.DEFAULT_FALLBACK_AFTER
    value = parse_number(raw, 0, MAX_FALLBACK_AFTER, fraction=True)
    if value is None:
        raise InvalidInput(
            "INVALID_FALLBACK_AFTER",
            f"fallbackAfter must be a number of seconds from 0 to {MAX_FALLBACK_AFTER}.",
        )
    return value


def waiting_event(result: services.MatchResult) -> dict[str, Any]:
    return {
        "state": "WAITING",
        "waiting": result.waiting,
        "estimatedWaitSeconds": result.estimated_wait_seconds,
    }


def matched_event(result: services.MatchResult) -> dict[str, Any]:
    """The ``MATCHED`` event both sides get, but for ``matchedUserId`` (each other)."""
    return {
        "state": "MATCHED",
        "interest": result.interest,
        "chatId": result.chat_id,
        "chatServerUrl": result.chat_server_url,
        **({"fallback": True} if result.fallback else {}),
    }


def session_matched_event(session: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The ``MATCHED`` event of ``user_id`` rebuilt from their stored session."""
    return {
        "state": "MATCHED",
        "matchedUserId": next((p for p in session["participants"] if p != user_id), ""),
        "interest": session.get("interest", ""),
        "chatId": session["chatId"],
        "chatServerUrl": session["serverUrl"],
        **({"fallback": True} if session.get("fallback") else {}),
    }


def elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 2)


# How long a stream whose place vanished waits for the notification saying why.
NOTIFICATION_GRACE_SECONDS = 1.0

# Outcomes after which the stream may still hold a place in the queues.
GIVES_PLACE_BACK = {"disconnect", "replaced", "maintenance"}

UNAVAILABLE_MESSAGE = "Matchmaking is temporarily unavailable; please try again shortly."
NO_CHAT_SERVER_MESSAGE = "No chat server is available right now; please try again shortly."
UNAVAILABLE_EVENT = {
    "state": "ERROR",
    "code": "SERVICE_UNAVAILABLE",
    "message": UNAVAILABLE_MESSAGE,
}
SHUTDOWN_EVENT = {
    "state": "ERROR",
    "code": "SERVER_SHUTDOWN",
    "message": "The server is restarting; please reconnect.",
}
REPLACED_EVENT = {
    "state": "REPLACED",
    "message": "Matchmaking continues in a newer connection for this user.",
}
CANCELLED_EVENT = {"state": "CANCELLED", "message": "Matchmaking cancelled."}
WAIT_TIMEOUT_EVENT = {
    "state": "ERROR",
    "code": "WAIT_TIMEOUT",
    "message": "Nobody was found in time; your place was given back. Reconnect to search again.",
}
TOO_MANY_STREAMS_MESSAGE = "Too many matchmaking streams are open from your address."
SERVER_BUSY_MESSAGE = "The server is busy; please try again shortly."
SERVER_BUSY_RETRY = "5"  # seconds, the Retry-After of SERVER_BUSY
LOST_EVENT = {
    "state": "ERROR",
    "code": "QUEUE_PLACE_LOST",
    "message": "Your place in the queue was lost; please reconnect.",
}

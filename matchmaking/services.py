"""Matchmaking writes: the matcher, leases, cancel, maintenance and popularity."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, replace

import redis
from django.conf import settings
from redis.exceptions import RedisError

from animochat import pools
from animochat.auth import NotAuthorized, authorize_user
from animochat.logging import log_event
from animochat.redis_client import in_background
from animochat.redis_errors import (
    has_unwritten_errors,
    put_back_unwritten_errors,
    take_unwritten_errors,
)

from . import events, notifications, selectors, store
from .events import MAINTENANCE_MESSAGE
from .metrics import time_to_match_bucket

logger = logging.getLogger("matchmaking.services")


@dataclass(frozen=True)
class MatcherReply:
    """A reply of the matcher's scripts (a match, a place in the queue) or of the lease
    and undo scripts that settle a waiting user's place; ``state`` is one of the
    ``*_STATE`` names."""

    state: str
    partner: str = ""
    interest: str = ""
    chat_id: str = ""
    chat_server_url: str = ""
    partner_waited_ms: int = 0
    partner_token: str = ""
    fallback: bool = False
    waiting: int = 0  # others waiting in the user's queues (WAITING only)
    estimated_wait_seconds: int | None = None
    replaced_token: str = ""  # an older stream of the user that must be told to close
    other_replaced_tokens: tuple[str, ...] = ()  # the same, of places in other pools
    # A match stands once the arriving side, holding the reply, confirms it; until then
    # the partner is not told (see confirm_match). A match learnt by undoing a call
    # whose reply was lost had been confirmed, and its partner learns of it themselves.
    confirmed: bool = False
    tell_partner: bool = True
    pool: str = pools.DEFAULT_POOL  # where the call ran: the match's session lives there


WAITING_STATE = "WAITING"
MATCHED_STATE = "MATCHED"
MAINTENANCE_STATE = "MAINTENANCE"
NO_CHAT_SERVER_STATE = "NO_CHAT_SERVER"
GONE_STATE = "GONE"  # the stream no longer holds the user's place
TAKEN_STATE = "TAKEN"  # a newer stream holds it
UNDONE_STATE = "UNDONE"  # a matcher call undone (by its caller, or by the partner)
PENDING_STATE = "PENDING"  # the place went to a match not yet confirmed by its arriving side

# How long a partner whose place was taken by a pending match waits for the arriving
# side's confirmation before undoing the match: well past the 2 s a call may take.
CONFIRM_GRACE_SECONDS = 5.0
# How long a stream waits for the undo of a call whose reply never came, and how often
# the undo is tried again in the background (Redis not answering) before giving up:
# then the lease and the partner's confirmation grace bound what is left.
UNDO_WAIT_SECONDS = 1.0
UNDO_ATTEMPTS = 5


def _matcher_reply(reply: list, pool: str = pools.DEFAULT_POOL) -> MatcherReply:
    """A script's reply, made in ``pool``."""
    state = reply[0]
    if state == MATCHED_STATE:
        partner, interest, chat_id, server, waited_ms, partner_token, fallback = reply[1:8]
        return MatcherReply(
            state,
            partner,
            interest,
            chat_id,
            server,
            int(waited_ms),
            partner_token,
            fallback == "1",
            replaced_token=reply[8] if len(reply) > 8 else "",
            pool=pool,
        )
    if state == WAITING_STATE and len(reply) >= 2:
        replaced = reply[2] if len(reply) > 2 else ""
        return MatcherReply(state, waiting=int(reply[1]), replaced_token=replaced, pool=pool)
    return MatcherReply(state, pool=pool)


async def _with_estimate(result: MatcherReply, interests: Iterable[str]) -> MatcherReply:
    if result.state != WAITING_STATE:
        return result
    estimate = await selectors.estimated_wait_seconds(interests)
    return replace(result, estimated_wait_seconds=estimate)


def _cooldown_ms() -> int:
    return settings.REMATCH_COOLDOWN * 1000


def _pool(pool: str | None) -> str:
    return pool if pool is not None else pools.default_pool()


async def enqueue_or_match(
    user_id: str,
    interests: list[str],
    token: str,
    fallback_after: float | None = None,
    pool: str | None = None,
) -> MatcherReply:
    """Match ``user_id`` with the longest-waiting compatible user, or queue them.

    One Lua call does it all atomically (see ``lua/enqueue_or_match.lua``); ``token``
    identifies the stream that will own the user's place while they wait. The
    bookkeeping that needs no atomicity with the match follows in the background
    (:func:`after_arrival`), so the user never waits for it.
    ``interests`` must already be normalized (see :mod:`matchmaking.validation`).
    ``fallback_after=0`` makes the user matchable with anyone at once (a positive delay
    is the stream's to keep: it calls :func:`enter_fallback` when the time comes).

    ``pool`` (default: the first of ``MATCH_POOLS``) is the only pool searched. With
    several pools, the user first leaves every other pool (their place and session
    there, as the matcher does within its pool): a user waits in one pool at a time.
    Stream tokens of places given up there come back as ``other_replaced_tokens``.
    """
    pool = _pool(pool)
    left_elsewhere = await store.leave_other_pools(user_id, pool) if len(pools.pools()) > 1 else []
    chat_id = uuid.uuid4().hex
    call = store.enqueue_or_match(
        user_id,
        interests,
        token,
        chat_id,
        lease_ms=int(settings.LEASE_SECONDS * 1000),
        session_ttl_s=settings.SESSION_TTL_SECONDS,
        maintenance_default=settings.MAINTENANCE_MODE,
        cooldown_ms=_cooldown_ms(),
        fallback_after_ms=-1 if fallback_after is None else int(fallback_after * 1000),
        fallback_servers=settings.CHAT_SERVER_URLS,
        pool=pool,
    )
    result = await _answered_or_undone(call, chat_id, user_id, token, pool)
    if left_elsewhere:
        result = replace(result, other_replaced_tokens=tuple(left_elsewhere))
    after_arrival(interests, result)
    return await _with_estimate(result, interests)


def after_arrival(interests: list[str], result: MatcherReply) -> None:
    """The bookkeeping of one arrival: into this turn's (see :class:`Bookkeeping`).

    A stream replacing the user's own waiting stream is the same request again: its
    interests are not counted twice.
    """
    if result.state not in (WAITING_STATE, MATCHED_STATE):
        return
    turn = Bookkeeping.this_turn(result.pool)
    if not (result.replaced_token or result.other_replaced_tokens):
        turn.interests.update(interests)
    turn.history.update(_match_counts(result))
    turn.sample_waiting |= _waiting_sample_due()


class Bookkeeping:
    """The counters one event-loop turn's arrivals and matches add to, written together.

    Popularity, the admin's per-minute history and the match counters of ``/metrics``
    need no atomicity with a match, so they stay out of the matcher's scripts (which
    run under Redis' lock). Under load many streams arrive in the same turn: their
    counts are summed here and written by one call of ``lua/bookkeeping.lua`` when the
    turn ends, instead of one to three calls per arrival. Nobody waits for it;
    :func:`~animochat.redis_client.background_done` does.

    One per pool: its counters live in the pool's slot (readers add the pools up).
    """

    _turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Bookkeeping]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, pool: str | None = None) -> None:
        self.pool = _pool(pool)
        self.history: Counter[str] = Counter()  # member of the minute's history -> count
        self.sample_waiting = False
        self.interests: Counter[str] = Counter()  # interest -> requests
        self.matches: Counter[str] = Counter()  # metrics:matches field -> matches
        self.time_to_match: Counter[str] = Counter()  # metrics:time_to_match field -> count

    @classmethod
    def this_turn(cls, pool: str | None = None) -> Bookkeeping:
        loop = asyncio.get_running_loop()
        turns = cls._turns.setdefault(loop, {})
        turn = turns.get(_pool(pool))
        if turn is None:
            turn = turns[_pool(pool)] = cls(pool)
            # A task's first step runs in the loop's next turn: by then this turn has
            # added all it will.
            in_background(turn.write(loop), logger, "bookkeeping_failed")
        return turn

    async def write(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Write the counts, with the Redis errors this process counted since its last
        write (see :mod:`matchmaking.metrics`)."""
        turns = self._turns.get(loop) if loop is not None else None
        if turns is not None and turns.get(self.pool) is self:
            del turns[self.pool]  # what comes from now on goes into the next turn's
        now = time.time()
        minute = int(now // 60)
        errors = take_unwritten_errors()
        try:
            writes = [
                store.record_history(
                    error_minute, {store.HISTORY_REDIS_ERRORS: count}, False, self.pool
                )
                for error_minute, count in errors.items()
                if error_minute != minute
            ]
            history = self.history
            if minute in errors:
                history = history + Counter({store.HISTORY_REDIS_ERRORS: errors[minute]})
            writes.append(
                store.record_bookkeeping(
                    minute,
                    history,
                    self.sample_waiting,
                    self.interests,
                    settings.POPULAR_WINDOW_SECONDS,
                    now,
                    self.matches,
                    self.time_to_match,
                    pool=self.pool,
                )
            )
            await asyncio.gather(*writes)
        except BaseException:
            put_back_unwritten_errors(errors)
            raise

    def count_confirmed(self, result: MatcherReply) -> None:
        """A match that now stands, for ``/metrics``: by shared interests, and its wait."""
        shared = len(result.interest.split(",")) if result.interest else 0
        self.matches[f"{shared}:{1 if result.fallback else 0}"] += 1
        self.time_to_match[time_to_match_bucket(result.partner_waited_ms)] += 1
        self.time_to_match["sum_ms"] += result.partner_waited_ms


# Users waiting are sampled for the history at most this often per process, on an
# arrival or a keepalive: the cost stays fixed whatever the traffic.
WAITING_SAMPLE_SECONDS = 1.0
_next_waiting_sample = 0.0


def _waiting_sample_due() -> bool:
    global _next_waiting_sample
    now = time.monotonic()
    if now < _next_waiting_sample:
        return False
    _next_waiting_sample = now + WAITING_SAMPLE_SECONDS
    return True


def _match_counts(result: MatcherReply) -> dict[str, int]:
    # A confirmed result comes from an undo: the call that made the match counted it.
    if result.state != MATCHED_STATE or result.confirmed:
        return {}
    return {store.HISTORY_MATCHES: 1, time_to_match_bucket(result.partner_waited_ms): 1}


async def record_history(counts: dict[str, int], sample_waiting: bool = False) -> None:
    """Add this minute's ``counts`` to the per-minute history of the last hour (the
    admin's Overview), with the users waiting now if ``sample_waiting``, and the Redis
    errors this process counted since its last write, now."""
    turn = Bookkeeping()
    turn.history.update(counts)
    turn.sample_waiting = sample_waiting
    await turn.write()


async def enter_fallback(user_id: str, token: str, pool: str | None = None) -> MatcherReply:
    """The user's fallback time has come: match them with anyone past theirs, or wait."""
    pool = _pool(pool)
    chat_id = uuid.uuid4().hex
    call = store.enter_fallback(
        user_id,
        token,
        chat_id,
        session_ttl_s=settings.SESSION_TTL_SECONDS,
        cooldown_ms=_cooldown_ms(),
        fallback_servers=settings.CHAT_SERVER_URLS,
        pool=pool,
    )
    result = await _answered_or_undone(call, chat_id, user_id, token, pool)
    if result.state == MATCHED_STATE:
        Bookkeeping.this_turn(pool).history.update(_match_counts(result))
    return result


async def _answered_or_undone(
    call: Awaitable[list], chat_id: str, user_id: str, token: str, pool: str
) -> MatcherReply:
    """The matcher call's result; if its reply never comes, the call is undone.

    A timed-out call may still run later, one cancelled (server shutdown) or cut off
    mid-reply may have run: without the reply nobody can tell the user, so the call is
    undone (:func:`undo_unanswered`) and its error raised, unless the user's match
    stands after all: then that is the result.
    """
    try:
        return _matcher_reply(await call, pool)
    except (RedisError, OSError):
        settled = await undo_unanswered(chat_id, user_id, token, pool)
        if settled.state == MATCHED_STATE:
            return settled
        raise
    except asyncio.CancelledError:
        try:
            settled = await undo_unanswered(chat_id, user_id, token, pool)
        except (RedisError, OSError):
            raise asyncio.CancelledError from None
        if settled.state == MATCHED_STATE:
            return settled
        raise


async def confirm_match(result: MatcherReply, user_id: str, token: str) -> MatcherReply | None:
    """The arriving side holds the reply of the call that matched it: the match stands
    from now on, and the partner may be told. None if it was undone meanwhile (the
    partner waited past :data:`CONFIRM_GRACE_SECONDS` and took their place back)."""
    if result.confirmed:
        return result
    try:
        outcome = await store.confirm_match(result.chat_id, result.pool)
    except (RedisError, OSError, asyncio.CancelledError) as error:
        # Ran or not? The undo decides, atomically: confirmed, or undone for good. A
        # match stands only through a confirmation: this one ran, and nobody counted it.
        try:
            settled = await undo_unanswered(result.chat_id, user_id, token, result.pool)
        except (RedisError, OSError):
            raise error from None
        if settled.state != MATCHED_STATE:
            raise
        outcome = store.CONFIRMED_NOW
    if outcome == store.UNDONE:
        return None
    if outcome == store.CONFIRMED_NOW:
        Bookkeeping.this_turn(result.pool).count_confirmed(result)
    return replace(result, confirmed=True)


async def complete_match(result: MatcherReply, user_id: str, token: str) -> MatcherReply | None:
    """Confirm the match ``user_id``'s call made, then tell the partner's stream.

    The partner is told only once the match is confirmed, that is once the arriving
    side holds the reply: never of a chat whose arriving side was not told. None if
    the partner undid the match first (see :func:`confirm_match`).
    """
    confirmed = await confirm_match(result, user_id, token)
    if confirmed is not None and confirmed.tell_partner:
        await notifications.send(
            confirmed.partner_token,
            notifications.MATCH_FOUND,
            event=events.matched(confirmed, user_id),
        )
    return confirmed


async def settle_lost_place(
    user_id: str, token: str, pending_since: dict[str, float], pool: str | None = None
) -> MatcherReply:
    """What became of a waiting user whose stream ``token`` no longer holds the lease.

    The matcher ended any older session when the stream queued, so a session now is
    this stream's match (MATCHED), once its arriving side has confirmed it. Until then
    the match is PENDING: that side may never have had the reply (a timeout, a crash).
    Past :data:`CONFIRM_GRACE_SECONDS` from when the stream first saw it (kept in
    ``pending_since``), the match is undone and the user waits on in their original
    place (UNDONE), unless it was confirmed meanwhile. No session: GONE.
    """
    pool = _pool(pool)
    session, pending = await selectors.user_session_and_pending(user_id, pool)
    if session is None:
        return MatcherReply(GONE_STATE)
    if not pending:
        return _session_result(session, user_id, pool)
    seen = pending_since.setdefault(session["chatId"], time.monotonic())
    if time.monotonic() - seen < CONFIRM_GRACE_SECONDS:
        return MatcherReply(PENDING_STATE)
    return await undo_unanswered(session["chatId"], user_id, token, pool)


async def undo_unanswered(
    chat_id: str, user_id: str, token: str, pool: str | None = None
) -> MatcherReply:
    """Undo the call given ``chat_id`` whose reply ``user_id``'s stream never got.

    Safe whether the call ran, runs later or never does (``lua/undo_match.lua``). The
    result is UNDONE, or MATCHED (confirmed, the partner not to be told by this
    stream) when the user's match stands. Waited for :data:`UNDO_WAIT_SECONDS` at
    most, so the user hears back in time while Redis does not answer; the undo is then
    retried in the background, and the error raised.
    """
    pool = _pool(pool)
    try:
        async with asyncio.timeout(UNDO_WAIT_SECONDS):
            reply = await _undo(chat_id, user_id, token, pool)
    except (RedisError, OSError):  # TimeoutError is an OSError
        in_background(_undo_until_done(chat_id, user_id, token, pool), logger, "undo_failed")
        raise
    return _undo_result(reply, user_id, pool)


async def _undo(chat_id: str, user_id: str, token: str, pool: str) -> list:
    reply = await store.undo_match(
        chat_id, user_id, token, int(settings.LEASE_SECONDS * 1000), pool
    )
    log_event(logger, "match_undone", user=user_id, chatId=chat_id, outcome=reply[0])
    return reply


async def _undo_until_done(chat_id: str, user_id: str, token: str, pool: str) -> None:
    for attempt in range(UNDO_ATTEMPTS):
        await asyncio.sleep(0.5 * 2**attempt)
        try:
            await _undo(chat_id, user_id, token, pool)
            return
        except (RedisError, OSError):
            if attempt == UNDO_ATTEMPTS - 1:
                raise


def _undo_result(reply: list, user_id: str, pool: str) -> MatcherReply:
    if reply[0] != MATCHED_STATE:
        return MatcherReply(UNDONE_STATE)
    return _session_result(json.loads(reply[1]), user_id, pool)


def _session_result(session: dict, user_id: str, pool: str) -> MatcherReply:
    """The stored session of a confirmed match, as ``user_id``'s result; the partner
    learns of it themselves."""
    return MatcherReply(
        MATCHED_STATE,
        partner=next((p for p in session["participants"] if p != user_id), ""),
        interest=session.get("interest", ""),
        chat_id=session["chatId"],
        chat_server_url=session["serverUrl"],
        fallback=bool(session.get("fallback")),
        confirmed=True,
        tell_partner=False,
        pool=pool,
    )


async def renew_lease(
    user_id: str, token: str, interests: Iterable[str] = (), pool: str | None = None
) -> MatcherReply:
    """Keep a waiting user's place: WAITING (with queue info), GONE or TAKEN.

    ``interests`` (the stream's) give the estimated wait; without them it is None.
    """
    pool = _pool(pool)
    reply = await store.renew_lease(user_id, token, int(settings.LEASE_SECONDS * 1000), pool)
    result = _matcher_reply(reply, pool)
    if result.state == WAITING_STATE and (_waiting_sample_due() or has_unwritten_errors()):
        Bookkeeping.this_turn(pool).sample_waiting = True
    return await _with_estimate(result, interests)


# Concurrent streams per client address, across processes (MAX_STREAMS_PER_CLIENT). A
# sorted set of stream tokens scored by lease end, rather than a counter: a process
# killed without decrementing would leave a counter too high for as long as the client
# keeps the key alive, while each slot here lapses on its own one lease after its
# stream stopped renewing it. ``client`` is the address as rate limits count it.


def _slot_lease_ms() -> int:
    return int(settings.LEASE_SECONDS * 1000)


async def claim_stream_slot(client: str, token: str) -> bool:
    """Take one of the client's stream slots for stream ``token``; False if it holds
    MAX_STREAMS_PER_CLIENT already (0: no limit, and nothing is stored)."""
    most = settings.MAX_STREAMS_PER_CLIENT
    if most <= 0:
        return True
    return await store.claim_stream_slot(client, token, most, _slot_lease_ms())


def renew_stream_slot(client: str, token: str) -> None:
    """Extend the slot's lease (at each keepalive), without waiting for Redis."""
    if settings.MAX_STREAMS_PER_CLIENT > 0:
        coroutine = store.renew_stream_slot(client, token, _slot_lease_ms())
        in_background(coroutine, logger, "stream_slot_renewal_failed")


async def release_stream_slot(client: str, token: str) -> None:
    if settings.MAX_STREAMS_PER_CLIENT > 0:
        await store.release_stream_slot(client, token)


async def leave_queues(user_id: str, token: str = "", pool: str | None = None) -> bool:
    """Remove the user from every queue of ``pool`` (only if ``token`` still owns their
    place)."""
    return await store.leave_queues(user_id, token, _pool(pool))


async def cancel_matchmaking(user_id: str) -> bool:
    """Take the user out of every queue of every pool and close their waiting stream,
    wherever it is (the lease names its channel)."""
    was_waiting, streams = await store.cancel_waiting(user_id)
    for stream in streams:
        await notifications.send(stream, notifications.STREAM_CANCELLED)
    return was_waiting


async def hide_popular_interest(interest: str, hidden: bool = True) -> None:
    """Hide an interest from popular interests on every instance (or show it again).

    This process sees the change at once; others within their cache's lifetime.
    """
    await store.hide_interest(interest, hidden)
    selectors.forget_popularity()


async def set_maintenance(on: bool, message: str = MAINTENANCE_MESSAGE) -> None:
    """Switch maintenance for every instance; entering it closes every waiting stream."""
    await store.set_maintenance_flag(on)
    if on:
        await notifications.broadcast(notifications.SERVICE_MAINTENANCE, message=message)


TICKET_SECONDS = 30
# A used ticket is remembered this long, so a replay is told so rather than "unknown".
USED_TICKET_MEMORY_SECONDS = 600
TICKET_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _ticket_hash(ticket: str) -> str:
    # Redis holds only a hash: a key listing (or MONITOR) never shows a usable ticket.
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue_stream_ticket(user_id: str) -> str:
    """A one-use ticket for ``GET /matchmaking?ticket=…`` as ``user_id``, valid 30 s."""
    ticket = secrets.token_urlsafe(32)
    await store.store_ticket(_ticket_hash(ticket), user_id, TICKET_SECONDS)
    return ticket


async def authorize_stream(user_id: str, ticket: str, token: str) -> None:
    """A stream's identity: its ``ticket``, when given, must be unused and ``user_id``'s
    own; else the bearer ``token`` is checked (when auth is on)."""
    if ticket:
        if await redeem_stream_ticket(ticket) != user_id:
            raise NotAuthorized(403, "FORBIDDEN", "The ticket belongs to another userId.")
        return
    await authorize_user(user_id, token)


async def redeem_stream_ticket(ticket: str) -> str:
    """The user a ticket was issued to; it can never be redeemed again.

    Raises :class:`NotAuthorized` (401) for a used, expired or unknown ticket.
    """
    previous = None
    if TICKET_PATTERN.fullmatch(ticket):
        previous = await store.use_ticket(_ticket_hash(ticket), USED_TICKET_MEMORY_SECONDS)
    if previous == store.TICKET_USED:
        raise NotAuthorized(
            401, "TICKET_USED", "This ticket was already used; request a new one for each stream."
        )
    if previous is None:
        raise NotAuthorized(
            401,
            "TICKET_INVALID",
            f"The ticket is unknown or expired (tickets last {TICKET_SECONDS} s).",
        )
    return previous.removeprefix("user:")


# Waiting users examined per Lua call of the sweep: short enough never to stall Redis.
SWEEP_BATCH = 500


def sweep_lapsed_waiters(client: redis.Redis, batch: int = SWEEP_BATCH) -> int:
    """Remove every waiting user whose lease lapsed from all queues; return how many.

    A lease lapses when its stream died without cleaning up (its server was killed).
    The matcher never matches such users and drops them when they reach a queue head;
    this sweep also removes those deeper in the queues, so queue sizes stay honest, in
    every pool.
    ``manage.py sweep_queues`` runs it every ``LEASE_SECONDS / 2``, beside the web
    processes (``make run`` starts it; the ``Procfile`` names it), with a synchronous
    ``client`` of its own; one pass walks every waiting user.
    """
    removed = 0
    for pool in pools.pools():
        cursor = 0
        while cursor >= 0:
            cursor, batch_removed = store.sweep_lapsed_waiters(client, cursor, batch, pool)
            removed += batch_removed
    return removed

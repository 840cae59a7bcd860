"""Matchmaking's input checks, the one place every caller goes through: interests,
``fallbackAfter``, ``pool`` and the stream's query string (the checks every app shares, user ids
and numbers, are in ``animochat/validation.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.conf import settings

from animochat import pools
from animochat.errors import InvalidInput
from animochat.validation import parse_number, validate_user_id

GLOBAL_CHAT = "GLOBAL_CHAT"
MAX_INTERESTS = 10
MAX_INTEREST_LENGTH = 64
MAX_FALLBACK_AFTER = 600  # seconds
MAX_STREAM_QUERY = 8 * 1024  # bytes of the stream's query string


def normalize_interests(raw: object) -> list[str]:
    """Trim, upper-case and de-duplicate interests, keeping their order.

    ``raw`` is a comma-separated string (query parameter) or a list (JSON body);
    anything else is refused, as input straight from a request may be anything.
    No interest at all means ``GLOBAL_CHAT``.
    """
    if raw is None:
        items: list[object] = []
    elif isinstance(raw, str):
        items = list(raw.split(","))
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:  # a JSON number, object…: refused, not iterated (or crashed on)
        raise InvalidInput(
            "INVALID_INTEREST", "interests must be a list of strings or a comma-separated string."
        )

    interests: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput("INVALID_INTEREST", "Each interest must be a string.")
        if not item.isprintable():
            raise InvalidInput("INVALID_INTEREST", "Interests must not contain control characters.")
        interest = item.strip().upper()
        if not interest:
            continue
        if "," in interest:
            raise InvalidInput("INVALID_INTEREST", "An interest must not contain a comma.")
        if len(interest) > MAX_INTEREST_LENGTH:
            raise InvalidInput(
                "INVALID_INTEREST",
                f"Each interest must be at most {MAX_INTEREST_LENGTH} characters.",
            )
        if interest not in interests:
            interests.append(interest)
            if len(interests) > MAX_INTERESTS:
                raise InvalidInput(
                    "TOO_MANY_INTERESTS", f"At most {MAX_INTERESTS} interests are allowed."
                )
    return interests or [GLOBAL_CHAT]


def validate_fallback_after(raw: str | None) -> float | None:
    """Seconds of ``fallbackAfter``; ``DEFAULT_FALLBACK_AFTER`` when not given."""
    if raw is None or raw == "":
        return settings.DEFAULT_FALLBACK_AFTER
    value = parse_number(raw, 0, MAX_FALLBACK_AFTER, fraction=True)
    if value is None:
        raise InvalidInput(
            "INVALID_FALLBACK_AFTER",
            f"fallbackAfter must be a number of seconds from 0 to {MAX_FALLBACK_AFTER}.",
        )
    return value


def validate_pool(raw: str | None) -> str:
    """A pool of ``MATCH_POOLS``; the first when not given."""
    if raw is None or raw == "":
        return pools.default_pool()
    if raw not in pools.pools():
        raise InvalidInput("INVALID_POOL", f"pool must be one of: {', '.join(pools.pools())}.")
    return raw


@dataclass(frozen=True)
class StreamRequest:
    """What ``GET /matchmaking`` asks for, checked."""

    user_id: str
    interests: list[str]
    token: str  # JWT from ?token=, for EventSource clients that cannot send headers
    # seconds (DEFAULT_FALLBACK_AFTER when not given); None: interest matches only
    fallback_after: float | None
    ticket: str = ""  # one-use, from POST /matchmaking/ticket: keeps tokens out of URLs
    pool: str = pools.DEFAULT_POOL  # of MATCH_POOLS: the users this one may meet


def parse_stream_query(raw: bytes) -> StreamRequest:
    """The stream's query string, checked; raises :class:`InvalidInput`."""
    if len(raw) > MAX_STREAM_QUERY:
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
    pool = [value for key, value in pairs if key == "pool"]
    return StreamRequest(
        user_id,
        normalize_interests(",".join(raw_interests)),
        (tokens or [""])[-1],
        validate_fallback_after(fallback[-1] if fallback else None),
        (tickets or [""])[-1],
        validate_pool(pool[-1] if pool else None),
    )

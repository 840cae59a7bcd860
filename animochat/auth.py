"""Verified identity: a user may act only as the ``userId`` their token names.

Off unless ``AUTH_JWT_SECRET`` (HS256, a Supabase project's JWT secret) or
``AUTH_JWKS_URL`` (RS256/ES256 keys published as a JSON Web Key Set, Supabase's newer
signing keys) is set. A token must carry ``sub`` (the user id) and ``exp``; with
``AUTH_JWT_AUDIENCE`` set (default ``authenticated``, what Supabase issues) its ``aud``
must name it. Tokens travel in the ``Authorization: Bearer`` header; only the stream
also takes ``?token=``, because a browser's ``EventSource`` cannot send headers (a
one-use ticket from ``POST /matchmaking/ticket`` keeps the token out of URLs).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import jwt
from django.conf import settings
from jwt import PyJWK, PyJWKClient

from animochat.errors import ApiError
from animochat.logging import log_event

logger = logging.getLogger("animochat.auth")

LEEWAY_SECONDS = 30  # clock skew tolerated on exp/nbf/iat between issuer and server
HMAC_ALGORITHMS = ("HS256",)
JWKS_ALGORITHMS = ("RS256", "ES256")
JWKS_LIFESPAN_SECONDS = 600  # keys are fetched again this often
# An unknown `kid` fetches the key set again (keys rotate), but at most this often:
# tokens naming random kids must not turn the service into a JWKS flooder.
JWKS_UNKNOWN_KID_REFRESH_SECONDS = 10
JWKS_TIMEOUT_SECONDS = 5

AUTH_OFF_WARNING = (
    "Authentication is off: anyone who knows a user id can matchmake as that user, read "
    "their chat session and end it. Set AUTH_JWT_SECRET (HS256) or AUTH_JWKS_URL "
    "(RS256/ES256) to require each user's own token."
)


class NotAuthorized(ApiError):
    """401 (no valid token or ticket), 403 (another user's), 503 (keys unreachable).

    A 401 names the scheme that would be accepted (``WWW-Authenticate: Bearer``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        challenge = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        super().__init__(status, code, message, challenge)


def auth_enabled() -> bool:
    return bool(settings.AUTH_JWT_SECRET or settings.AUTH_JWKS_URL)


def warn_if_open() -> None:
    """The one start-up WARNING of a server anyone can impersonate users on."""
    if not auth_enabled() and not settings.DEBUG:
        log_event(logger, "auth_off", logging.WARNING, message=AUTH_OFF_WARNING)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer …`` header, or ``""``."""
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return ""


def invalid(message: str = "The token is not valid.") -> NotAuthorized:
    return NotAuthorized(401, "UNAUTHORIZED", message)


async def verified_subject(token: str) -> str:
    """The ``sub`` of a valid ``token``; raise :class:`NotAuthorized` otherwise."""
    if not token:
        raise invalid("A bearer token is required.")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        raise invalid() from None
    if algorithm in HMAC_ALGORITHMS and settings.AUTH_JWT_SECRET:
        key = settings.AUTH_JWT_SECRET
    elif algorithm in JWKS_ALGORITHMS and settings.AUTH_JWKS_URL:
        key = await jwks_key(token, algorithm)
    else:
        raise invalid("The token is not signed with an accepted algorithm.")
    audience = settings.AUTH_JWT_AUDIENCE
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience or None,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp"], "verify_aud": bool(audience)},
        )
    except jwt.ExpiredSignatureError:
        raise invalid("The token has expired.") from None
    except jwt.InvalidAudienceError:
        raise invalid(f"The token is not issued for the audience {audience!r}.") from None
    except jwt.InvalidTokenError:
        raise invalid() from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise invalid()
    return subject


async def authorize_user(user_id: str, token: str) -> None:
    """Raise :class:`NotAuthorized` unless ``token`` proves the caller is ``user_id``."""
    if not auth_enabled():
        return
    if await verified_subject(token) != user_id:
        raise NotAuthorized(403, "FORBIDDEN", "The token does not belong to this userId.")


async def jwks_key(token: str, algorithm: str):
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        raise invalid() from None
    jwk = await key_set(settings.AUTH_JWKS_URL).key(kid) if isinstance(kid, str) else None
    if jwk is None:
        raise invalid("The token's signing key (kid) is not known.")
    if jwk.algorithm_name != algorithm:  # an ES256 key never verifies an RS256 token
        raise invalid("The token's algorithm does not match its signing key.")
    return jwk.key


class KeySet:
    """The signing keys of one JWKS URL, cached per process.

    Fetched again every ``JWKS_LIFESPAN_SECONDS``, and sooner for an unknown ``kid``
    (keys rotate), at most every ``JWKS_UNKNOWN_KID_REFRESH_SECONDS``. A failed fetch
    keeps the keys already known and is not retried sooner than that either. The
    fetch blocks, so it runs in a thread; concurrent requests share one fetch.
    """

    def __init__(self, url: str) -> None:
        self.client = PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_TIMEOUT_SECONDS)
        self.keys: dict[str, PyJWK] = {}
        self.fetched_at = float("-inf")  # last successful fetch
        self.attempted_at = float("-inf")  # last fetch, successful or not
        self.unknown_kid_at = float("-inf")  # last fetch for an unknown kid
        self.attempts = 0
        self.lock = threading.Lock()

    async def key(self, kid: str) -> PyJWK | None:
        now = time.monotonic()
        throttle = JWKS_UNKNOWN_KID_REFRESH_SECONDS
        if now - self.fetched_at >= JWKS_LIFESPAN_SECONDS:
            if now - self.attempted_at >= throttle:
                await asyncio.to_thread(self.fetch, self.attempts)
        elif kid not in self.keys and now - self.unknown_kid_at >= throttle:
            self.unknown_kid_at = now
            await asyncio.to_thread(self.fetch, self.attempts)
        if not self.keys:
            raise NotAuthorized(
                503, "AUTH_UNAVAILABLE", "Tokens cannot be checked right now; try again shortly."
            )
        return self.keys.get(kid)

    def fetch(self, attempts_seen: int) -> None:
        with self.lock:
            if self.attempts != attempts_seen:
                return  # another request fetched while this one waited for the lock
            self.attempts += 1
            self.attempted_at = time.monotonic()
            try:
                keys = self.client.get_signing_keys()
            except (jwt.PyJWTError, ValueError, OSError) as error:
                log_event(logger, "jwks_unavailable", logging.WARNING, error=str(error))
                return
            self.keys = {key.key_id: key for key in keys if key.algorithm_name in JWKS_ALGORITHMS}
            self.fetched_at = self.attempted_at


_key_sets: dict[str, KeySet] = {}


def key_set(url: str) -> KeySet:
    if url not in _key_sets:
        _key_sets[url] = KeySet(url)
    return _key_sets[url]

"""Every error code the service answers with, what each means, and the one exception
hierarchy that carries them.

An error answer, JSON or a stream's ``ERROR``/``MAINTENANCE`` event, carries one of
these as ``code`` beside a human ``message``: clients switch on the code, never on the
wording. The README's error table and ``/openapi.json`` are checked against this list
(``tests/test_error_codes.py``), so a code cannot be added without being documented.

Code anywhere below a view or the stream raises an :class:`ApiError` (or a subclass)
and never builds a response itself: the JSON endpoints render it in
:func:`animochat.http.error_response` (through ``ApiErrorMiddleware``), the stream as
its ``ERROR`` event.
"""

from __future__ import annotations

# code -> (HTTP statuses it comes with, meaning)
ERROR_CODES: dict[str, tuple[tuple[int, ...], str]] = {
    # Input
    "MISSING_USER_ID": ((400,), "No `userId` was given."),
    "INVALID_USER_ID": ((400,), "`userId` is not 1-128 printable characters."),
    "DUPLICATE_USER_ID": ((400,), "`userId` was given more than once on the stream."),
    "INVALID_INTEREST": ((400,), "An interest is not a string of at most 64 characters."),
    "TOO_MANY_INTERESTS": ((400,), "More than 10 distinct interests."),
    "INVALID_FALLBACK_AFTER": ((400,), "`fallbackAfter` is not a number of seconds 0-600."),
    "INVALID_LAST_EVENT_ID": ((400,), "`Last-Event-ID` names no stream of this user."),
    "INVALID_POOL": ((400,), "`pool` is not one of `MATCH_POOLS`."),
    "INVALID_QUERY": ((400,), "The query string is not valid UTF-8."),
    "INVALID_LIMIT": ((400,), "`limit` is not a whole number from 1 to 50."),
    "DUPLICATE_PARAMETER": ((400,), "A query parameter was given more than once."),
    "DUPLICATE_FIELD": ((400,), "A body field was given more than once."),
    "CONFLICTING_FIELD": ((400,), "A field differs between the query string and the body."),
    "INVALID_JSON": ((400,), "The body is not valid JSON."),
    "INVALID_BODY": ((400,), "The JSON body is not an object."),
    "BAD_REQUEST": ((400,), "The request is malformed (too many form fields, say)."),
    "MALFORMED_REQUEST": ((400,), "The request head is malformed, or has over 500 headers."),
    "DISALLOWED_HOST": ((400,), "The Host header is not in `ALLOWED_HOSTS`."),
    "QUERY_TOO_LONG": ((414,), "The URL is too long (over 8 KiB on the stream, 16 KiB elsewhere)."),
    "HEADER_TOO_LARGE": ((431,), "A request header line is over 16 KiB."),
    "BODY_TOO_LARGE": ((413,), "The body is over 64 KiB."),
    # Identity and abuse
    "UNAUTHORIZED": ((401,), "No valid bearer token while auth is on."),
    "TICKET_USED": ((401,), "`/matchmaking?ticket=`: the ticket was already used."),
    "TICKET_INVALID": ((401,), "`/matchmaking?ticket=`: the ticket is unknown or expired."),
    "FORBIDDEN": ((403,), "The token or ticket belongs to another `userId`."),
    "CSRF_FAILED": ((403,), "A cookie-authenticated form (the admin) failed its CSRF check."),
    "RATE_LIMITED": (
        (429,),
        "Over `RATE_LIMIT_PER_MINUTE` (`READ_RATE_LIMIT_PER_MINUTE` on reads); see `Retry-After`.",
    ),
    "TOO_MANY_STREAMS": ((429,), "`MAX_STREAMS_PER_CLIENT` streams of this address are open."),
    # Routing
    "NOT_FOUND": ((404,), "No endpoint at this path."),
    "NO_ACTIVE_SESSION": ((404,), "`POST /session/disconnect`: the user has no session."),
    "METHOD_NOT_ALLOWED": ((405,), "Wrong HTTP method; see `Allow`."),
    # The service
    "MAINTENANCE": ((503, 200), "Maintenance is on (a stream already open ends with it too)."),
    "SERVICE_UNAVAILABLE": ((503, 200), "Redis is unreachable; try again shortly."),
    "AUTH_UNAVAILABLE": ((503,), "The `AUTH_JWKS_URL` keys cannot be fetched; try again."),
    "SERVER_BUSY": ((503,), "This process holds `MAX_OPEN_STREAMS` streams; see `Retry-After`."),
    "NO_CHAT_SERVER": ((503,), "Neither discovery nor `CHAT_SERVER_URLS` names a chat server."),
    "INTERNAL_ERROR": ((500,), "An unexpected failure (a bug): it is logged."),
    "NOT_READY": ((503,), "`GET /readyz`: this process cannot serve yet; `checks` says why."),
    # Ends of a waiting stream (status 200: the stream had started)
    "SERVER_SHUTDOWN": ((200,), "The server is stopping; reconnect to wait again."),
    "QUEUE_PLACE_LOST": ((200,), "The place in the queue lapsed; reconnect to wait again."),
    "WAIT_TIMEOUT": ((200,), "Nobody found in `MAX_WAIT_SECONDS`; the place was given back."),
}


class ApiError(Exception):
    """A failure the client is told about: an HTTP ``status``, a stable ``code`` (one of
    :data:`ERROR_CODES`), a ``message`` for people and response ``headers`` (such as
    ``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class InvalidInput(ApiError, ValueError):
    """Client input that breaks a documented limit or is malformed: 400 unless the
    limit has a status of its own (413 for a body, 414 for a URL)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(status, code, message)

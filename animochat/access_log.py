"""``ACCESS_LOG=true``: one JSON line per HTTP request, written when its answer ends.

Daphne's own access log is off (``-v 0``): it writes the raw path with its query string,
and the stream takes credentials there (``?token=``, ``?ticket=``, since a browser's
``EventSource`` cannot send headers). This one logs the query string with the value of
every parameter that may be a credential replaced, and the client as
:mod:`animochat.clientaddr` decided it. A stream's line comes when the stream ends, so
its ``ms`` is how long it was open.

Off by default: the service already logs its own events, and a line per request costs
CPU on the busiest path.
"""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import parse_qsl, urlencode

from twisted.web import http

from animochat.clientaddr import header_values, scope_client
from animochat.logging import log_event

logger = logging.getLogger("animochat.access")

REDACTED = "[redacted]"
# Parameter names whose values may be credentials (matched anywhere in the name).
CREDENTIAL_NAMES = re.compile(r"token|ticket|secret|passw|auth|key|sig|session|code", re.I)
MAX_LOGGED_QUERY = 1024


def redacted_query(raw: bytes) -> str:
    """The query string with every credential-like parameter's value replaced."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    safe = [(name, REDACTED if CREDENTIAL_NAMES.search(name) else value) for name, value in pairs]
    return urlencode(safe, safe="[],")[:MAX_LOGGED_QUERY]


class AccessLogMiddleware:
    """ASGI wrapper logging each HTTP request's method, path, status, size and time."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        status: int | None = None
        size = 0

        async def observed_send(message):
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            status = status or 500  # the server answers 500 for an application error
            raise
        finally:
            headers = dict(scope.get("headers") or [])
            # As received: counting the entries right of a known client's own address
            # tells an operator what TRUSTED_PROXY_HOPS should be.
            forwarded = header_values(scope, b"x-forwarded-for")
            log_event(
                logger,
                "request",
                method=scope["method"],
                path=scope["path"],
                query=redacted_query(scope.get("query_string", b"")),
                status=status,
                bytes=size,
                ms=round((time.monotonic() - started) * 1000, 1),
                client=scope_client(scope),
                user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
                **({"forwarded_for": ", ".join(forwarded)} if forwarded else {}),
            )


def silence_twisted_access_log() -> None:
    """Stop Twisted's own line per request, in this process.

    Daphne serves HTTP with Twisted's ``HTTPFactory``, which formats a combined-log
    line for every request (the raw URL, credentials in the query string included)
    and hands it to Twisted's global log. Daphne sends that log nowhere below ``-v 2``,
    so the line was made for nothing, at a few per cent of the CPU of each stream;
    at ``-v 2`` it would have printed the credentials. This module's log replaces it.
    """
    http.HTTPFactory.log = _no_log


def _no_log(factory: http.HTTPFactory, request: http.Request) -> None:
    return None

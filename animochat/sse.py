"""Server-Sent Events over raw ASGI: the transport, apart from what the events say.

:class:`EventStream` answers one request the way Starlette's streaming response does:
it starts the response (status, the event-stream headers and CORS), writes chunks, and
ends it; it also answers a CORS preflight and the bodiless 204 that makes an
``EventSource`` stop reconnecting. CORS goes through :mod:`animochat.http`, the code
the JSON API's middleware uses, so both parts of the service answer origins alike.
What the events contain is the application's business: it hands over plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from animochat.errors import ApiError
from animochat.http import cors_headers, preflight_headers

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and its kind: pass each event on at once
}
KEEPALIVE_COMMENT = b": keepalive\n\n"


class StreamClosed(Exception):
    """The client went away; nothing more can be sent."""


def encode_event(payload: dict[str, Any], event_id: str = "") -> bytes:
    """One event; ``event_id`` (terminal events only) comes back as ``Last-Event-ID``."""
    try:
        encoded = orjson.dumps(payload)  # compact, as json.dumps(separators=(",", ":"))
    except TypeError:  # what orjson refuses (an integer over 64 bits, a lone surrogate)
        encoded = json.dumps(payload, separators=(",", ":")).encode()
    data = b"data: " + encoded + b"\n\n"
    return b"id: " + event_id.encode() + b"\n" + data if event_id else data


def error_event(code: str, message: str) -> dict[str, Any]:
    """An API error as a stream tells it: the JSON error's two fields, with a state."""
    return {"state": "ERROR", "code": code, "message": message}


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    """The request's headers by lower-case name (the last of a repeated one)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive: Receive) -> None:
    """Consume the request body (a GET has none worth keeping) before answering."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class EventStream:
    """The response of one event-stream request.

    Every stream starts with ``retry: <retry_ms>``, the delay a browser waits before
    reconnecting; it goes out with the first chunk written.
    """

    def __init__(self, send: Send, origin: str | None, retry_ms: int) -> None:
        self._send = send
        self.origin = origin
        self.started = False
        self._preamble = f"retry: {retry_ms}\n\n".encode()

    async def _start(self, status: int, headers: dict[str, str]) -> None:
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        self.started = True

    async def start(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        await self._start(status, {**SSE_HEADERS, **cors_headers(self.origin), **(headers or {})})

    async def write(self, body: bytes, more: bool = True) -> None:
        """Send ``body`` (encoded events and comments); ``more=False`` ends the stream.

        Raises :class:`StreamClosed` once the client is gone.
        """
        body, self._preamble = self._preamble + body, b""
        try:
            await self._send({"type": "http.response.body", "body": body, "more_body": more})
        except (OSError, RuntimeError) as error:  # Daphne: connection already closed
            raise StreamClosed from error

    async def event(self, payload: dict[str, Any], comment: bytes = b"") -> None:
        """One more event of a started stream, after ``comment`` if given."""
        await self.write(comment + encode_event(payload))

    async def close(self, payload: dict[str, Any], event_id: str = "") -> None:
        """End a started stream with its last event."""
        await self.write(encode_event(payload, event_id), more=False)

    async def reply(
        self,
        status: int,
        payload: dict[str, Any],
        event_id: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer with a single event and end (the last event, if already started)."""
        if not self.started:
            await self.start(status, headers)
        await self.close(payload, event_id)

    async def reject(self, error: ApiError, event_id: str = "") -> None:
        """Answer with ``error`` as an ``ERROR`` event, with its status and headers
        unless the stream has started, and end: every error a stream tells comes here."""
        await self.reply(
            error.status, error_event(error.code, error.message), event_id, error.headers
        )

    async def no_content(self) -> None:
        """204: what makes an EventSource stop reconnecting."""
        await self._start(204, {"Cache-Control": "no-cache", **cors_headers(self.origin)})
        await self._send({"type": "http.response.body", "body": b""})

    async def preflight(self) -> None:
        """204 to a CORS preflight, with the headers the JSON API's preflight has."""
        await self._start(204, preflight_headers(self.origin))
        await self._send({"type": "http.response.body", "body": b""})

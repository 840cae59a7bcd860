"""COMPARISON ONLY (not product code): Daphne's own cost of a pair, with no matchmaking.

``bench.stream saturation --app floor`` serves ``GET /matchmaking`` with this ASGI
application: the same requests and the same Server-Sent Events as the product
(``WAITING``, then ``MATCHED`` on both streams), but paired in this process's memory by
interest. No Redis, no Django, no middleware, no validation, no logging: what is left is
Daphne's HTTP handling, the event loop and the writes. Its Daphne CPU per pair is the
floor under any work the product does per pair on Daphne, so it tells how far the
product's cost per pair can fall while it is served by Daphne.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import parse_qs

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
# interest -> (user id, future the partner's stream resolves with the MATCHED event)
waiting: dict[str, tuple[str, asyncio.Future]] = {}


def sse(event: dict) -> bytes:
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/matchmaking":  # the benchmark's start-up probe
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    await receive()  # the request (a GET has no body)
    query = parse_qs(scope["query_string"].decode())
    user, interest = query["userId"][0], query["interest"][0]
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    if interest in waiting:
        partner, told = waiting.pop(interest)
        chat_id = uuid.uuid4().hex
        told.set_result({"state": "MATCHED", "chatId": chat_id, "matchedUserId": user})
        event = {"state": "MATCHED", "chatId": chat_id, "matchedUserId": partner}
        await send({"type": "http.response.body", "body": sse(event)})
        return
    told = asyncio.get_running_loop().create_future()
    waiting[interest] = (user, told)
    await send({"type": "http.response.body", "body": sse({"state": "WAITING"}), "more_body": True})
    disconnect = asyncio.ensure_future(receive())
    try:
        await asyncio.wait({told, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if told.done():
            await send({"type": "http.response.body", "body": sse(told.result())})
    finally:
        disconnect.cancel()
        if waiting.get(interest, (None, None))[1] is told:
            del waiting[interest]

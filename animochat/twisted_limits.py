"""Clear 4xx answers for request heads Daphne's HTTP parser refuses.

Daphne parses HTTP with Twisted, whose ``HTTPChannel`` refuses any line of the request
head over 16 KiB by dropping the connection without a word (a client sending a
megabyte query string sees a reset, not an answer), and answers other malformed heads
(over 500 headers, bad framing) with a bare ``400`` and no body. :func:`install` makes
Twisted read the rest of an oversized head (up to a bound), then answer ``414``
(request line) or ``431`` (a header line), and gives the bare ``400`` the API's
``{"code": …, "message": …}`` body.
"""

from __future__ import annotations

import json

from twisted.web import http

# Past this much of one oversized head, stop reading and just close.
MAX_DISCARDED_BYTES = 16 * 1024 * 1024
# A blank line ends the head; Twisted also accepts bare LF line ends.
END_OF_HEAD = (b"\n\r\n", b"\n\n")


def _response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"code": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


URI_TOO_LONG = _response(
    414, "URI Too Long", "QUERY_TOO_LONG", "The request line (URL) is too long."
)
HEADER_TOO_LARGE = _response(
    431, "Request Header Fields Too Large", "HEADER_TOO_LARGE", "A request header is too large."
)
BAD_REQUEST = _response(
    400,
    "Bad Request",
    "MALFORMED_REQUEST",
    "The request is malformed (or has too many or too large headers).",
)


def _answer_oversized_line(channel: http.HTTPChannel, line: bytes) -> None:
    # No line of the head was accepted yet: the request line itself is too long.
    response = URI_TOO_LONG if channel._receivedHeaderSize == 0 else HEADER_TOO_LARGE
    seen = 0
    tail = b""

    def discard(data: bytes) -> None:
        # The client is still sending: answering before its head ends would make it
        # meet a reset instead of the response.
        nonlocal seen, tail
        seen += len(data)
        window = tail + data
        if any(end in window for end in END_OF_HEAD):
            channel.dataReceived = lambda data: None
            channel.transport.write(response)
            channel.transport.loseConnection()
        elif seen > MAX_DISCARDED_BYTES:
            channel.dataReceived = lambda data: None
            channel.transport.loseConnection()
        else:
            tail = window[-2:]

    channel.dataReceived = discard
    discard(line)


def _answer_bad_request(channel: http.HTTPChannel) -> None:
    channel.transport.write(BAD_REQUEST)
    channel.loseConnection()


def install() -> None:
    """Answer refused request heads clearly in this process's Twisted HTTP server."""
    http.HTTPChannel.lineLengthExceeded = _answer_oversized_line
    http.HTTPChannel._respondToBadRequestAndDisconnect = _answer_bad_request

"""A tiny Server-Sent Events client over a raw asyncio connection (tests, benchmarks).

It speaks HTTP/1.0 so the response body is the plain event stream (no chunking).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlencode, urlsplit


class SSEStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.comments: list[str] = []
        self.retry: int | None = None  # the last ``retry:`` field
        self.last_event_id = ""  # as EventSource keeps it: events without an id keep it
        self.event_ids: list[str] = []  # the ``id:`` of each event returned ('' if none)

    async def read_head(self) -> None:
        status_line = await self.reader.readline()
        self.status = int(status_line.split()[1])
        while True:
            line = (await self.reader.readline()).decode("latin-1").rstrip("\r\n")
            if not line:
                return
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()

    async def next_event(self, timeout: float = 5.0) -> dict | None:
        """The next ``data:`` event as a dict; None when the server ended the stream."""
        return await asyncio.wait_for(self._next_event(), timeout)

    async def next_change(self, timeout: float = 5.0) -> dict | None:
        """The next event that is not a WAITING update (sent at every keepalive)."""

        async def first_change() -> dict | None:
            while (event := await self._next_event()) is not None:
                if event.get("state") != "WAITING":
                    return event
            return None

        return await asyncio.wait_for(first_change(), timeout)

    async def _next_event(self) -> dict | None:
        data: list[str] = []
        event_id = ""
        while True:
            raw = await self.reader.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("retry:"):
                self.retry = int(line[6:].strip())
            elif line == "" and data:
                self.event_ids.append(event_id)
                self.last_event_id = event_id or self.last_event_id
                return json.loads("\n".join(data))

    async def events_until_closed(self, timeout: float = 5.0) -> list[dict]:
        """Every event but keepalive WAITING updates, until the server ends the stream."""
        events = []
        while (event := await self.next_change(timeout)) is not None:
            events.append(event)
        return events

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def open_stream(
    base_url: str,
    path: str = "/matchmaking",
    params: dict[str, str] | list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> SSEStream:
    """Open ``path`` on ``base_url`` and read the response head."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**20)
    target = path + ("?" + urlencode(params) if params else "")
    lines = [f"{method} {target} HTTP/1.0", f"Host: {parts.netloc}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    stream = SSEStream(reader, writer)
    await stream.read_head()
    return stream

"""A TCP proxy between the service and Redis that holds or cuts one connection's traffic.

Commands held from a client that has gone are followed by ``RPUSH proxy:delivered 1``
(see :data:`DELIVERED_KEY`): once that list is not empty, they have run.

Faults are armed with a marker (bytes, e.g. a script's SHA): the first connection
whose request carries it is the one disturbed, so a single call can be made to reach
Redis late, to lose its reply, or to lose its connection half-way through the reply,
while every other connection of the same process goes through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from animochat.embedded_redis import free_port

HOLD_REQUEST = "hold_request"  # the request (and the rest of its connection) waits
HOLD_REPLY = "hold_reply"  # the request goes through, its reply waits
CUT_REPLY = "cut_reply"  # half of the reply goes through, then the connection is cut
DELIVERED_KEY = "proxy:delivered"


class FaultyRedisProxy:
    """``start()`` in a thread of its own; point ``REDIS_URL`` at :meth:`url`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.fault: tuple[str, bytes] | None = None
        self.triggered = threading.Event()  # the armed fault met its connection
        self.released = threading.Event()  # held traffic may go on
        self.server: asyncio.base_events.Server | None = None

    def url(self, db: int = 15) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> FaultyRedisProxy:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self.serve, "127.0.0.1", self.port), self.loop
        ).result(10)
        return self

    def stop(self) -> None:
        self.released.set()

        async def close() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def arm(self, kind: str, marker: bytes) -> None:
        """Disturb the next connection whose request contains ``marker``."""
        self.triggered.clear()
        self.released.clear()
        self.fault = (kind, marker)

    def release(self) -> None:
        """Let held traffic through (a held reply is dropped if its client left)."""
        self.released.set()

    async def serve(self, client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        disturbed: list[str] = []  # the fault of this connection, once it is chosen
        requests = asyncio.ensure_future(self.requests(client_reader, up_writer, disturbed))
        replies = asyncio.ensure_future(self.replies(up_reader, client_writer, disturbed))
        await asyncio.wait({requests, replies}, return_when=asyncio.FIRST_COMPLETED)
        for task in (requests, replies):
            task.cancel()
        for writer in (client_writer, up_writer):
            writer.close()

    async def requests(self, reader, up_writer, disturbed: list[str]) -> None:
        while chunk := await reader.read(65536):
            if self.fault and not disturbed and self.fault[1] in chunk:
                disturbed.append(self.fault[0])
                self.fault = None
                self.triggered.set()
                if disturbed[0] == HOLD_REQUEST:
                    chunk += await self.hold(reader)
            if disturbed and disturbed[0] == HOLD_REQUEST and reader.at_eof():
                # Its client is gone: a command of the proxy's own follows, which Redis
                # runs only after the held ones, so a test can wait for them to have run.
                chunk += b"*3\r\n$5\r\nRPUSH\r\n$15\r\nproxy:delivered\r\n$1\r\n1\r\n"
            up_writer.write(chunk)
            await up_writer.drain()

    async def hold(self, reader) -> bytes:
        """What the client sends until the release. If the client gives up and closes
        first, its commands still reach Redis at the release, late, as commands stuck
        in a stalled server's input buffer do (Redis runs them before it sees the close)."""
        held = b""
        released = asyncio.get_running_loop().run_in_executor(None, self.released.wait)
        while True:
            read = asyncio.ensure_future(reader.read(65536))
            await asyncio.wait({read, released}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                read.cancel()
                return held
            held += read.result()
            if reader.at_eof():
                await released
                return held

    async def replies(self, up_reader, client_writer, disturbed: list[str]) -> None:
        while True:
            chunk = await up_reader.read(65536)
            if not chunk:
                return
            if disturbed and disturbed[0] == HOLD_REPLY:
                await asyncio.get_running_loop().run_in_executor(None, self.released.wait)
            elif disturbed and disturbed[0] == CUT_REPLY:
                client_writer.write(chunk[: max(1, len(chunk) // 2)])
                with contextlib.suppress(ConnectionError):
                    await client_writer.drain()
                return
            client_writer.write(chunk)
            try:
                await client_writer.drain()
            except ConnectionError:
                return

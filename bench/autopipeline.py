"""COMPARISON ONLY (not product code): automatic pipelining of ``EVALSHA`` calls.

``bench.engine --autopipeline`` swaps this in for the project's client under the real
``services.enqueue_or_match`` to measure what batching would buy. Calls made in the
same event-loop turn are sent together as one non-transactional pipeline: each
``EVALSHA`` is still its own atomic script run, in call order, but the client pays its
per-command overhead (pool checkout, timeouts, one ``send``/``recv``) once per batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError


class AutoPipelinedScripts:
    """The ``evalsha``/``script_load`` subset of a client, batching concurrent calls."""

    def __init__(self, client: aioredis.Redis, max_batch: int = 32) -> None:
        self.client = client
        self.max_batch = max_batch
        self.pending: list[tuple[tuple[Any, ...], asyncio.Future]] = []
        self.flush_scheduled = False
        self.in_flight: set[asyncio.Task] = set()

    async def script_load(self, source: str) -> str:
        return await self.client.script_load(source)

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.pending.append(((sha, numkeys, *args), future))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return future

    def flush(self) -> None:
        self.flush_scheduled = False
        while self.pending:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            task = asyncio.ensure_future(self.send(batch))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, _ in batch:
                    pipe.evalsha(*args)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as error:  # the whole batch failed (connection error, timeout)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, NoScriptError):
                future.set_exception(NoScriptError(str(reply)))
            elif isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

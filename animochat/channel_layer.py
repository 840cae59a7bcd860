"""The Channels layer: one Redis inbox per process, no subscription per stream.

A stream needs to be reached by exactly one kind of sender: whoever holds its address
(the matcher's caller telling a waiting partner, a newer stream of the same user, a
cancel). So every process subscribes once, at its first use, to a Redis channel of its
own, its *inbox*, and every channel it makes is process-specific in Channels' sense,
``"<inbox>!<local part>"``. :meth:`RedisInboxChannelLayer.send` publishes the message to
the inbox named before the ``!`` (or, when that is this process's own, hands it over at
once without Redis), and the receiving process puts it in the local queue of the full
name, in memory. Whoever wants to reach a stream later keeps its channel name: a waiting
user's lease in Redis holds it. Opening and ending a stream costs Redis nothing, and a
process that died simply has no subscriber: what was sent to it is dropped by Redis.

Groups are for the rare messages to every stream (maintenance): members are kept in
memory by each process, and :meth:`~RedisInboxChannelLayer.group_send` publishes on one
broadcast channel that every process subscribes to beside its inbox, each one handing
the message to its own members.

The one subscriber connection per process (and event loop):

* logs one ``pubsub_down`` event when it drops and one ``pubsub_restored`` when it is
  back, reconnecting every half second in between;
* puts a :data:`CONNECTION_LOST` message in every local channel when it drops, so a
  waiting stream checks its place at once instead of at its next keepalive: what was
  sent to this process until the reconnect is lost;
* is subscribed before :meth:`~RedisInboxChannelLayer.new_channel` returns, so a
  stream's address reaches it from the moment the address exists;
* reads whatever the socket holds at each wake-up and hands every complete message on
  before waiting again, instead of one ``get_message()`` call per message;
* connects as the project's other clients do: ``REDIS_URL``, or the primary Redis
  Sentinel names (asked again at every reconnect), with the project's short timeouts,
  and a ``PING`` when it heard nothing for a while, so a vanished Redis is noticed.

Publishes go through the project's command batches
(:func:`animochat.redis_client.command_batcher`). Messages must be JSON-serialisable.

On Redis Cluster (``REDIS_CLUSTER_NODES``) the inbox is a *sharded* channel: the
subscriber connects to the primary serving the inbox name's slot and sends
``SSUBSCRIBE``, and senders ``SPUBLISH``, which the cluster routes by the same slot, so
a notification crosses one node, never the cluster bus, and inboxes spread over the
primaries. The broadcast channel stays a plain ``SUBSCRIBE`` on the same connection: a
plain ``PUBLISH`` reaches the subscribers of every node, which is what a broadcast
wants. When the slot moves or its primary fails over, Redis ends the subscription
(``sunsubscribe``) or the connection: either is a lost connection, and the reconnect
looks the slot's primary up again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import secrets
import types
import uuid
import weakref
from typing import Any

import hiredis
from channels.layers import BaseChannelLayer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from animochat.logging import log_event
from animochat.redis_client import (
    CONNECTION_OPTIONS,
    async_connection_pool,
    cluster_mode,
    cluster_node_connection,
    command_batcher,
)

logger = logging.getLogger("animochat.channel_layer")

# Put in every local channel when the pub/sub connection drops: messages sent to this
# process from then until the reconnect are lost.
CONNECTION_LOST = "layer.connection_lost"
RECONNECT_INTERVAL = 0.5
# Silence on the subscriber connection this long is broken by a PING, whose answer must
# come within the socket timeout: a Redis that vanished without closing is noticed.
IDLE_PING_SECONDS = float(CONNECTION_OPTIONS["health_check_interval"])
READ_SIZE = 65536
# How long the first streams of a process wait for its first subscription.
FIRST_SUBSCRIBE_SECONDS = 10.0

READY, IDLE, DOWN = "ready", "idle", "down"


class RedisInboxChannelLayer(BaseChannelLayer):
    """Use as ``CHANNEL_LAYERS`` backend; ``prefix`` starts every Redis channel name
    (pub/sub ignores database numbers, so it should name the database)."""

    extensions = ["groups", "flush"]

    def __init__(self, prefix: str = "animochat.", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        self.broadcast_channel = f"{prefix}broadcast"
        self._inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox] = (
            weakref.WeakKeyDictionary()
        )

    def _inbox(self, start: bool = True) -> Inbox:
        """This event loop's inbox (one per loop: Daphne runs one, tests several)."""
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = Inbox(self)
            self._inboxes[loop] = inbox
            _flush_before_close(self, loop)
        if start:
            inbox.start()
        return inbox

    # -- Channels' layer API ---------------------------------------------------------

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A channel of this process, ``"<inbox>!<prefix><random>"``, once the inbox is
        subscribed; ``RedisConnectionError`` as soon as a connection attempt made after
        the call fails (within the reconnect interval while Redis is down), or if none
        succeeds in time: the socket timeout once the subscriber has been
        connected, longer for its first connection (a process just started on a busy
        machine)."""
        inbox = self._inbox()
        first = not (inbox.down or inbox.subscribed_before)
        await inbox.wait_subscribed(
            FIRST_SUBSCRIBE_SECONDS if first else CONNECTION_OPTIONS["socket_timeout"],
            until_failure=True,
        )
        channel = f"{inbox.name}!{prefix}{secrets.token_hex(16)}"
        inbox.channels[channel] = Mailbox()
        return channel

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to a channel made by :meth:`new_channel` in any process.

        Nothing happens when the channel's process or the channel itself is gone, nor
        for a name that is not process-specific (no process of this layer listens on
        one; a stream of an older version, during a rolling deploy, learns at its next
        keepalive).
        """
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_channel_name(channel)
        target, bang, _ = channel.partition("!")
        if not bang:
            return
        inbox = self._inbox(start=False)
        if target == inbox.name:
            inbox.deliver(channel, dict(message))
        else:
            await publish(target, [channel, message], sharded=True)

    async def receive(self, channel: str) -> dict[str, Any]:
        return await self.next_message(channel)

    def next_message(self, channel: str) -> asyncio.Future:
        """:meth:`receive` as a future, without a task to run it: what a stream waits
        on beside its client and its clocks."""
        assert self.require_valid_channel_name(channel)
        inbox = self._inbox()
        mailbox = inbox.channels.get(channel)
        if mailbox is None:
            if not channel.startswith(inbox.name + "!"):
                raise ValueError(f"{channel!r} belongs to another process")
            mailbox = inbox.channels[channel] = Mailbox()
        return mailbox.next()

    async def release_channel(self, channel: str) -> None:
        """Forget a channel made by :meth:`new_channel`: its queue and its groups.

        Messages sent to it later are dropped.
        """
        self._inbox(start=False).release(channel)

    async def group_add(self, group: str, channel: str) -> None:
        assert self.require_valid_group_name(group)
        assert self.require_valid_channel_name(channel)
        self._inbox(start=False).groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        members = self._inbox(start=False).groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self._inbox(start=False).groups[group]

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Every process hands ``message`` to its members of ``group``: for rare
        messages to many streams, since every process receives each one."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.require_valid_group_name(group)
        await publish(self.broadcast_channel, [group, message])

    async def flush(self) -> None:
        """Close every inbox of this layer: its subscription, channels and groups."""
        for loop, inbox in list(self._inboxes.items()):
            if loop is asyncio.get_running_loop():
                await inbox.close()
                del self._inboxes[loop]

    close = flush

    # -- for /readyz and /status -----------------------------------------------------

    async def listener_connected(self, timeout: float) -> bool:
        """Whether this process's inbox is subscribed, waiting up to ``timeout``.

        The subscriber is otherwise started by the first stream; a readiness probe must
        not wait for one, so it is started here if it is not running yet.
        """
        try:
            await self._inbox().wait_subscribed(timeout)
        except RedisConnectionError:
            return False
        return True

    def subscriber_state(self) -> str:
        """``ready``, ``down``, or ``idle`` when nothing has needed the subscriber yet."""
        try:
            inbox = self._inboxes.get(asyncio.get_running_loop())
        except RuntimeError:  # no running loop: nothing of this process was started
            inbox = None
        if inbox is None or inbox.listener is None:
            return IDLE
        return READY if inbox.subscribed.is_set() else DOWN


async def publish(channel: str, payload: list[Any], sharded: bool = False) -> None:
    # With the matcher calls of the same event-loop turn, on the project's connections.
    # An inbox is a sharded channel on a cluster (see the module's docstring).
    command = "SPUBLISH" if sharded and cluster_mode() else "PUBLISH"
    await command_batcher().execute(command, channel, json.dumps(payload, separators=(",", ":")))


class Mailbox:
    """One local channel: the messages not read yet, in order, and the readers waiting.

    A message put while a reader waits goes straight to that reader's future; asyncio's
    ``Queue`` would cost a stream an ``Event`` and a task to wait on it.
    """

    __slots__ = ("messages", "readers")

    def __init__(self) -> None:
        self.messages: collections.deque[dict[str, Any]] = collections.deque()
        self.readers: collections.deque[asyncio.Future] = collections.deque()

    def put(self, message: dict[str, Any]) -> None:
        while self.readers:
            reader = self.readers.popleft()
            if not reader.done():  # a cancelled reader takes nothing
                reader.set_result(message)
                return
        self.messages.append(message)

    def next(self) -> asyncio.Future:
        """The next message, in a future (done at once if one is waiting)."""
        future = asyncio.get_running_loop().create_future()
        if self.messages:
            future.set_result(self.messages.popleft())
        else:
            self.readers.append(future)
        return future

    def empty(self) -> bool:
        return not self.messages


class Inbox:
    """One event loop's subscriber: its inbox channel, local channels and group members."""

    def __init__(self, layer: RedisInboxChannelLayer) -> None:
        self.layer = layer
        self.name = f"{layer.prefix}inbox.{uuid.uuid4().hex[:16]}"
        self.channels: dict[str, Mailbox] = {}
        self.groups: dict[str, set[str]] = {}
        self.subscribed = asyncio.Event()
        # Resolved by the next failed connection attempt, then replaced: a waiter hears
        # only of attempts made after it began, so one that began between a failure and
        # the reconnect (Redis just restarted) waits for that reconnect.
        self.next_failure: asyncio.Future = asyncio.get_running_loop().create_future()
        self.listener: asyncio.Task | None = None
        self._handlers = {
            self.name.encode(): self._on_inbox,
            layer.broadcast_channel.encode(): self._on_broadcast,
        }
        self.down = False  # logged pubsub_down, not yet pubsub_restored
        self.subscribed_before = False

    def start(self) -> None:
        if self.listener is None:
            self.listener = asyncio.ensure_future(self._listen())

    async def wait_subscribed(self, timeout: float, until_failure: bool = False) -> None:
        """Return once subscribed; ``RedisConnectionError`` after ``timeout``, or, with
        ``until_failure``, as soon as a connection attempt made from now on fails."""
        if self.subscribed.is_set():
            return
        subscribed = asyncio.ensure_future(self.subscribed.wait())
        waits = {subscribed, self.next_failure} if until_failure else {subscribed}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            subscribed.cancel()
        if not self.subscribed.is_set():
            raise RedisConnectionError("The pub/sub subscriber is not connected.")

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        mailbox = self.channels.get(channel)
        if mailbox is not None:
            mailbox.put(message)

    def release(self, channel: str) -> None:
        self.channels.pop(channel, None)
        for group, members in list(self.groups.items()):
            members.discard(channel)
            if not members:
                del self.groups[group]

    def connection_lost(self) -> None:
        for mailbox in self.channels.values():
            mailbox.put({"type": CONNECTION_LOST})

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            await asyncio.gather(self.listener, return_exceptions=True)
            self.listener = None
        self.subscribed.clear()
        self.channels.clear()
        self.groups.clear()

    # -- the subscriber connection ---------------------------------------------------

    async def _listen(self) -> None:
        options = {
            **CONNECTION_OPTIONS,
            "decode_responses": False,
            "health_check_interval": 0,
            "retry": Retry(NoBackoff(), 0),  # this loop reconnects by itself
            "client_name": self.name,  # CLIENT LIST tells which connection is whose inbox
        }
        sharded = cluster_mode()
        pool = None if sharded else async_connection_pool(**options)
        inbox, broadcast = self.name, self.layer.broadcast_channel
        subscribe = (
            [("SSUBSCRIBE", inbox), ("SUBSCRIBE", broadcast)]
            if sharded
            else [("SUBSCRIBE", inbox, broadcast)]
        )
        failed = False
        try:
            while True:
                connection = None
                try:
                    if sharded:  # the primary of the inbox's slot, looked up again after a failure
                        connection = await cluster_node_connection(inbox, failed, **options)
                    else:
                        connection = pool.make_connection()
                    await connection.connect()
                    await connection.send_packed_command(
                        connection.pack_commands(subscribe), check_health=False
                    )
                    await self._read(connection)
                except (RedisError, OSError) as error:  # OSError includes TimeoutError
                    self._lost(error)
                except Exception as error:
                    logger.exception("pubsub_receive_failed")
                    self._lost(error)
                finally:
                    if connection is not None:
                        with contextlib.suppress(Exception):
                            await connection.disconnect(nowait=True)
                failed = True
                await asyncio.sleep(RECONNECT_INTERVAL)
        finally:
            if pool is not None:
                await pool.disconnect()

    def _lost(self, error: BaseException) -> None:
        """The connection failed: once per outage, log it and tell every local stream."""
        self.subscribed.clear()
        self.next_failure.set_result(None)
        self.next_failure = asyncio.get_running_loop().create_future()
        if not self.down:
            self.down = True
            log_event(logger, "pubsub_down", logging.WARNING, error=str(error))
            self.connection_lost()

    async def _read(self, connection: Any) -> None:
        """Hand on every message the connection brings, until it fails.

        Each wake-up parses all that one read brought, so a burst of notifications costs
        one wake-up, not one per message. The socket is read past redis-py's own
        parser, which has nothing buffered once the connection's handshake is done.
        """
        reader = hiredis.Reader()
        stream: asyncio.StreamReader = connection._reader
        confirmed: set[bytes] = set()
        pinged = False
        while True:
            try:
                async with asyncio.timeout(
                    CONNECTION_OPTIONS["socket_timeout"] if pinged else IDLE_PING_SECONDS
                ):
                    data = await stream.read(READ_SIZE)
            except TimeoutError:
                if pinged:
                    raise RedisTimeoutError("No answer to PING from pub/sub.") from None
                await connection.send_command("PING", check_health=False)
                pinged = True
                continue
            if not data:
                raise RedisConnectionError("Connection closed by server.")
            pinged = False
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if isinstance(reply, Exception):
                    raise reply
                kind = reply[0]
                if kind in (b"message", b"smessage"):
                    try:
                        self._handlers[reply[1]](reply[2])
                    except Exception:  # one bad message must not cost the connection
                        logger.exception("pubsub_message_failed")
                elif kind == b"sunsubscribe":  # the inbox's slot moved to another node
                    raise RedisConnectionError("The inbox's slot moved.")
                elif kind in (b"subscribe", b"ssubscribe"):
                    confirmed.add(reply[1])
                    if len(confirmed) == len(self._handlers):
                        self.subscribed.set()
                        self.subscribed_before = True
                        if self.down:
                            self.down = False
                            log_event(logger, "pubsub_restored")

    def _on_inbox(self, data: bytes) -> None:
        channel, message = json.loads(data)
        self.deliver(channel, message)

    def _on_broadcast(self, data: bytes) -> None:
        group, message = json.loads(data)
        for channel in self.groups.get(group, ()):
            self.deliver(channel, dict(message))


def _flush_before_close(layer: RedisInboxChannelLayer, loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop's inbox when the loop closes (tests run several loops)."""
    original = loop.close

    def close(self: asyncio.AbstractEventLoop) -> None:
        inbox = layer._inboxes.pop(loop, None)
        if inbox is not None and not loop.is_running():
            loop.run_until_complete(inbox.close())
        self.close = original
        original()

    loop.close = types.MethodType(close, loop)

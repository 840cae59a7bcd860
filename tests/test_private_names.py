"""The private names the project relies on still exist in the installed libraries.

animochat/channel_layer.py subclasses channels_redis' pub/sub layer and reaches into
its internals (and redis-py's PubSub under it); animochat/twisted_limits.py replaces
methods of Twisted's ``HTTPChannel``. Neither library promises these names, which is
why pyproject.toml pins both to the tested minor series; this test fails the moment an
upgrade drops one, instead of the service failing at run time. The names are checked
on the libraries' own classes and instances, never on the project's subclasses (which
define some of them themselves).
"""

from __future__ import annotations

from channels_redis import pubsub, utils
from django.conf import settings
from twisted.web import http

LAYER_NAMES = ("_get_layer", "_layers", "_args", "_kwargs")
LOOP_LAYER_NAMES = (
    "_shards",
    "_get_shard",
    "_subscribe_to_channel",
    "channels",
    "channel_layer",
    "prefix",
)
SHARD_NAMES = (
    "host",
    "_subscribed_to",
    "_lock",
    "_pubsub",
    "_ensure_redis",
    "_ensure_receiver",
    "_do_receiving",
    "_receive_message",
)
REDIS_PUBSUB_NAMES = ("_normalize_keys", "channels", "pending_unsubscribe_channels", "connection")
TWISTED_NAMES = ("_respondToBadRequestAndDisconnect", "lineLengthExceeded", "_receivedHeaderSize")


def missing(thing: object, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not hasattr(thing, name)]


async def test_channels_redis_private_names():
    assert callable(utils._wrap_close)
    layer = pubsub.RedisPubSubChannelLayer(hosts=[settings.REDIS_URL])
    assert missing(layer, LAYER_NAMES) == []
    loop_layer = pubsub.RedisPubSubLoopLayer(*layer._args, **layer._kwargs, channel_layer=layer)
    assert missing(loop_layer, LOOP_LAYER_NAMES) == []
    [shard] = loop_layer._shards
    assert isinstance(shard, pubsub.RedisSingleShardConnection)
    assert missing(shard, SHARD_NAMES) == []
    shard._ensure_redis()  # makes the PubSub object, without connecting
    try:
        assert missing(shard._pubsub, REDIS_PUBSUB_NAMES) == []
    finally:
        await shard._pubsub.aclose()
        await shard._redis.aclose()


def test_twisted_private_names():
    assert missing(http.HTTPChannel, TWISTED_NAMES) == []
    assert missing(http.HTTPChannel(), TWISTED_NAMES) == []


def test_a_vanished_name_is_reported():
    assert missing(http.HTTPChannel, (*TWISTED_NAMES, "_no_such_name")) == ["_no_such_name"]

"""COMPARISON ONLY: the product settings with channels_redis' own pub/sub layer.

``bench.stream --layer upstream`` measures what ``animochat.channel_layer`` (batched
subscriptions, publishes beside the matcher calls, no shard lock on publish) buys over
the class it extends (see bench/README.md).
"""

from animochat.settings import *  # noqa: F403
from animochat.settings import _REDIS_DB, REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"animochat.db{_REDIS_DB}."},
    }
}

"""COMPARISON ONLY: the product settings with channels_redis' core (list-based) layer.

``bench.stream --layer core`` runs Daphne with this module to measure the layer the
product did not choose (see bench/README.md).
"""

from animochat.settings import *  # noqa: F403
from animochat.settings import _REDIS_DB, REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"animochat.db{_REDIS_DB}."},
    }
}

"""COMPARISON ONLY: the product settings with bench/lockfree_layer.py's pub/sub layer."""

from animochat.settings import *  # noqa: F403
from animochat.settings import _REDIS_DB, REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "bench.lockfree_layer.LockFreePubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": f"animochat.db{_REDIS_DB}."},
    }
}

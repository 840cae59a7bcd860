"""Match pools: sets of users who may be matched with each other (``MATCH_POOLS``).

Every key of a pool's queues, leases, sessions and counters starts with the pool's
prefix, the hash tag ``{p:<pool>}``: Redis Cluster hashes only the tag, so one pool's
keys share one slot (a script may touch them all atomically) and different pools
spread over the cluster's primaries. One exception keeps upgrades free of migration:
the pool named ``default`` on a single Redis (no ``REDIS_CLUSTER_NODES``) has no
prefix, so its keys keep the names they had before pools existed.
"""

from __future__ import annotations

from django.conf import settings
from django.core.signals import setting_changed

DEFAULT_POOL = "default"
# pool -> its prefix: every key of every script call asks (about twenty per pair of
# users), and two settings reads each time were a couple per cent of a stream's CPU.
# Emptied whenever a test changes either setting.
_prefixes: dict[str, str] = {}


def pools() -> tuple[str, ...]:
    """Every pool, the one of streams naming none first."""
    return settings.MATCH_POOLS


def default_pool() -> str:
    return settings.MATCH_POOLS[0]


def key_prefix(pool: str) -> str:
    """What every key of ``pool`` starts with (``''`` for the unprefixed default)."""
    prefix = _prefixes.get(pool)
    if prefix is None:
        if pool == DEFAULT_POOL and not settings.REDIS_CLUSTER_NODES:
            prefix = ""
        else:
            prefix = "{p:" + pool + "}"
        if pool in settings.MATCH_POOLS:  # configured pools only: the cache stays small
            _prefixes[pool] = prefix
    return prefix


def _forget_prefixes(*, setting: str, **kwargs: object) -> None:
    if setting in ("MATCH_POOLS", "REDIS_CLUSTER_NODES"):
        _prefixes.clear()


setting_changed.connect(_forget_prefixes)

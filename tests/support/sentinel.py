"""A real Redis primary, its replica and three Sentinels on private ports."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from animochat.embedded_redis import EmbeddedRedis, free_port, redis_answers, redis_server_binary
from tests.support.servers import stop_process

MASTER_NAME = "animochat-test"
DOWN_AFTER_MS = 2000


class SentinelCluster:
    """``primary`` replicated to ``replica``, watched by three Sentinels (quorum 2)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="animochat-sentinel-"))
        self.primary = EmbeddedRedis()
        self.replica = EmbeddedRedis(
            extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)]
        )
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: dict[int, subprocess.Popen] = {}

    @property
    def sentinels_env(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self, timeout: float = 30.0) -> SentinelCluster:
        self.primary.start()
        self.replica.start()
        for port in self.sentinel_ports:
            config = self.dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f"dir {self.dir}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            log = (self.dir / f"sentinel-{port}.log").open("ab")
            self.sentinels[port] = subprocess.Popen(
                [redis_server_binary(), str(config), "--sentinel"],
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            dead = [port for port, p in self.sentinels.items() if p.poll() is not None]
            assert not dead and time.monotonic() < deadline, self.logs()
            time.sleep(0.1)
        return self

    def ready(self) -> bool:
        """Replica in sync, every Sentinel knows the replica and the other Sentinels."""
        if not all(redis_answers(f"redis://127.0.0.1:{p}") for p in self.sentinel_ports):
            return False
        replica = redis.Redis(port=self.replica.port, decode_responses=True)
        try:
            if replica.info("replication").get("master_link_status") != "up":
                return False
        finally:
            replica.close()
        for port in self.sentinel_ports:
            sentinel = redis.Redis(port=port, decode_responses=True)
            try:
                master = sentinel.sentinel_master(MASTER_NAME)
                if master["num-slaves"] < 1 or master["num-other-sentinels"] < 2:
                    return False
            finally:
                sentinel.close()
        return True

    def primary_address(self) -> tuple[str, int]:
        """The primary the Sentinels announce now."""
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        try:
            host, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
            return host, int(port)
        finally:
            sentinel.close()

    def kill_primary(self) -> None:
        self.primary.process.kill()  # SIGKILL: no goodbye to anyone
        self.primary.process.wait()

    def logs(self) -> str:
        """The Sentinels' logs (they tell the failover's steps)."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.dir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.sentinels.values():
            stop_process(process, 15, 10)
        self.primary.stop()
        self.replica.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

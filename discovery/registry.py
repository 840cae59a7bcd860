"""A registry compatible with AnimoChat Service Discovery, for development and tests.

``manage.py discovery_server`` serves it. It keeps instances in memory, like the real
one, and speaks the same protocol (docs/PROTOCOL.md#registry-endpoints). An instance
not heard from for ``down_after`` seconds (15, as in the real registry) is DOWN until
its next heartbeat. Paths are matched exactly, so a client that builds
``//register`` gets a 404 here just as it would in production.

For tests it also answers ``GET /_requests``: the requests it received, oldest first,
as ``{method, path, body, status, at}`` (``body`` is the decoded JSON, or the raw
text; ``at`` the Unix time it arrived).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from animochat.logging import log_event

logger = logging.getLogger("discovery.registry")

DOWN_AFTER_SECONDS = 15.0
MAX_BODY_BYTES = 64 * 1024
REQUEST_LOG_SIZE = 2000
IDENTITY_FIELDS = ("serviceName", "version", "url")


@dataclass
class _Instance:
    service_name: str
    version: str
    url: str
    last_seen: float  # time.monotonic()
    timestamp: int  # Unix seconds of the last registration or heartbeat

    def as_json(self, now: float, down_after: float) -> dict[str, Any]:
        status = "RUNNING" if now - self.last_seen < down_after else "DOWN"
        return {
            "serviceName": self.service_name,
            "version": self.version,
            "url": self.url,
            "status": status,
            "timestamp": self.timestamp,
        }


class Registry:
    """The in-memory registry: thread-safe, status computed from the time of last contact."""

    def __init__(self, down_after: float = DOWN_AFTER_SECONDS) -> None:
        self.down_after = down_after
        self._lock = threading.Lock()
        self._services: dict[str, dict[str, list[_Instance]]] = {}

    def register(self, name: str, version: str, url: str) -> bool:
        """Add the instance or refresh it; True when it is new."""
        with self._lock:
            instances = self._services.setdefault(name, {}).setdefault(version, [])
            now, timestamp = time.monotonic(), int(time.time())
            for instance in instances:
                if instance.url == url:
                    if now - instance.last_seen >= self.down_after:
                        log_event(
                            logger, "instance_revived", service=name, version=version, url=url
                        )
                    instance.last_seen, instance.timestamp = now, timestamp
                    return False
            instances.append(_Instance(name, version, url, now, timestamp))
        log_event(logger, "instance_registered", service=name, version=version, url=url)
        return True

    def unregister(self, name: str, version: str, url: str) -> str:
        """Remove the instance: ``"ok"``, ``"no service"`` or ``"no instance"``."""
        with self._lock:
            versions = self._services.get(name)
            if not versions or version not in versions:
                return "no service"
            instances = versions[version]
            kept = [instance for instance in instances if instance.url != url]
            if len(kept) == len(instances):
                return "no instance"
            if kept:
                versions[version] = kept
            else:
                del versions[version]
                if not versions:
                    del self._services[name]
        log_event(logger, "instance_unregistered", service=name, version=version, url=url)
        return "ok"

    def known(self, name: str, version: str) -> bool:
        with self._lock:
            return version in self._services.get(name, {})

    def running(self, name: str, version: str) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            instances = self._services.get(name, {}).get(version, [])
            listed = [instance.as_json(now, self.down_after) for instance in instances]
        return [instance for instance in listed if instance["status"] == "RUNNING"]

    def snapshot(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        with self._lock:
            now = time.monotonic()
            return {
                name: {
                    version: [instance.as_json(now, self.down_after) for instance in instances]
                    for version, instances in versions.items()
                }
                for name, versions in self._services.items()
            }


class RegistryServer(ThreadingHTTPServer):
    """The HTTP face of a :class:`Registry`, remembering what it was asked."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: Registry) -> None:
        super().__init__(address, RegistryHandler)
        self.registry = registry
        self.requests_seen: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class RegistryHandler(BaseHTTPRequestHandler):
    server: RegistryServer
    protocol_version = "HTTP/1.1"
    server_version = "AnimoChatDiscovery/1.0"
    timeout = 60  # seconds an idle keep-alive connection may hold a thread

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: one line per heartbeat is exactly the noise this project avoids."""

    def do_OPTIONS(self) -> None:
        self._send(204, None)

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body, raw = self._read_body()
        # http.server folds a leading "//" into "/" in self.path; the production registry
        # does not, so route (and record) the target exactly as the client sent it.
        target = self.requestline.split()[1] if self.requestline.count(" ") == 2 else self.path
        path = target.split("?", 1)[0]
        registry = self.server.registry
        if path == "/_requests" and self.command == "GET":
            self._send(200, list(self.server.requests_seen))
            return
        route = (self.command, path)
        if route == ("POST", "/register"):
            status, answer = self._register(registry, body)
        elif route == ("DELETE", "/unregister"):
            status, answer = self._unregister(registry, body)
        elif route == ("GET", "/services"):
            status, answer = 200, registry.snapshot()
        elif self.command == "GET" and path.startswith("/discover/"):
            status, answer = self._discover(registry, path.split("/")[2:])
        else:
            status, answer = 404, {"message": f"Cannot {self.command} {path}"}
        self.server.requests_seen.append(
            {
                "method": self.command,
                "path": target,
                "body": raw if body is None else body,
                "status": status,
                "at": time.time(),
            }
        )
        self._send(status, answer)

    @staticmethod
    def _register(registry: Registry, body: Any) -> tuple[int, dict[str, Any]]:
        identity = _identity(body)
        if identity is None:
            return 400, {"message": "Service name, version, and URL are required."}
        if registry.register(*identity):
            return 201, {"message": "New instance registered successfully."}
        return 200, {"message": "Heartbeat for instance received."}

    @staticmethod
    def _unregister(registry: Registry, body: Any) -> tuple[int, dict[str, Any]]:
        identity = _identity(body)
        if identity is None:
            return 400, {"message": "Service name, version, and URL are required to unregister."}
        outcome = registry.unregister(*identity)
        if outcome == "ok":
            return 200, {"message": "Instance unregistered successfully."}
        if outcome == "no service":
            return 404, {"message": "Service not found."}
        return 404, {"message": "Specific instance not found."}

    @staticmethod
    def _discover(registry: Registry, segments: list[str]) -> tuple[int, Any]:
        if len(segments) not in (2, 3) or not all(segments) or segments[2:] not in ([], ["all"]):
            return 404, {"message": "Not found."}
        name, version = unquote(segments[0]), unquote(segments[1])
        if not registry.known(name, version):
            return 404, {"message": "Service not found."}
        running = registry.running(name, version)
        if not running:
            return 404, {"message": "No running instances found for this service version."}
        if len(segments) == 3:
            return 200, running
        return 200, random.choice(running)

    def _read_body(self) -> tuple[Any, str]:
        """The decoded JSON body (None if absent or malformed) and the raw text."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return None, ""
        raw = self.rfile.read(min(length, MAX_BODY_BYTES)).decode("utf-8", "replace")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread rest would be taken for a request
        try:
            return json.loads(raw), raw
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            return None, raw

    def _send(self, status: int, answer: Any) -> None:
        data = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", "*")
        if self.command == "OPTIONS":
            self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", "Content-Type")
        if answer is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _identity(body: Any) -> tuple[str, str, str] | None:
    """``(serviceName, version, url)`` when all three are non-empty strings."""
    if not isinstance(body, dict):
        return None
    values = [body.get(field) for field in IDENTITY_FIELDS]
    if not all(isinstance(value, str) and value.strip() for value in values):
        return None
    return values[0], values[1], values[2]


def serve(host: str, port: int, down_after: float = DOWN_AFTER_SECONDS) -> RegistryServer:
    """A bound (not yet serving) registry server; call ``serve_forever()`` on it."""
    return RegistryServer((host, port), Registry(down_after))

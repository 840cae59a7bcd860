"""A misbehaving discovery server, in a thread of the test process.

Every request is answered according to ``mode`` (or, with ``cycle``, the next mode in
turn): the ways a registry, a proxy in front of it or a sleeping free-tier host really
answer. A ``"healthy"`` mode answers like the real registry with one chat server.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from animochat.embedded_redis import free_port

HTML = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"
CHAT_SERVER = "https://chat-from-stub.test"
# What a registry (or a proxy in front of it) might say in an error body: never shown.
LEAKY_BODY = b'{"message":"connect to postgres://registry:hunter2@10.0.0.5 failed"}'

# mode -> (status, content type, body); "timeout", "dribble", "close" and "redirect"
# (a 307 to ``redirect_to`` + the same path) are special.
CANNED: dict[str, tuple[int, str, bytes]] = {
    "500-json": (500, "application/json", b'{"message":"Internal Server Error"}'),
    "500-leaky": (500, "application/json", LEAKY_BODY),
    "500-html": (500, "text/html", HTML),
    "502-html": (502, "text/html", HTML),
    "200-html": (200, "text/html", HTML),
    "404-html": (404, "text/html", b"<html><body>Not Found</body></html>"),
    "404-json": (404, "application/json", b'{"message":"No running instances found."}'),
    "garbage-json": (200, "application/json", b'{"url": "http://x", '),
    "wrong-shape": (200, "application/json", b'"OK"'),
    "bad-instances": (200, "application/json", b'[{"name": "no url"}, 42]'),
    "bad-url": (200, "application/json", b'[{"url": "ftp://nope"}]'),
    "empty-200": (200, "application/json", b""),
    "huge": (200, "application/json", b"[" + b'"x",' * 400_000 + b'"x"]'),
}
MODES = (*CANNED, "timeout", "dribble", "close", "redirect", "healthy")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up on a slow answer is the point here, not an error."""


class DiscoveryStub:
    """Start with :meth:`start`; set ``mode`` or ``cycle`` at any time; :meth:`stop`."""

    def __init__(self, mode: str = "500-json", sleep: float = 3.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sleep = sleep  # how long "timeout" and "dribble" answers take
        self.redirect_to = self.url
        self.mode = mode
        self._cycle: Iterable[str] | None = None
        self._lock = threading.Lock()
        self.requests_seen: list[dict[str, Any]] = []
        self.server = QuietServer(("127.0.0.1", self.port), self._handler_class())
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> DiscoveryStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def cycle(self, modes: Iterable[str]) -> None:
        with self._lock:
            self._cycle = itertools.cycle(list(modes))

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self._cycle, self.mode = None, mode

    def next_mode(self, method: str, path: str) -> str:
        with self._lock:
            mode = next(self._cycle) if self._cycle is not None else self.mode
            self.requests_seen.append(
                {"method": method, "path": path, "mode": mode, "at": time.monotonic()}
            )
            return mode

    def paths(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests_seen if method in (None, r["method"])]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.answer()

            do_POST = do_DELETE = do_GET

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                mode = stub.next_mode(self.command, self.path)
                if mode == "timeout":
                    time.sleep(stub.sleep)
                    self.close_connection = True
                    return
                if mode == "close":
                    self.close_connection = True
                    return
                if mode == "dribble":
                    self.dribble()
                    return
                if mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", stub.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "healthy":
                    status, body = self.healthy()
                    self.reply(status, "application/json", json.dumps(body).encode())
                    return
                self.reply(*CANNED[mode])

            def healthy(self) -> tuple[int, Any]:
                if self.path.endswith("/all"):
                    instance = {"serviceName": "chat-service", "version": "1.0.0"}
                    return 200, [{**instance, "url": CHAT_SERVER, "status": "RUNNING"}]
                if self.command == "POST":
                    return 200, {"message": "Heartbeat for instance received."}
                return 200, {"message": "ok"}

            def reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def dribble(self) -> None:
                """A valid answer sent one byte at a time, slower than any deadline."""
                body = b'[{"url": "http://slow.test"}]'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                pause = stub.sleep / len(body) * 4
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass
                self.close_connection = True

        return Handler

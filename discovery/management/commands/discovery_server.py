"""``manage.py discovery_server``: a local AnimoChat Service Discovery.

For development and tests: point ``DISCOVERY_SERVER_URL`` at it. Stops on
SIGINT/SIGTERM. The protocol: docs/PROTOCOL.md#registry-endpoints.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from animochat.logging import log_event
from discovery.registry import DOWN_AFTER_SECONDS, serve

logger = logging.getLogger("discovery.registry")


class Command(BaseCommand):
    help = "Serve a registry compatible with AnimoChat Service Discovery (kept in memory)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=3009, help="port (default 3009)")
        parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
        parser.add_argument(
            "--down-after",
            type=float,
            default=DOWN_AFTER_SECONDS,
            help="seconds of silence before an instance is DOWN (default 15, as in production)",
        )

    def handle(self, *args, port: int, host: str, down_after: float, **options):
        if down_after <= 0:
            raise CommandError("--down-after must be a positive number of seconds")
        try:
            server = serve(host, port, down_after)
        except OSError as error:
            raise CommandError(f"cannot listen on {host}:{port}: {error}") from None

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        worker = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="registry", daemon=True
        )
        worker.start()
        log_event(logger, "discovery_server_listening", url=server.url, downAfter=down_after)
        try:
            stop.wait()
        finally:
            server.shutdown()
            server.server_close()
            log_event(logger, "discovery_server_stopped", url=server.url)

"""``manage.py heartbeat``: stay registered with discovery and keep the chat-server list fresh.

Run beside Daphne (``make run`` does). Stops on SIGINT/SIGTERM, unregistering first.
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from animochat.redis_client import get_sync_redis
from discovery.client import DiscoveryClient
from discovery.services import Heartbeat, request_timeout, validate_interval


class Command(BaseCommand):
    help = (
        "Register with AnimoChat Service Discovery, heartbeat every HEARTBEAT_INTERVAL "
        "seconds and refresh the shared chat-server list; unregister on SIGINT/SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between beats, under 15 (default: HEARTBEAT_INTERVAL, 5)",
        )

    def handle(self, *args, interval: float | None, **options):
        try:
            interval = validate_interval(
                settings.HEARTBEAT_INTERVAL if interval is None else interval
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())

        client = DiscoveryClient(settings.DISCOVERY_SERVER_URL, request_timeout(interval))
        redis_client = get_sync_redis()
        try:
            Heartbeat(
                client,
                redis_client,
                service_name=settings.SERVICE_NAME,
                version=settings.SERVICE_VERSION,
                url=settings.RENDER_EXTERNAL_URL,
                interval=interval,
                fallback_servers=settings.CHAT_SERVER_URLS,
                allowed_hosts=settings.CHAT_SERVER_ALLOWED_HOSTS,
                allow_plain_http=settings.DEBUG,
            ).run(stop)
        finally:
            client.close()
            redis_client.close()

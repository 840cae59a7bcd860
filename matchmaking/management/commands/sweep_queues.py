"""``manage.py sweep_queues``: drop waiting users whose stream died without a goodbye.

The matcher already skips such users; sweeping keeps queue sizes (``/status``, the
admin, ``/metrics``) honest after a server was killed. ``make run`` runs it beside
Daphne; any number of copies may run, since each sweep is a series of atomic steps.
"""

from __future__ import annotations

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from redis.exceptions import RedisError

from animochat.logging import log_event
from animochat.redis_client import get_sync_redis
from matchmaking.services import sweep_lapsed_waiters

logger = logging.getLogger("matchmaking.sweep")


class Command(BaseCommand):
    help = "Remove waiting users whose lease lapsed from every queue, periodically."

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between sweeps (default: LEASE_SECONDS / 2)",
        )
        parser.add_argument("--once", action="store_true", help="sweep once and exit")

    def handle(self, *args, interval: float | None, once: bool, **options):
        interval = interval or settings.LEASE_SECONDS / 2
        stop = threading.Event()
        if not once:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        client = get_sync_redis()
        redis_down = False
        try:
            while True:
                try:
                    removed = sweep_lapsed_waiters(client)
                    if redis_down:
                        log_event(logger, "redis_recovered")
                    redis_down = False
                    if removed:
                        log_event(logger, "swept_lapsed_waiters", removed=removed)
                except (RedisError, OSError) as error:
                    if not redis_down:  # once per outage, not once per sweep
                        log_event(logger, "redis_unavailable", logging.WARNING, error=str(error))
                    redis_down = True
                if once or stop.wait(interval):
                    return
        finally:
            client.close()

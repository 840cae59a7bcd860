"""``manage.py maintenance on|off|status``: switch maintenance for every instance."""

from __future__ import annotations

import asyncio

from django.core.management.base import BaseCommand, CommandError
from redis.exceptions import RedisError

from animochat.redis_client import close_redis
from matchmaking import selectors, services


class Command(BaseCommand):
    help = "Turn maintenance on or off for every instance (kept in Redis), or show it."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["on", "off", "status"])
        parser.add_argument(
            "--message",
            default=services.MAINTENANCE_MESSAGE,
            help="what waiting users are told when maintenance starts",
        )

    def handle(self, *args, action: str, message: str, **options):
        try:
            on = asyncio.run(self.apply(action, message))
        except (RedisError, OSError) as error:
            raise CommandError(f"Redis is unreachable: {error}") from None
        self.stdout.write("MAINTENANCE" if on else "ACTIVE")

    async def apply(self, action: str, message: str) -> bool:
        try:
            if action != "status":
                await services.set_maintenance(action == "on", message)
            return await selectors.is_maintenance()
        finally:
            await close_redis()

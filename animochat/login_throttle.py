"""Admin log-in throttling: 5 failed attempts for one username from one address lock
that pair out for 15 minutes, in every process (the count lives in Redis).

A small implementation rather than django-axes: axes finds the client address with its
own rules (django-ipware), while every limit here must use the service's one client
address (:func:`animochat.http.client_address`); its cache handler counts with a read
then a write, so processes failing at the same moment can lose counts, where ``INCR``
cannot; and it needs a middleware and an authentication backend of its own on top of
this async stack. The admin's login view is synchronous (Django runs it in a thread
under Daphne), so the count goes through django-redis' synchronous connection to the
project's Redis.

Key: ``login_failures:<hash of username and address>`` (STRING counter). Every failure
increments it and restarts its 15-minute expiry; while it is at the limit, attempts are
refused before the password is even checked, so the lock ends 15 minutes after the
failure that reached the limit. A successful log-in deletes it. The project's admin
site (animochat/admin.py) logs in with :class:`ThrottledLoginForm` and answers a
refused attempt 429.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django_redis import get_redis_connection

from animochat.clientaddr import client_bucket
from animochat.http import client_address
from animochat.logging import log_event

logger = logging.getLogger("animochat.admin")

FAILURE_LIMIT = 5
LOCKOUT_SECONDS = 15 * 60


def failure_key(username: str, address: str) -> str:
    # Counted per rate-limit bucket (an IPv6 client per /64, which it could rotate
    # through). Hashed: the username is whatever the form was sent; keys stay short.
    bucket = client_bucket(address)
    digest = hashlib.sha256(f"{username.casefold()}\0{bucket}".encode()).hexdigest()
    return f"login_failures:{digest[:32]}"


def locked_for(username: str, address: str) -> int:
    """Seconds until ``username`` may try again from ``address``; 0 when it may now."""
    key = failure_key(username, address)
    with get_redis_connection("default").pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
    return max(1, ttl) if count is not None and int(count) >= FAILURE_LIMIT else 0


def record_failure(username: str, address: str) -> int:
    """Count one failed attempt; the number of failures in a row."""
    key = failure_key(username, address)
    with get_redis_connection("default").pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, LOCKOUT_SECONDS)
        count, _ = pipe.execute()
    if count == FAILURE_LIMIT:
        log_event(
            logger,
            "admin_login_locked",
            logging.WARNING,
            username=username[:150],
            client=address,
            seconds=LOCKOUT_SECONDS,
        )
    return count


def clear_failures(username: str, address: str) -> None:
    get_redis_connection("default").delete(failure_key(username, address))


class ThrottledLoginForm(AdminAuthenticationForm):
    """The admin's login form, refusing a locked-out username and address pair."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked_out": (
            "Too many failed log-ins for this username from your address. "
            "Try again in %(minutes)d minutes."
        ),
    }
    locked_out_for = 0

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username is None or self.request is None:
            return super().clean()
        address = client_address(self.request)
        self.locked_out_for = locked_for(username, address)
        if self.locked_out_for:
            raise ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={"minutes": -(-self.locked_out_for // 60)},
            )
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if error.code == "invalid_login":
                record_failure(username, address)
            raise
        clear_failures(username, address)
        return cleaned

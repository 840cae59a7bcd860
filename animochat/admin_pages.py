"""Building blocks of admin pages that show live data instead of models: calling the
project's async code from a (sync) admin view, paginating by rank, showing values
people can read, and redirecting back safely after a form.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync, async_to_sync
from django.core.paginator import Page, Paginator
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from animochat.redis_client import close_redis

T = TypeVar("T")


def call(function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run an async selector or service from a (sync) admin view.

    Under Daphne this runs on the server's event loop, with its shared Redis client.
    Without a server loop (the Django test client) asgiref makes a loop for this one
    call; the Redis client made for that loop is closed before the loop is.
    """

    async def run() -> T:
        try:
            return await function(*args)
        finally:
            # asgiref registers the loops it made for one call here (an undocumented
            # attribute: should it vanish, the client is left open, never the server's
            # shared client closed).
            if asyncio.get_running_loop() in getattr(AsyncToSync, "loop_thread_executors", {}):
                await close_redis()

    return async_to_sync(run)()


# Pagination. ``number`` is the page asked for; past the last page shows the last one.


def paginate(rows: Sequence[Any], per_page: int, number: int) -> Page:
    """Page ``number`` of ``rows``, clamped to the pages that exist."""
    return Paginator(rows, per_page).get_page(number)


def fetch_page(number: int, per_page: int, load: Callable[[int, int], Any]) -> tuple[Any, Page]:
    """Load page ``number`` by rank (``load(offset, count)`` returns a result with a
    ``total``); a page past the end shows the last one."""
    result = load((number - 1) * per_page, per_page)
    page = Paginator(range(result.total), per_page).get_page(number)
    if page.number != number:
        result = load((page.number - 1) * per_page, per_page)
        page = Paginator(range(result.total), per_page).get_page(page.number)
    return result, page


def page_links(request: HttpRequest, page: Page) -> list[dict[str, Any]]:
    """Numbered links that keep the rest of the query string (filter, search)."""
    links = []
    for number in page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1):
        if number == page.paginator.ELLIPSIS:
            links.append({"label": number, "url": None, "current": False})
            continue
        query = request.GET.copy()
        query["page"] = str(number)
        links.append(
            {"label": number, "url": f"?{query.urlencode()}", "current": number == page.number}
        )
    return links


# Values as people read them.


def duration(seconds: float | None) -> str:
    """``"42s"``, ``"3m 05s"``, ``"2h 07m"``, ``"3d 4h"``; a dash for no value."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def window_text(seconds: int) -> str:
    """``600`` → ``"10 minutes"``, ``90`` → ``"90 seconds"``."""
    minutes, rest = divmod(seconds, 60)
    if rest or not minutes:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_ACRONYMS = {"url": "URL", "urls": "URLs", "id": "ID", "ttl": "TTL", "ip": "IP"}


def label(key: object) -> str:
    """``"registeredUrl"`` or ``"registered_url"`` → ``"Registered URL"``."""
    words = [_ACRONYMS.get(w.lower(), w.lower()) for w in _WORD.findall(str(key))] or [str(key)]
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def display_tree(value: Any) -> dict[str, Any]:
    """Any JSON-like value as a tree of mappings, sequences and text, which a template
    renders recursively."""
    if isinstance(value, dict):
        return {
            "kind": "mapping",
            "entries": [(label(k), display_tree(v)) for k, v in value.items()],
        }
    if isinstance(value, list | tuple | set):
        return {"kind": "sequence", "entries": [display_tree(v) for v in value]}
    if value is None or value == "":
        return {"kind": "text", "text": "—"}
    if isinstance(value, bool):
        return {"kind": "text", "text": "yes" if value else "no"}
    return {"kind": "text", "text": str(value)}


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The form's ``next`` page when it is on this site, else ``fallback``."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback

"""The "Matchmaking" section of the Django admin: the live system, read from Redis.

Queues, chat sessions, popular interests, discovery and maintenance have no Django
models (their data lives in Redis), so the pages are plain admin views, reading through
the apps' selectors and writing through their services. Viewing needs staff
(``AdminSite.admin_view``); acting on the live system (every POST, and the
confirmation page that leads to one) also needs ``matchmaking.manage_matchmaking``,
which superusers have: a staff account kept for watching cannot change anything.
Every list is paginated by rank in Redis, so a page costs the same whatever the size
of the queue.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, re_path
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from animochat import pools
from animochat.admin import LANDING, Dashboard
from animochat.admin_pages import (
    call,
    display_tree,
    duration,
    fetch_page,
    page_links,
    paginate,
    safe_next,
    window_text,
)
from animochat.errors import InvalidInput
from animochat.logging import log_event
from animochat.validation import parse_number
from discovery import selectors as discovery_selectors
from sessions_app import selectors as session_selectors
from sessions_app import services as session_services

from . import selectors, services
from .charts import Chart, Series, format_value, minute_label
from .charts import build as build_chart
from .models import MANAGE_PERMISSION
from .validation import MAX_INTEREST_LENGTH, normalize_interests

logger = logging.getLogger("matchmaking.admin")

APP_LABEL = "matchmaking"
OVERVIEW = LANDING  # the section's landing page
PAGE_SIZE = 50
QUEUES_PAGE_SIZE = 100
POPULAR_LIMIT = 20
REFRESH_SECONDS = 5

# Pages past the last show the last one; a number beyond this is not worth parsing.
MAX_PAGE = 10**9


def requested_page(request: HttpRequest) -> int:
    """The ``?page=`` asked for; anything but a page number shows the first page."""
    return parse_number(request.GET.get("page", ""), 1, MAX_PAGE) or 1


def can_manage(request: HttpRequest) -> bool:
    return request.user.has_perm(MANAGE_PERMISSION)


def needs_manage_permission(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """403 (nothing changed) unless the user may act on the live system."""

    @functools.wraps(view)
    def guarded(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_manage(request):
            log_event(
                logger,
                "admin_action_refused",
                logging.WARNING,
                view=view.__name__,
                operator=str(request.user),
            )
            raise PermissionDenied(f"Acting on matchmaking needs the {MANAGE_PERMISSION} right.")
        return view(self, request, *args, **kwargs)

    return guarded


class MatchmakingDashboard(Dashboard):
    """The dashboard's pages on one admin site."""

    app_label = APP_LABEL
    name = "Matchmaking"
    sections = [
        (OVERVIEW, "Overview", "Overview"),
        ("matchmaking_queues", "Queues", "Queue"),
        ("matchmaking_sessions", "Sessions", "Session"),
        ("matchmaking_popular", "Popular interests", "PopularInterest"),
        ("matchmaking_discovery", "Discovery", "Discovery"),
        ("matchmaking_maintenance", "Maintenance", "Maintenance"),
    ]

    # (path below the section, the method serving it, the URL's name)
    pages = [
        ("queues/", "queues", "matchmaking_queues"),
        ("queues/waiting/", "waiting", "matchmaking_waiting"),
        ("queues/remove/", "remove_waiting_user", "matchmaking_remove_user"),
        ("sessions/", "sessions", "matchmaking_sessions"),
        ("sessions/end/", "end_session", "matchmaking_end_session"),
        ("popular/", "popular", "matchmaking_popular"),
        ("popular/hide/", "hide_interest", "matchmaking_hide_interest"),
        ("discovery/", "discovery", "matchmaking_discovery"),
        ("maintenance/", "maintenance", "matchmaking_maintenance"),
        ("maintenance/confirm/", "maintenance_confirm", "matchmaking_maintenance_confirm"),
    ]

    def get_urls(self) -> list[URLPattern]:
        view = self.site.admin_view
        return [
            # A second "app_list" pattern: the section's landing page is the Overview.
            re_path(rf"^(?P<app_label>{APP_LABEL})/$", view(self.overview), name=OVERVIEW),
            *(
                path(f"{APP_LABEL}/{route}", view(getattr(self, method)), name=name)
                for route, method, name in self.pages
            ),
        ]

    def render(
        self,
        request: HttpRequest,
        template: str,
        title: str,
        context: dict[str, Any],
        *,
        section: str = "",
        refresh: bool = True,
    ) -> TemplateResponse:
        """An admin page; ``section`` names the page one level up, if any (URL name)."""
        request.current_app = self.site.name
        titles = {name: title for name, title, _ in self.sections}
        return TemplateResponse(
            request,
            f"admin/matchmaking/{template}",
            {
                **self.site.each_context(request),
                "title": title,
                "app_label": APP_LABEL,
                "section_title": titles.get(section, ""),
                "section_url": self.url(section) if section else "",
                "refresh_seconds": REFRESH_SECONDS if refresh else 0,
                # Action buttons are shown only to those who may use them.
                "can_manage": can_manage(request),
                # The pages add every pool up (see matchmaking/store.py): say so.
                "match_pools": pools.pools(),
                **context,
            },
        )

    # Overview

    def overview(self, request: HttpRequest, app_label: str = APP_LABEL) -> TemplateResponse:
        """The last hour per minute: matches, users waiting, time to match, Redis errors."""
        hour = call(selectors.last_hour)
        rows, minutes = hour.minutes, [row.minute for row in hour.minutes]
        chart_list = [
            Chart(
                "mm-chart-matches",
                "Matches per minute",
                "bars",
                [Series("matches", "matches", [row.matches for row in rows])],
                minutes,
            ),
            Chart(
                "mm-chart-waiting",
                "Users waiting",
                "lines",
                [Series("waiting", "users waiting", [row.waiting for row in rows])],
                minutes,
            ),
            Chart(
                "mm-chart-time",
                "Time to match",
                "lines",
                [
                    Series("p50", "p50", [row.p50_seconds for row in rows], unit="s"),
                    Series("p95", "p95", [row.p95_seconds for row in rows], unit="s"),
                ],
                minutes,
            ),
            Chart(
                "mm-chart-errors",
                "Redis errors per minute",
                "bars",
                [Series("redis_errors", "Redis errors", [row.redis_errors for row in rows])],
                minutes,
            ),
        ]

        def seconds(value: float | None) -> str:
            return "—" if value is None else format_value(value, "s")

        return self.render(
            request,
            "overview.html",
            "Overview",
            {
                "hour": hour,
                "p50": seconds(hour.p50_seconds),
                "p95": seconds(hour.p95_seconds),
                "charts": [build_chart(chart) for chart in chart_list],
                "first_minute": minute_label(minutes[0]),
                "last_minute": minute_label(minutes[-1]),
            },
        )

    # Queues

    def queues(self, request: HttpRequest) -> TemplateResponse:
        everyone, queues = call(selectors.queue_summaries)
        page = paginate(queues, QUEUES_PAGE_SIZE, requested_page(request))
        rows = [
            {
                "interest": queue.interest,
                "waiting": queue.waiting,
                "oldest_wait": duration(queue.oldest_wait_seconds),
            }
            for queue in page.object_list
        ]
        return self.render(
            request,
            "queues.html",
            "Queues",
            {
                "everyone": everyone,
                "everyone_oldest_wait": duration(everyone.oldest_wait_seconds),
                "interest_count": len(queues),
                "rows": rows,
                "page": page,
                "page_links": page_links(request, page),
            },
        )

    def waiting(self, request: HttpRequest) -> TemplateResponse:
        interest = request.GET.get("interest", "").strip().upper() or None
        user_query = request.GET.get("user", "")
        found = None
        if user_query:
            user = call(selectors.find_waiting_user, user_query)
            found = [self._waiting_row(user)] if user else []
        result, page = fetch_page(
            requested_page(request),
            PAGE_SIZE,
            lambda offset, count: call(selectors.waiting_users, interest, offset, count),
        )
        return self.render(
            request,
            "waiting.html",
            f"Waiting for {interest}" if interest else "Every waiting user",
            {
                "interest": interest or "",
                # Reversed once, not once per row: a page has fifty rows.
                "waiting_url": self.url("matchmaking_waiting"),
                "remove_url": self.url("matchmaking_remove_user"),
                "user_query": user_query,
                "found": found,
                "total": result.total,
                "rows": [self._waiting_row(user) for user in result.users],
                "page": page,
                "page_links": page_links(request, page),
            },
            section="matchmaking_queues",
        )

    @staticmethod
    def _waiting_row(user: selectors.WaitingUser) -> dict[str, Any]:
        return {
            "user_id": user.user_id,
            "interests": user.interests,
            "wait": duration(user.wait_seconds),
            "lease_alive": user.lease_alive,
        }

    @method_decorator(require_POST)
    @needs_manage_permission
    def remove_waiting_user(self, request: HttpRequest) -> HttpResponse:
        user_id = request.POST.get("user_id", "")
        if not user_id:
            messages.error(request, "No user id was given.")
        elif call(services.cancel_matchmaking, user_id):
            log_event(logger, "admin_remove_waiting_user", user=user_id, operator=str(request.user))
            messages.success(request, f"Removed {user_id} from every queue.")
        else:
            messages.warning(request, f"User {user_id} was not waiting (already matched or gone).")
        return HttpResponseRedirect(safe_next(request, self.url("matchmaking_waiting")))

    # Sessions

    def sessions(self, request: HttpRequest) -> TemplateResponse:
        """Every active session, newest first, or those matching a user or chat id."""
        query = request.GET.get("q", "").strip()
        page = None
        if query:
            found = call(session_selectors.find_sessions, query)
            total = len(found)
        else:
            result, page = fetch_page(
                requested_page(request),
                PAGE_SIZE,
                lambda offset, count: call(session_selectors.list_active_sessions, offset, count),
            )
            found, total = result.sessions, result.total
        rows = [
            {
                "chat_id": session.chat_id,
                "participants": session.participants,
                "server_url": session.server_url,
                "interest": session.interest,
                "age": duration(session.age_seconds),
            }
            for session in found
        ]
        return self.render(
            request,
            "sessions.html",
            "Sessions",
            {
                "query": query,
                "total": total,
                "rows": rows,
                "page": page,
                "page_links": page_links(request, page) if page else [],
            },
        )

    @method_decorator(require_POST)
    @needs_manage_permission
    def end_session(self, request: HttpRequest) -> HttpResponse:
        chat_id = request.POST.get("chat_id", "")
        participant = request.POST.get("user_id", "")
        if not call(session_services.end_session_through, participant, chat_id):
            messages.warning(request, f"Session {chat_id} had already ended.")
        else:
            log_event(logger, "admin_end_session", chat_id=chat_id, operator=str(request.user))
            messages.success(request, f"Ended session {chat_id}.")
        return HttpResponseRedirect(safe_next(request, self.url("matchmaking_sessions")))

    # Popular interests, discovery

    def popular(self, request: HttpRequest) -> TemplateResponse:
        # Read afresh (the API's cache may be 2 s old): the operator sees a hide at once.
        popularity = call(selectors.popularity, 0)
        ranking = popularity.ranking[:POPULAR_LIMIT]
        top = max((count for _, count in ranking), default=0) or 1
        bars = [
            {"interest": interest, "count": count, "percent": f"{100 * count / top:.1f}"}
            for interest, count in ranking  # already most popular first
        ]
        hidden = [
            {"interest": interest, "count": popularity.counts.get(interest, 0)}
            for interest in sorted(popularity.hidden)
        ]
        return self.render(
            request,
            "popular.html",
            "Popular interests",
            {
                "bars": bars,
                "hidden": hidden,
                "hide_url": self.url("matchmaking_hide_interest"),
                "max_length": MAX_INTEREST_LENGTH,
                "limit": POPULAR_LIMIT,
                "window": window_text(settings.POPULAR_WINDOW_SECONDS),
            },
        )

    @method_decorator(require_POST)
    @needs_manage_permission
    def hide_interest(self, request: HttpRequest) -> HttpResponse:
        """Hide an interest from popular interests on every instance, or show it again."""
        hide = request.POST.get("action", "hide") != "show"
        raw = request.POST.get("interest", "")
        try:
            interests = normalize_interests([raw]) if raw.strip() else []
        except InvalidInput as error:
            messages.error(request, error.message)
            interests = None
        if interests == []:
            messages.error(request, "No interest was given.")
        elif interests:
            [interest] = interests
            call(services.hide_popular_interest, interest, hide)
            log_event(
                logger,
                "admin_hide_interest" if hide else "admin_show_interest",
                interest=interest,
                operator=str(request.user),
            )
            if hide:
                messages.success(request, f"{interest} is hidden from popular interests.")
            else:
                messages.success(request, f"{interest} may appear among popular interests again.")
        return HttpResponseRedirect(self.url("matchmaking_popular"))

    def discovery(self, request: HttpRequest) -> TemplateResponse:
        status = call(discovery_selectors.discovery_status)
        return self.render(request, "discovery.html", "Discovery", {"status": display_tree(status)})

    # Maintenance

    def maintenance(self, request: HttpRequest) -> TemplateResponse:
        return self.render(request, "maintenance.html", "Maintenance", self._maintenance_state())

    @needs_manage_permission
    def maintenance_confirm(self, request: HttpRequest) -> HttpResponse:
        """GET asks for confirmation; POST switches maintenance for every instance."""
        turn = request.POST.get("turn") if request.method == "POST" else request.GET.get("turn")
        if turn not in ("on", "off"):
            return HttpResponseRedirect(self.url("matchmaking_maintenance"))
        if request.method == "POST":
            call(services.set_maintenance, turn == "on")
            log_event(logger, "admin_maintenance", turn=turn, operator=str(request.user))
            messages.success(request, f"Maintenance is now {turn.upper()} for every instance.")
            return HttpResponseRedirect(self.url("matchmaking_maintenance"))
        return self.render(
            request,
            "maintenance_confirm.html",
            f"Turn maintenance {turn}?",
            {"turn": turn, **self._maintenance_state()},
            section="matchmaking_maintenance",
            refresh=False,
        )

    def _maintenance_state(self) -> dict[str, Any]:
        overview = call(selectors.queue_overview)
        return {
            "maintenance": call(selectors.is_maintenance),
            "waiting": overview.users_in_queue,
            "message": services.MAINTENANCE_MESSAGE,
        }

"""The endpoints of matchmaking: cancel, popular interests, status, maintenance, demo."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from animochat.auth import NotAuthorized, auth_enabled, authorize_user, verified_subject
from animochat.errors import InvalidInput
from animochat.http import (
    allow_methods,
    client_address,
    json_message,
    request_fields,
    request_token,
)
from animochat.ratelimit import check_rate_limit, check_read_rate_limit
from animochat.validation import parse_number, validate_user_id

from . import events, selectors, services
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import render as render_metrics
from .validation import normalize_interests

ACTIVE_MESSAGE = "The matchmaking service is operational."
POPULAR_DEFAULT_LIMIT = 8
POPULAR_MAX_LIMIT = 50


@allow_methods("POST")
async def cancel_matchmaking(request: HttpRequest) -> JsonResponse:
    await check_rate_limit("post", client_address(request))
    fields = request_fields(request)
    user_id = validate_user_id(fields.get("userId"))
    await authorize_user(user_id, request_token(request))
    # Queues are looked up server-side; a listed `interests` is only checked for shape.
    normalize_interests(fields.get("interests"))
    await services.cancel_matchmaking(user_id)
    return json_message("Matchmaking cancelled successfully.")


@allow_methods("POST")
async def stream_ticket(request: HttpRequest) -> JsonResponse:
    """A one-use ticket for ``/matchmaking?ticket=…``, so no token goes in a URL."""
    await check_rate_limit("post", client_address(request))
    fields = request_fields(request)
    if auth_enabled():
        user_id = validate_user_id(await verified_subject(request_token(request)))
        if fields.get("userId") not in (None, user_id):
            raise NotAuthorized(403, "FORBIDDEN", "The token does not belong to this userId.")
    else:
        user_id = validate_user_id(fields.get("userId"))
    ticket = await services.issue_stream_ticket(user_id)
    return JsonResponse(
        {"ticket": ticket, "userId": user_id, "expiresInSeconds": services.TICKET_SECONDS}
    )


@allow_methods("GET")
async def popular_interests(request: HttpRequest) -> JsonResponse:
    await check_read_rate_limit(client_address(request))
    raw = request.GET.get("limit", "")
    limit = parse_number(raw, 1, POPULAR_MAX_LIMIT) if raw else POPULAR_DEFAULT_LIMIT
    if limit is None:
        raise InvalidInput(
            "INVALID_LIMIT", f"limit must be a whole number from 1 to {POPULAR_MAX_LIMIT}."
        )
    if await selectors.is_maintenance():
        return JsonResponse(events.maintenance(), status=503)
    return JsonResponse(await selectors.popular_interests(limit), safe=False)


@allow_methods("GET")
async def maintenance(request: HttpRequest) -> JsonResponse:
    if await selectors.is_maintenance():
        return JsonResponse(events.maintenance(), status=503)
    return JsonResponse({"state": "ACTIVE", "message": ACTIVE_MESSAGE})


@allow_methods("GET")
async def metrics(request: HttpRequest) -> HttpResponse:
    await check_read_rate_limit(client_address(request))
    body = render_metrics(**await selectors.metrics_values())
    return HttpResponse(body, content_type=METRICS_CONTENT_TYPE)


@allow_methods("GET")
async def status(request: HttpRequest) -> JsonResponse:
    await check_read_rate_limit(client_address(request))
    report = await selectors.status_report()
    return JsonResponse(report, status=200 if report["redis"]["commands"] == "ready" else 503)


@allow_methods("GET")
async def demo(request: HttpRequest) -> HttpResponse:
    """The live demo page (``DEMO_PAGE``): the client kit in a plain template."""
    return HttpResponse(render_to_string("matchmaking/demo.html"))

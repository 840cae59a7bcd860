"""Small HTTP helpers shared by the Django views and the raw SSE consumer."""

from __future__ import annotations

import functools
import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse

from animochat.auth import bearer_token
from animochat.clientaddr import UNKNOWN
from animochat.errors import ApiError, InvalidInput

CORS_ALLOW_METHODS = "GET, POST, OPTIONS"
CORS_ALLOW_HEADERS = "Content-Type, Authorization, Last-Event-ID, Cache-Control"
CORS_MAX_AGE = "86400"


def cors_headers(origin: str | None) -> dict[str, str]:
    """CORS response headers for a request from ``origin`` (empty when not allowed)."""
    allowed = settings.CORS_ALLOWED_ORIGINS
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin.rstrip("/") in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {}


def preflight_headers(origin: str | None) -> dict[str, str]:
    headers = cors_headers(origin)
    if headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": CORS_MAX_AGE,
            }
        )
    return headers


def json_message(message: str, status: int = 200, **extra: Any) -> JsonResponse:
    """``{"message": …}`` with the given status: the API's one info shape."""
    return JsonResponse({"message": message, **extra}, status=status)


def json_error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    """``{"code": …, "message": …}``: the API's one error shape (codes: animochat.errors)."""
    return JsonResponse({"code": code, "message": message, **extra}, status=status)


def error_response(error: ApiError) -> JsonResponse:
    """The JSON answer to an :class:`~animochat.errors.ApiError`, with its headers."""
    response = json_error(error.status, error.code, error.message)
    for name, value in error.headers.items():
        response[name] = value
    return response


def allow_methods(*methods: str):
    """Mark an async view as a JSON API endpoint answering only ``methods``.

    Like ``require_http_methods``, but the 405 carries a JSON message. API endpoints
    take no cookies, so they are exempt from CSRF checks. A query parameter given twice
    is refused: which userId would be meant? (The stream refuses it too.)
    """

    def decorator(view):
        @functools.wraps(view)
        async def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                allowed = ", ".join(methods)
                return error_response(
                    ApiError(
                        405,
                        "METHOD_NOT_ALLOWED",
                        f"Method {request.method} is not allowed here; use {allowed}.",
                        {"Allow": allowed},
                    )
                )
            for name, values in request.GET.lists():
                if len(values) > 1:
                    return error_response(
                        InvalidInput("DUPLICATE_PARAMETER", f"Give the {name} parameter only once.")
                    )
            return await view(request, *args, **kwargs)

        wrapper.allowed_methods = methods  # read by the OpenAPI consistency test
        wrapper.csrf_exempt = True
        return wrapper

    return decorator


def client_address(request) -> str:
    """The caller's address, as :mod:`animochat.clientaddr` decided it for the scope."""
    return request.META.get("REMOTE_ADDR") or UNKNOWN


def request_token(request) -> str:
    """The bearer token of a JSON endpoint: from the header only, never the URL, which
    proxies, browsers and access logs keep (only the stream takes ``?token=``)."""
    return bearer_token(request.headers.get("Authorization"))


class RepeatedKey(ValueError):
    """A JSON object names the same key twice."""


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise RepeatedKey(key)
        seen.add(key)
    return dict(pairs)


def request_fields(request) -> dict[str, Any]:
    """Fields of a POST: the JSON object or form body, over the query string."""
    fields: dict[str, Any] = {key: request.GET.get(key) for key in request.GET}
    try:
        body = request.body
    except RequestDataTooBig:
        raise InvalidInput("BODY_TOO_LARGE", "The request body is too large.", 413) from None
    if not body:
        return fields
    content_type = request.content_type or ""
    is_form = content_type == "application/x-www-form-urlencoded" or content_type.startswith(
        "multipart/"
    )
    # Some clients label a JSON body as a form (curl -d); a leading brace decides.
    if is_form and not body.lstrip().startswith(b"{"):
        data = {}
        for key, values in request.POST.lists():
            if len(values) > 1:
                raise InvalidInput("DUPLICATE_FIELD", f"Give the {key} field only once.")
            data[key] = values[0]
    else:
        try:
            data = json.loads(body, object_pairs_hook=_object_without_repeated_keys)
        except RepeatedKey as error:
            raise InvalidInput("DUPLICATE_FIELD", f"Give the {error} field only once.") from None
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("INVALID_JSON", "The request body is not valid JSON.") from None
        except RecursionError:  # nested deeper than the parser's stack ("[[[[…")
            raise InvalidInput("INVALID_JSON", "The JSON body is nested too deeply.") from None
        if not isinstance(data, dict):
            raise InvalidInput(
                "INVALID_BODY", 'The JSON body must be an object, e.g. {"userId": "…"}.'
            )
    # The web client repeats userId in the query string: the same value twice is fine,
    # two different ones are ambiguous.
    for key, value in data.items():
        if key in fields and fields[key] != value:
            raise InvalidInput(
                "CONFLICTING_FIELD", f"{key} differs between the query string and the body."
            )
    fields.update(data)
    return fields

"""Middleware of the JSON API: CORS, and JSON answers for expected failures."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from redis.exceptions import RedisError

from animochat.errors import ApiError
from animochat.http import cors_headers, error_response, preflight_headers
from animochat.logging import log_event
from animochat.redis_errors import record_redis_error

logger = logging.getLogger("animochat.http")


SERVICE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable (storage unreachable)."


class CorsMiddleware:
    """Answers preflight ``OPTIONS`` requests and adds CORS headers to responses."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable]):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        if self._is_preflight(request):
            return self._preflight(request)
        return self._decorate(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if self._is_preflight(request):
            return self._preflight(request)
        return self._decorate(request, await self.get_response(request))

    @staticmethod
    def _is_preflight(request: HttpRequest) -> bool:
        return request.method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META

    @staticmethod
    def _preflight(request: HttpRequest) -> HttpResponse:
        response = HttpResponse(status=204)
        for name, value in preflight_headers(request.headers.get("Origin")).items():
            response[name] = value
        return response

    @staticmethod
    def _decorate(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not request.path.startswith(("/admin", "/static")):
            for name, value in cors_headers(request.headers.get("Origin")).items():
                response[name] = value
        return response


class ApiErrorMiddleware(MiddlewareMixin):
    """Turns the API's expected failures into JSON answers instead of 500 pages.

    Client mistakes become 4xx with ``{"code": …, "message": …}``; an unreachable
    Redis becomes 503, so the service answers clearly while Redis is down and recovers
    by itself.
    """

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, ApiError):
            return error_response(exception)
        if isinstance(exception, RedisError | ConnectionError | TimeoutError):
            log_event(logger, "redis_unavailable", logging.WARNING, path=request.path)
            record_redis_error()
            response = error_response(
                ApiError(503, "SERVICE_UNAVAILABLE", SERVICE_UNAVAILABLE_MESSAGE)
            )
            # Logged just above: Django's "Service Unavailable" line would say it twice.
            response._has_been_logged = True
            return response
        return None

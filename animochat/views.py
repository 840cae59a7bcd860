"""JSON error pages, so API clients never receive Django's HTML pages."""

from django.http import HttpRequest, JsonResponse

from animochat.http import json_message


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_message("Bad request.", 400)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_message(f"No endpoint at {request.path}.", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    return json_message("Internal server error.", 500)

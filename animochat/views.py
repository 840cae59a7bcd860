"""Project-level views: the OpenAPI document and JSON error pages (never HTML)."""

from django.http import HttpRequest, JsonResponse

from animochat.http import allow_methods, json_message
from animochat.openapi import openapi_document


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_message("Bad request.", 400)


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_message(f"No endpoint at {request.path}.", 404)


def server_error(request: HttpRequest) -> JsonResponse:
    return json_message("Internal server error.", 500)


@allow_methods("GET")
async def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())

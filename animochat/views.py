"""Project-level views: the OpenAPI document, its page for people, and JSON error pages."""

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from animochat.http import allow_methods, json_error
from animochat.openapi import openapi_document


def bad_request(request: HttpRequest, exception: Exception) -> JsonResponse:
    if isinstance(exception, DisallowedHost):
        return json_error(400, "DISALLOWED_HOST", "This host name is not served here.")
    return json_error(400, "BAD_REQUEST", "Bad request.")


def permission_denied(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(403, "FORBIDDEN", "Permission denied.")


def not_found(request: HttpRequest, exception: Exception) -> JsonResponse:
    return json_error(404, "NOT_FOUND", f"No endpoint at {request.path}.")


def server_error(request: HttpRequest) -> JsonResponse:
    return json_error(500, "INTERNAL_ERROR", "Internal server error.")


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: only cookie-authenticated forms (the admin) are checked."""
    return json_error(403, "CSRF_FAILED", "The form's CSRF check failed; reload the page.")


@allow_methods("GET")
async def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())


# Redoc's build loads a logo from its vendor's CDN; this page may load nothing from
# another host (the logo then hides itself). Redoc injects its styles and runs its
# search index in a blob: worker.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@allow_methods("GET")
async def api_docs(request: HttpRequest) -> HttpResponse:
    """``/openapi.json`` rendered by Redoc, served from this app's static files."""
    response = HttpResponse(render_to_string("animochat/docs.html"))
    response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
    return response

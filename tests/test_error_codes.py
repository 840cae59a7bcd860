"""Every error answer carries a stable ``code``, and every code is documented."""

from __future__ import annotations

import json
import re

import requests
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from animochat import urls, views
from animochat.auth import NotAuthorized
from animochat.errors import ERROR_CODES, ApiError, InvalidInput
from animochat.http import request_fields
from animochat.middleware import ApiErrorMiddleware
from animochat.openapi import openapi_document
from animochat.ratelimit import RateLimited
from tests.support.servers import BASE_DIR


def readme_codes() -> dict[str, str]:
    """The README's error table: code -> its Status column."""
    section = (BASE_DIR / "README.md").read_text().split("### Error codes", 1)[1]
    table = section.split("\n\n", 2)[1]
    return dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", table, re.M))


def test_readme_lists_every_code_with_its_statuses():
    documented = readme_codes()
    assert set(documented) == set(ERROR_CODES)
    for code, (statuses, _) in ERROR_CODES.items():
        assert documented[code].strip() == ", ".join(map(str, statuses)), code


def test_openapi_error_bodies_and_events_name_the_codes():
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["Error"]["required"] == ["code", "message"]
    for schema in (schemas["Error"], schemas["StreamEvent"]):
        assert schema["properties"]["code"]["enum"] == sorted(ERROR_CODES)


def test_every_api_error_is_answered_by_the_middleware_with_its_status_and_headers():
    request = RequestFactory().get("/anything")
    errors = [
        (InvalidInput("INVALID_LIMIT", "Bad limit."), 400, {}),
        (InvalidInput("QUERY_TOO_LONG", "Too long.", 414), 414, {}),
        (NotAuthorized(401, "UNAUTHORIZED", "No token."), 401, {"WWW-Authenticate": "Bearer"}),
        (NotAuthorized(403, "FORBIDDEN", "Not yours."), 403, {}),
        (RateLimited(7), 429, {"Retry-After": "7"}),
    ]
    for error, status, headers in errors:
        assert isinstance(error, ApiError) and error.code in ERROR_CODES
        response = ApiErrorMiddleware(lambda request: None).process_exception(request, error)
        assert response.status_code == status
        assert json.loads(response.content) == {"code": error.code, "message": error.message}
        for name, value in headers.items():
            assert response[name] == value


def test_a_malformed_body_is_invalid_input():
    request = RequestFactory().post("/x", data=b"[1]", content_type="application/json")
    try:
        request_fields(request)
    except InvalidInput as error:
        assert (error.status, error.code) == (400, "INVALID_BODY")
    else:
        raise AssertionError("a JSON array body was accepted")


def test_django_handlers_answer_with_codes():
    request = RequestFactory().get("/anything")
    assert urls.handler500 is views.server_error
    response = views.server_error(request)
    assert response.status_code == 500 and b'"code": "INTERNAL_ERROR"' in response.content
    assert urls.handler403 is views.permission_denied
    response = views.permission_denied(request, PermissionDenied())
    assert response.status_code == 403 and b'"code": "FORBIDDEN"' in response.content


def test_csrf_failure_is_a_json_error(daphne):
    """The admin's forms are the only CSRF-checked ones (the API takes no cookies)."""
    response = requests.post(
        daphne.url + "/admin/login/", data={"username": "x", "password": "y"}, timeout=5
    )
    assert response.status_code == 403
    assert response.json() == {
        "code": "CSRF_FAILED",
        "message": "The form's CSRF check failed; reload the page.",
    }

"""Every error answer carries a stable ``code``, and every code is documented."""

from __future__ import annotations

import re

import requests
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory

from animochat import urls, views
from animochat.errors import ERROR_CODES
from animochat.openapi import openapi_document
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

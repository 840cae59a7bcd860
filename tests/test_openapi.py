"""/openapi.json describes exactly the routes and methods the service has."""

from __future__ import annotations

import re

import requests
from django.urls import URLPattern, URLResolver

from animochat import urls
from animochat.asgi import router as asgi_router
from animochat.openapi import openapi_document


def django_routes(patterns, prefix: str = "") -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if not route.startswith("admin/"):
                routes.update(django_routes(pattern.url_patterns, route))
        elif isinstance(pattern, URLPattern):
            methods = getattr(pattern.callback, "allowed_methods", None)
            assert methods, f"/{route} has no allow_methods: its methods are undocumented"
            openapi_path = "/" + re.sub(
                r"<(?:\w+:)?(\w+)>", lambda m: "{" + camel(m[1]) + "}", route
            )
            routes[openapi_path] = {m.lower() for m in methods}
    return routes


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def asgi_routes() -> dict[str, set[str]]:
    """Routes served outside Django (the raw SSE consumer, the probes)."""
    router = asgi_router.application_mapping["http"]
    return {path: {"get"} for path in router.routes}


def test_document_matches_url_configuration():
    documented = {path: set(ops) for path, ops in openapi_document()["paths"].items()}
    served = {**django_routes(urls.urlpatterns), **asgi_routes()}
    assert documented == served


def test_every_operation_documents_its_responses():
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert "200" in operation["responses"], (path, method)
            assert "405" in operation["responses"], (path, method)


def test_served_live(daphne):
    response = requests.get(daphne.url + "/openapi.json", timeout=5)
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
    assert response.json() == openapi_document()

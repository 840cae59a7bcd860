"""The project's admin site: a throttled log-in, and sections without models.

``animochat.apps.AnimochatAdminConfig`` makes :class:`AnimochatAdminSite` the default
``admin.site``. Besides models, an app registers a :class:`Dashboard` with it: pages
of the app's own, served under ``/admin/<app_label>/`` and listed on the admin index
and in its menu like an app's models (the live system's data lives in Redis, not in
models the admin could list).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, reverse

from animochat.login_throttle import ThrottledLoginForm

# A dashboard's landing page is served under the admin's own name for an app's index,
# so the admin's breadcrumbs and menu link it.
LANDING = "app_list"


class Dashboard:
    """An app's section of the admin: its pages, and its entry in the site's app list.

    Subclasses set ``app_label``, ``name`` and ``sections`` and serve the URLs of
    :meth:`get_urls` (the landing page's pattern named :data:`LANDING`).
    """

    app_label: str
    name: str
    # (URL name, title, object name used by the admin's CSS classes), in menu order.
    sections: list[tuple[str, str, str]]

    def __init__(self, site: admin.AdminSite) -> None:
        self.site = site

    def get_urls(self) -> list[URLPattern]:
        raise NotImplementedError

    def url(self, name: str, **kwargs: str) -> str:
        if name == LANDING:
            kwargs = {"app_label": self.app_label}
        return reverse(f"admin:{name}", kwargs=kwargs or None, current_app=self.site.name)

    def app_entry(self) -> dict[str, Any]:
        """The section as ``AdminSite.get_app_list`` describes an app (view only)."""
        return {
            "name": self.name,
            "app_label": self.app_label,
            "app_url": self.url(LANDING),
            "has_module_perms": True,
            "models": [
                {
                    "model": None,
                    "name": title,
                    "object_name": object_name,
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                    "admin_url": self.url(name),
                    "add_url": None,
                    "view_only": True,
                }
                for name, title, object_name in self.sections
            ],
        }


class AnimochatAdminSite(admin.AdminSite):
    """Django's admin site with the log-in throttled and apps' dashboards added."""

    login_form = ThrottledLoginForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._dashboards: dict[str, Dashboard] = {}

    def register_dashboard(self, dashboard_class: type[Dashboard]) -> None:
        """Serve a dashboard of this site and list it among the apps (staff only)."""
        dashboard = dashboard_class(self)
        self._dashboards[dashboard.app_label] = dashboard

    def get_urls(self) -> list[Any]:
        dashboard_urls = [url for each in self._dashboards.values() for url in each.get_urls()]
        # Before the site's own URLs, which end with a catch-all.
        return dashboard_urls + super().get_urls()

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        dashboard = self._dashboards.get(app_label) if app_label else None
        if not self.has_permission(request):
            return [] if dashboard else super().get_app_list(request, app_label)
        if dashboard:
            return [dashboard.app_entry()]
        apps = super().get_app_list(request, app_label)
        if app_label is None:
            entries = [each.app_entry() for each in self._dashboards.values()]
            apps = sorted([*apps, *entries], key=lambda app: app["name"].lower())
        return apps

    def login(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A refused attempt (see animochat/login_throttle.py) is answered 429 with
        ``Retry-After``."""
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        wait = getattr(form, "locked_out_for", 0)
        if wait:
            response.status_code = 429
            response["Retry-After"] = str(wait)
        return response

"""Adds the "Matchmaking" dashboard to the default admin site.

The dashboard has no models to register (its data lives in Redis), so its pages and
its section on the admin index are added to the site's URLs and app list instead.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest

from .admin_views import APP_LABEL, MatchmakingDashboard


def attach(site: AdminSite, dashboard: MatchmakingDashboard) -> None:
    """Serve ``dashboard`` from ``site`` and list it among the site's apps (staff only)."""
    site_urls, site_app_list = site.get_urls, site.get_app_list

    def get_urls() -> list[Any]:
        # Before the site's own URLs, which end with a catch-all.
        return dashboard.get_urls() + site_urls()

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        if not site.has_permission(request):
            return [] if app_label == APP_LABEL else site_app_list(request, app_label)
        if app_label == APP_LABEL:
            return [dashboard.app_entry()]
        apps = site_app_list(request, app_label)
        if app_label is None:
            apps = sorted([*apps, dashboard.app_entry()], key=lambda app: app["name"].lower())
        return apps

    site.get_urls = get_urls
    site.get_app_list = get_app_list


attach(admin.site, MatchmakingDashboard(admin.site))

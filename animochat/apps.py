"""The project package as a Django app, and how the apps above it plug in.

The project package is the bottom layer: it imports no app. Where it needs what the
apps provide (the stream's route, the API document), it finds their modules by name
through the app registry, as Django finds each app's ``admin.py``.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.utils.module_loading import module_has_submodule


class AnimochatConfig(AppConfig):
    """Project-wide pieces: the run command and shared Redis and logging helpers."""

    name = "animochat"
    verbose_name = "AnimoChat"


def app_modules(name: str) -> list[ModuleType]:
    """The module ``<app>.<name>`` of every installed app above the project package
    that has one, in ``INSTALLED_APPS`` order: ``openapi`` (the endpoints an app
    documents), ``asgi_routes`` (``routes``: raw ASGI applications by exact path,
    served before Django) and ``store`` (an app's Lua scripts, which the readiness
    probe loads)."""
    return [
        import_module(f"{config.name}.{name}")
        for config in apps.get_app_configs()
        if config.name != AnimochatConfig.name and module_has_submodule(config.module, name)
    ]


class AnimochatAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the project's site as ``admin.site``."""

    default = False  # installed by this name in INSTALLED_APPS, not as "animochat"
    default_site = "animochat.admin.AnimochatAdminSite"

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    """Chat sessions created by the matcher: look-up and disconnect."""

    name = "sessions_app"
    verbose_name = "Chat sessions"

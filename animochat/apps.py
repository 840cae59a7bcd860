from django.apps import AppConfig


class AnimochatConfig(AppConfig):
    """Project-wide pieces: the run command and shared Redis and logging helpers."""

    name = "animochat"
    verbose_name = "AnimoChat"

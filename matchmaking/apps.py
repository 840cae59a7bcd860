from django.apps import AppConfig


class MatchmakingConfig(AppConfig):
    """Queues, the matcher, the SSE stream, popularity, status and maintenance."""

    name = "matchmaking"
    verbose_name = "Matchmaking"

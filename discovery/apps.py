from django.apps import AppConfig


class DiscoveryConfig(AppConfig):
    """Registration with AnimoChat Service Discovery and the chat-server list."""

    name = "discovery"
    verbose_name = "Service discovery"

"""Raw ASGI routes of matchmaking, served before Django (see ``animochat/asgi.py``).

The stream is not a Django view: see :mod:`matchmaking.consumers` for why.
"""

from django.urls import path

from .consumers import MatchmakingStreamConsumer

urlpatterns = [path("matchmaking", MatchmakingStreamConsumer.as_asgi())]

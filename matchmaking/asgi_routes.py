"""Raw ASGI routes of matchmaking, served before Django (see ``animochat/asgi.py``).

The stream is not a Django view: see :mod:`matchmaking.consumers` for why.
"""

from .consumers import MatchmakingStreamConsumer

# Exact paths (see animochat.routing) and their ASGI applications.
routes = {"/matchmaking": MatchmakingStreamConsumer.as_asgi()}

"""Which application answers a request: the apps' raw ASGI routes by exact path, then
Django.

A dict lookup on the path, not Channels' ``URLRouter``: the raw routes (the stream, the
probes) have fixed paths, and the router's pattern matching and scope copy were about
3 % of a stream's CPU under load (``bench/README.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ExactPathRouter:
    """Sends a request whose path (below the scope's ``root_path``) is a key of
    ``routes``, such as ``"/matchmaking"``, to that application; any other to
    ``default``."""

    def __init__(self, routes: Mapping[str, Any], default: Any) -> None:
        self.routes = dict(routes)
        self.default = default

    async def __call__(self, scope, receive, send):
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return await self.routes.get(path, self.default)(scope, receive, send)

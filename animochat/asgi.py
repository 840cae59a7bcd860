"""ASGI entry point: ``daphne animochat.asgi:application``.

The apps' raw ASGI routes (``routes`` in ``<app>/asgi_routes.py``: ``/matchmaking``,
the SSE stream) and the probes (``/healthz``, ``/readyz``) to :mod:`animochat.health`
are served before Django, by exact path (:mod:`animochat.routing`); everything else
goes to Django. Around all of them,
:class:`~animochat.clientaddr.TrustedClientMiddleware` decides the client's address and
scheme once (``TRUSTED_PROXY_HOPS``), so no Daphne flag is needed for it.
"""

import os

from django.core.asgi import get_asgi_application

from animochat import access_log, auth, twisted_limits

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animochat.settings")
django_application = get_asgi_application()
# Once per server process: a server without auth lets anyone act as anyone.
auth.warn_if_open()
# Daphne parses HTTP with Twisted: give its refusals of oversized heads clear 4xx answers.
twisted_limits.install()
access_log.silence_twisted_access_log()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from animochat import health  # noqa: E402
from animochat.access_log import AccessLogMiddleware  # noqa: E402
from animochat.apps import app_modules  # noqa: E402
from animochat.clientaddr import TrustedClientMiddleware  # noqa: E402
from animochat.routing import ExactPathRouter  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": ExactPathRouter(
            {
                **{
                    path: app
                    for module in app_modules("asgi_routes")
                    for path, app in module.routes.items()
                },
                "/healthz": health.healthz,
                "/readyz": health.readyz,
            },
            default=django_application,
        ),
    }
)
# Inside the client decision, so the access log names the client it decided.
application = TrustedClientMiddleware(
    AccessLogMiddleware(router) if settings.ACCESS_LOG else router, settings.TRUSTED_PROXY_HOPS
)

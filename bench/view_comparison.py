"""COMPARISON ONLY (not product code): ``GET /matchmaking`` as a Django async view.

The same steps as ``matchmaking.consumers.MatchmakingStreamConsumer`` (a channel of the
process's inbox as the lease token, replace an older stream, one matcher call, wait for
the notification with keepalives, give the place back on the way out), written the
ordinary Django way:
an async view returning ``StreamingHttpResponse`` through the full middleware stack.
``bench.stream saturation --app view`` measures it against the raw ASGI consumer.
Validation errors and maintenance are left out: the benchmark never triggers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animochat.settings")

from django.core.asgi import get_asgi_application

django_application = get_asgi_application()

from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

from animochat.sse import KEEPALIVE_COMMENT, encode_event  # noqa: E402
from animochat.validation import validate_user_id  # noqa: E402
from matchmaking import events, notifications, services  # noqa: E402
from matchmaking.validation import normalize_interests  # noqa: E402


async def matchmaking_view(request):
    user_id = validate_user_id(request.GET.get("userId"))
    interests = normalize_interests(request.GET.get("interest", ""))
    layer = get_channel_layer()
    token = channel = await layer.new_channel()
    await layer.group_add(notifications.BROADCAST_GROUP, channel)
    result = await services.enqueue_or_match(user_id, interests, token)
    if result.replaced_token:
        await notifications.send(result.replaced_token, notifications.STREAM_REPLACED)

    async def stream():
        queued = result.state == services.WAITING_STATE
        try:
            if result.state == services.MATCHED_STATE:
                await services.complete_match(result, user_id, token)
                yield encode_event(events.matched(result, result.partner))
                return
            yield encode_event({"state": result.state})
            while queued:
                try:
                    message = await asyncio.wait_for(
                        layer.receive(channel), settings.KEEPALIVE_SECONDS
                    )
                except TimeoutError:
                    await services.renew_lease(user_id, token)
                    yield KEEPALIVE_COMMENT
                    continue
                if message.get("type") == notifications.MATCH_FOUND:
                    queued = False
                    yield encode_event(message["event"])
        finally:
            if queued:
                with contextlib.suppress(Exception):
                    await services.leave_queues(user_id, token)
            with contextlib.suppress(Exception):
                await notifications.release_channel(channel)

    response = StreamingHttpResponse(stream(), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


urlpatterns = [
    path("matchmaking", matchmaking_view),
    path("", include(settings.ROOT_URLCONF)),
]
settings.ROOT_URLCONF = __name__
application = django_application

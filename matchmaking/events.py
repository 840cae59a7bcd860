"""The events of a matchmaking stream: one builder for each, used wherever one is sent.

Each builder returns the event's JSON object, which :mod:`animochat.sse` encodes and
sends, or for an error the :class:`~animochat.errors.ApiError` that
:meth:`animochat.sse.EventStream.reject` sends as an ``ERROR`` event. The README's
event table describes these shapes; clients switch on ``state`` and, for errors, on
``code``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from animochat.errors import ApiError

if TYPE_CHECKING:  # services builds events: it imports this module
    from .services import MatcherReply

MAINTENANCE_MESSAGE = "The matchmaking service is under maintenance. Please try again later."


def waiting(result: MatcherReply) -> dict[str, Any]:
    """``WAITING``, with the user's queue information."""
    return {
        "state": "WAITING",
        "waiting": result.waiting,
        "estimatedWaitSeconds": result.estimated_wait_seconds,
    }


def matched(result: MatcherReply, matched_user_id: str) -> dict[str, Any]:
    """``MATCHED`` from the matcher's result, for the side matched with ``matched_user_id``."""
    return _matched(
        matched_user_id, result.interest, result.chat_id, result.chat_server_url, result.fallback
    )


def matched_from_session(session: dict[str, Any], user_id: str) -> dict[str, Any]:
    """``MATCHED`` of ``user_id`` rebuilt from their stored chat session."""
    return _matched(
        next((p for p in session["participants"] if p != user_id), ""),
        session.get("interest", ""),
        session["chatId"],
        session["serverUrl"],
        bool(session.get("fallback")),
    )


def _matched(
    partner: str, interest: str, chat_id: str, server_url: str, fallback: bool
) -> dict[str, Any]:
    # Every MATCHED goes through here, so no path can leave out a fallback match's flag.
    return {
        "state": "MATCHED",
        "matchedUserId": partner,
        "interest": interest,
        "chatId": chat_id,
        "chatServerUrl": server_url,
        **({"fallback": True} if fallback else {}),
    }


def maintenance(message: str = MAINTENANCE_MESSAGE) -> dict[str, Any]:
    """``MAINTENANCE``; also the JSON body of the endpoints maintenance refuses."""
    return {"state": "MAINTENANCE", "code": "MAINTENANCE", "message": message}


def replaced() -> dict[str, Any]:
    return {
        "state": "REPLACED",
        "message": "Matchmaking continues in a newer connection for this user.",
    }


def cancelled() -> dict[str, Any]:
    return {"state": "CANCELLED", "message": "Matchmaking cancelled."}


# Errors, as ApiError: the stream renders each (animochat.sse.EventStream.reject) as the
# JSON endpoints do (animochat.http.error_response), with its status and headers. Those
# of status 200 end a stream already started.


def wait_timeout() -> ApiError:
    return ApiError(
        200,
        "WAIT_TIMEOUT",
        "Nobody was found in time; your place was given back. Reconnect to search again.",
    )


def queue_place_lost() -> ApiError:
    return ApiError(200, "QUEUE_PLACE_LOST", "Your place in the queue was lost; please reconnect.")


def server_shutdown() -> ApiError:
    return ApiError(200, "SERVER_SHUTDOWN", "The server is restarting; please reconnect.")


def service_unavailable() -> ApiError:
    """Redis failed: before the stream started (503) or during the wait."""
    return ApiError(
        503,
        "SERVICE_UNAVAILABLE",
        "Matchmaking is temporarily unavailable; please try again shortly.",
    )


# Refusals before a stream starts.


def method_not_allowed() -> ApiError:
    return ApiError(405, "METHOD_NOT_ALLOWED", "Use GET for /matchmaking.", {"Allow": "GET"})


def server_busy() -> ApiError:
    return ApiError(
        503,
        "SERVER_BUSY",
        "The server is busy; please try again shortly.",
        {"Retry-After": "5"},
    )


def too_many_streams() -> ApiError:
    return ApiError(
        429, "TOO_MANY_STREAMS", "Too many matchmaking streams are open from your address."
    )


def no_chat_server() -> ApiError:
    return ApiError(
        503,
        "NO_CHAT_SERVER",
        "No chat server is available right now; please try again shortly.",
    )


def invalid_last_event_id() -> ApiError:
    return ApiError(
        400,
        "INVALID_LAST_EVENT_ID",
        "Last-Event-ID names no stream of this user; open a new EventSource.",
    )

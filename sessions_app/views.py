"""``/session/<userId>`` and ``/session/disconnect``, as the web client calls them
(docs/PROTOCOL.md#the-web-clients-calls)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from animochat.auth import authorize_user
from animochat.errors import ApiError, InvalidInput
from animochat.http import (
    allow_methods,
    client_address,
    json_message,
    request_fields,
    request_token,
)
from animochat.ratelimit import check_rate_limit, check_read_rate_limit
from animochat.validation import validate_user_id

from . import selectors, services

USER_ID_REQUIRED = "User ID is required (userId in the JSON body, form or query string)."


@allow_methods("GET")
async def session_detail(request: HttpRequest, user_id: str) -> JsonResponse:
    await check_read_rate_limit(client_address(request))
    await authorize_user(validate_user_id(user_id), request_token(request))
    session = await selectors.get_user_session(user_id)
    if session is None:
        return json_message("No active session found for this user.")
    return JsonResponse(
        {
            "chatId": session["chatId"],
            "serverUrl": session["serverUrl"],
            "participants": session["participants"],
        }
    )


@allow_methods("POST")
async def session_disconnect(request: HttpRequest) -> JsonResponse:
    await check_rate_limit("post", client_address(request))
    fields = request_fields(request)
    try:
        user_id = validate_user_id(fields.get("userId"))
    except InvalidInput as error:
        if error.code == "MISSING_USER_ID":  # say where this endpoint takes it from
            raise InvalidInput(error.code, USER_ID_REQUIRED) from None
        raise
    await authorize_user(user_id, request_token(request))
    if await services.end_user_session(user_id) is None:
        raise ApiError(404, "NO_ACTIVE_SESSION", "No active session found to disconnect.")
    return json_message("Session disconnected successfully.")

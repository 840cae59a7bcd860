"""The OpenAPI description of the chat-session endpoints (see :mod:`animochat.openapi`)."""

from __future__ import annotations

from typing import Any

from animochat.openapi import (
    FORBIDDEN,
    UNAUTHORIZED,
    UNAVAILABLE_503,
    USER_BODY,
    USER_ID_QUERY,
    USER_ID_SCHEMA,
    error_body,
    message_body,
    user_post_errors,
)


def paths() -> dict[str, Any]:
    return {
        "/session/{userId}": {
            "get": {
                "summary": "The user's active chat session, for rejoining",
                "parameters": [
                    {"name": "userId", "in": "path", "required": True, "schema": USER_ID_SCHEMA}
                ],
                "responses": {
                    "200": {
                        "description": "The session, or a message that there is none.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Session"},
                                        {"$ref": "#/components/schemas/Message"},
                                    ]
                                }
                            }
                        },
                    },
                    "400": error_body("Invalid userId."),
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": error_body("No route: the userId contains a line break."),
                    "405": error_body("Method not allowed."),
                    "503": UNAVAILABLE_503,
                },
            }
        },
        "/session/disconnect": {
            "post": {
                "summary": "End the user's chat session for both participants",
                "parameters": [USER_ID_QUERY],
                "requestBody": USER_BODY,
                "responses": {
                    "200": message_body("Session disconnected successfully."),
                    **user_post_errors("User ID is required, or the body is malformed."),
                    "404": error_body("No active session found to disconnect."),
                },
            }
        },
    }


SCHEMAS: dict[str, Any] = {
    "Session": {
        "type": "object",
        "required": ["chatId", "serverUrl", "participants"],
        "properties": {
            "chatId": {"type": "string"},
            "serverUrl": {"type": "string"},
            "participants": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "maxItems": 2,
            },
        },
    },
}

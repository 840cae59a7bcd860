"""The OpenAPI description of matchmaking's endpoints (see :mod:`animochat.openapi`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from animochat.openapi import (
    ERROR_CODE_SCHEMA,
    UNAVAILABLE_503,
    USER_BODY,
    USER_ID_QUERY,
    USER_ID_SCHEMA,
    error_body,
    html_page,
    json_body,
    message_body,
    user_post_errors,
)

from .validation import MAX_INTEREST_LENGTH, MAX_INTERESTS


def _maintenance_or_unavailable(description: str) -> dict[str, Any]:
    """A 503 that is either the maintenance body or the Redis-unreachable message."""
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Maintenance"},
                        {"$ref": "#/components/schemas/Error"},
                    ]
                }
            }
        },
    }


def paths() -> dict[str, Any]:
    return {
        "/matchmaking": {
            "get": {
                "summary": "Find a match or wait (Server-Sent Events)",
                "description": (
                    "Every stream starts with `retry: <SSE_RETRY_MS>`, then streams "
                    "`data: <json>` events: WAITING, then MATCHED (the stream ends); "
                    "MAINTENANCE (503); ERROR with a code (400 bad input, 503 no chat "
                    "server or storage down); REPLACED or CANCELLED when another stream "
                    "or a cancel takes over. `: keepalive` comments while waiting.\n\n"
                    "Terminal events carry an `id:`: MATCHED the chat id; CANCELLED, "
                    "REPLACED, MAINTENANCE and ERROR WAIT_TIMEOUT (after "
                    "MAX_WAIT_SECONDS, the place given back) "
                    "`<kind>-<token>-<signature>`. EventSource sends it back as "
                    "`Last-Event-ID` when it reconnects by itself; such "
                    "a request never queues the user or touches their session: the "
                    "current chat id gets the same MATCHED again (200), an ended stream "
                    "of this user or a chat that is no longer theirs gets 204 (EventSource "
                    "stops), anything else 400 INVALID_LAST_EVENT_ID.\n\n"
                    "No interests means GLOBAL_CHAT (random chat): such a user is matched "
                    "at once with other random-chat users and with users past their "
                    "fallbackAfter, oldest first."
                ),
                "parameters": [
                    {
                        "name": "userId",
                        "in": "query",
                        "required": True,
                        "schema": USER_ID_SCHEMA,
                    },
                    {
                        "name": "interest",
                        "in": "query",
                        "required": False,
                        "description": f"Comma-separated, at most {MAX_INTERESTS} of at most "
                        f"{MAX_INTEREST_LENGTH} characters; none means "
                        "GLOBAL_CHAT.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "interests",
                        "in": "query",
                        "required": False,
                        "description": "Same as `interest` (the web client's name).",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "fallbackAfter",
                        "in": "query",
                        "required": False,
                        "description": "Seconds without an interest match after which the "
                        "user may also be matched with anyone else past their own fallback "
                        "(MATCHED then has `fallback: true` and an empty `interest`). "
                        "When absent: DEFAULT_FALLBACK_AFTER (off by default).",
                        "schema": {"type": "number", "minimum": 0, "maximum": 600},
                    },
                    {
                        "name": "pool",
                        "in": "query",
                        "required": False,
                        "description": "The match pool (MATCH_POOLS): users are matched "
                        "only with users of the same pool. When absent: the first pool. "
                        "Any other name: 400 INVALID_POOL.",
                        "schema": {"type": "string", "enum": list(settings.MATCH_POOLS)},
                    },
                    {
                        "name": "token",
                        "in": "query",
                        "required": False,
                        "description": "JWT when auth is on, for EventSource, which "
                        "cannot send an Authorization header. Prefer `ticket`: URLs are "
                        "kept by browsers and proxies.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "ticket",
                        "in": "query",
                        "required": False,
                        "description": "One-use ticket from POST /matchmaking/ticket for "
                        "this userId; replaces the token and is checked even when auth "
                        "is off.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "description": "Sent by EventSource when it reconnects: the id "
                        "of the terminal event that ended its previous stream.",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Event stream: WAITING … MATCHED.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "204": {
                        "description": "Last-Event-ID names an ended stream of this "
                        "user, or a chat that is no longer theirs: nothing to resume."
                    },
                    "400": {
                        "description": "ERROR event: invalid input.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "405": {
                        "description": "ERROR event: wrong method.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "414": {
                        "description": "ERROR event: query string too long.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "401": {
                        "description": "ERROR event: UNAUTHORIZED (no valid token), "
                        "TICKET_USED (the ticket was used already) or TICKET_INVALID "
                        "(unknown or expired ticket).",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "403": {
                        "description": "ERROR event FORBIDDEN: another user's token or ticket.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "429": {
                        "description": "ERROR event: RATE_LIMITED (see Retry-After), or "
                        "TOO_MANY_STREAMS (MAX_STREAMS_PER_CLIENT streams of this address "
                        "are open).",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                    "503": {
                        "description": "MAINTENANCE or ERROR event; SERVER_BUSY (this "
                        "process holds MAX_OPEN_STREAMS streams) comes with Retry-After.",
                        "content": {
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/StreamEvent"}
                            }
                        },
                    },
                },
            }
        },
        "/matchmaking/ticket": {
            "post": {
                "summary": "A one-use ticket for GET /matchmaking?ticket=…, valid 30 s",
                "description": (
                    "With auth on, for the user of the bearer token (a `userId`, if "
                    "given, must be theirs); with auth off, for the given `userId`. "
                    "The ticket opens one stream once: a second use gets 401 "
                    "TICKET_USED, a late one 401 TICKET_INVALID."
                ),
                "parameters": [USER_ID_QUERY],
                "requestBody": USER_BODY,
                "responses": {
                    "200": json_body("The ticket.", "Ticket"),
                    **user_post_errors("userId missing (auth off) or invalid, or bad body."),
                },
            }
        },
        "/cancel_matchmaking": {
            "post": {
                "summary": "Leave every queue and close the user's open stream",
                "description": "Idempotent. Queues are looked up server-side.",
                "parameters": [USER_ID_QUERY],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CancelRequest"}
                        }
                    },
                },
                "responses": {
                    "200": message_body("Matchmaking cancelled successfully."),
                    **user_post_errors("userId missing or invalid, or malformed body."),
                },
            }
        },
        "/interests/popular": {
            "get": {
                "summary": "Interests asked for most recently, hidden ones left out",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "allowEmptyValue": True,  # empty means the default
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 50,
                            "default": 8,
                        },
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Most popular first.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Popularity"},
                                }
                            }
                        },
                    },
                    "400": error_body("Invalid limit."),
                    "405": error_body("Method not allowed."),
                    "503": _maintenance_or_unavailable("Maintenance, or Redis unreachable."),
                },
            }
        },
        "/status": {
            "get": {
                "summary": "Detailed health for the AnimoChat status page",
                "responses": {
                    "200": json_body("Healthy.", "Status"),
                    "405": error_body("Method not allowed."),
                    "503": json_body("Redis unreachable (same shape).", "Status"),
                },
            }
        },
        "/maintenance": {
            "get": {
                "summary": "Maintenance state shared by every instance",
                "responses": {
                    "200": json_body("Operational.", "Maintenance"),
                    "405": error_body("Method not allowed."),
                    "503": _maintenance_or_unavailable("In maintenance, or Redis unreachable."),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (see matchmaking/metrics.py)",
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "405": error_body("Method not allowed."),
                    "503": UNAVAILABLE_503,
                },
            }
        },
        # Served only while DEMO_PAGE is on.
        **(
            {"/demo/": html_page("Live demo: find a match in the browser (the client kit)")}
            if settings.DEMO_PAGE
            else {}
        ),
    }


SCHEMAS: dict[str, Any] = {
    "CancelRequest": {
        "type": "object",
        "properties": {
            "userId": USER_ID_SCHEMA,
            "interests": {
                # Limits apply after normalization (trimmed, upper-cased, empty and
                # repeated ones dropped), which a schema cannot express.
                "description": f"At most {MAX_INTERESTS} distinct non-empty interests of at "
                f"most {MAX_INTEREST_LENGTH} characters once trimmed and upper-cased; a "
                "comma-separated string is accepted too.",
                "nullable": True,
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            },
        },
    },
    "Ticket": {
        "type": "object",
        "required": ["ticket", "userId", "expiresInSeconds"],
        "properties": {
            "ticket": {"type": "string"},
            "userId": USER_ID_SCHEMA,
            "expiresInSeconds": {"type": "integer"},
        },
    },
    "Popularity": {
        "type": "object",
        "required": ["interest", "count"],
        "properties": {"interest": {"type": "string"}, "count": {"type": "integer"}},
    },
    "Maintenance": {
        "type": "object",
        "required": ["state", "message"],
        "properties": {
            "state": {"type": "string", "enum": ["ACTIVE", "MAINTENANCE"]},
            "code": {"type": "string", "enum": ["MAINTENANCE"], "description": "503 only."},
            "message": {"type": "string"},
        },
    },
    "StreamEvent": {
        "type": "object",
        "required": ["state"],
        "properties": {
            "state": {
                "type": "string",
                "enum": ["WAITING", "MATCHED", "MAINTENANCE", "ERROR", "REPLACED", "CANCELLED"],
            },
            "matchedUserId": {"type": "string"},
            "interest": {"type": "string", "description": "Shared interests, comma-joined."},
            "chatId": {"type": "string"},
            "chatServerUrl": {"type": "string"},
            "fallback": {"type": "boolean", "description": "MATCHED through fallbackAfter."},
            "waiting": {
                "type": "integer",
                "description": "WAITING: others waiting in your interests' queues.",
            },
            "estimatedWaitSeconds": {
                "type": "integer",
                "nullable": True,
                "description": "WAITING: expected wait from recent arrivals in your interests.",
            },
            "code": ERROR_CODE_SCHEMA,
            "message": {"type": "string"},
        },
    },
    "Status": {
        "type": "object",
        "required": [
            "serviceState",
            "timestamp",
            "redis",
            "metrics",
            "serviceInfo",
            "uptime",
            "processMemory",
            "os",
            "cpuUsage",
        ],
        "properties": {
            "serviceState": {"type": "string", "enum": ["ACTIVE", "MAINTENANCE"]},
            "timestamp": {"type": "string", "format": "date-time"},
            "redis": {
                "type": "object",
                "properties": {"commands": {"type": "string"}, "subscriber": {"type": "string"}},
            },
            "metrics": {
                "type": "object",
                "properties": {
                    "activeSessions": {"type": "integer"},
                    "usersInQueue": {"type": "integer"},
                    "queues": {
                        "type": "object",
                        "description": "Users waiting per interest: the 50 largest queues.",
                        "additionalProperties": {"type": "integer"},
                    },
                    "queueCount": {
                        "type": "integer",
                        "description": "How many interests have a queue.",
                    },
                    "openStreams": {"type": "integer"},
                },
            },
            "discovery": {"type": "object"},
            "serviceInfo": {
                "type": "object",
                "properties": {
                    "serviceName": {"type": "string"},
                    "version": {"type": "string"},
                    "pid": {"type": "integer", "description": "The answering process"},
                },
            },
            "uptime": {"type": "number"},
            "processMemory": {"type": "object"},
            "os": {"type": "object"},
            "cpuUsage": {"type": "object"},
        },
    },
}

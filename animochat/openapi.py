"""The OpenAPI 3 description of the whole HTTP API, served at ``GET /openapi.json``.

Each app describes its own endpoints in its ``openapi.py`` (``paths()`` and
``SCHEMAS``, in ``INSTALLED_APPS`` order), with the shared pieces defined here; this
module adds the project's own endpoints (the probes and the document itself) and puts
them together, without importing any app. ``tests/test_openapi.py`` compares the paths
and methods with the URL configuration, so an endpoint cannot be added or removed
without the document following.
"""

from __future__ import annotations

from typing import Any

from animochat.apps import app_modules
from animochat.errors import ERROR_CODES
from animochat.validation import MAX_USER_ID_LENGTH


def message_body(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}},
    }


def error_body(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def json_body(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


ERROR_CODE_SCHEMA = {
    "type": "string",
    "enum": sorted(ERROR_CODES),
    "description": "Stable: switch on it, not on the message (the README lists each).",
}
USER_ID_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_USER_ID_LENGTH,
    "description": "Printable characters only.",
}
# Optional bodies: userId may come in the query string alone (the web client repeats it
# there); given in both, the two must agree.
USER_BODY = {
    "required": False,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/UserRequest"}},
        "application/x-www-form-urlencoded": {
            "schema": {"$ref": "#/components/schemas/UserRequest"}
        },
    },
}
USER_ID_QUERY = {
    "name": "userId",
    "in": "query",
    "required": False,
    "description": "Accepted instead of (or repeated beside) the body's userId.",
    "schema": USER_ID_SCHEMA,
}


UNAVAILABLE_503 = error_body(
    "Redis is unreachable, or (AUTH_UNAVAILABLE) the AUTH_JWKS_URL keys cannot be fetched; "
    "try again shortly."
)
RATE_LIMITED = error_body("Too many requests from this client; see Retry-After.")
# Only while auth is on (see the description in "info").
UNAUTHORIZED = error_body("UNAUTHORIZED: no valid token in `Authorization: Bearer`.")
FORBIDDEN = error_body("FORBIDDEN: the token belongs to another userId (its sub).")


def user_post_errors(bad_request: str) -> dict[str, Any]:
    """The refusals every identity-checked POST shares, beside its own 400."""
    return {
        "400": error_body(bad_request),
        "401": UNAUTHORIZED,
        "403": FORBIDDEN,
        "405": error_body("Method not allowed."),
        "413": error_body("Body too large."),
        "429": RATE_LIMITED,
        "503": UNAVAILABLE_503,
    }


AUTH_DESCRIPTION = (
    "Pairs users who share an interest for one-to-one chat.\n\n"
    "Verified identity is optional, off by default. With AUTH_JWT_SECRET (HS256) or "
    "AUTH_JWKS_URL (RS256/ES256) set, every endpoint taking a userId requires a JWT "
    "whose `sub` is that userId, with `exp` (and `aud` = AUTH_JWT_AUDIENCE, default "
    "`authenticated`); a Supabase access token qualifies. Send it as "
    "`Authorization: Bearer <token>`. Only `/matchmaking` also takes it in the URL, "
    "because EventSource cannot send headers; better, `POST /matchmaking/ticket` returns "
    "a one-use ticket valid 30 s for `/matchmaking?ticket=`. 401 without a valid token "
    "or ticket, 403 when it names another user. Error bodies carry a stable `code`."
)


def html_page(summary: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {
                    "description": "An HTML page.",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "405": message_body("Method not allowed."),
            },
        }
    }


PATHS: dict[str, Any] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the process runs (no Redis call, never rate limited)",
            "responses": {
                "200": json_body("The process is running.", "Alive"),
                "405": error_body("Method not allowed."),
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Redis answers, the pub/sub listener is connected "
            "and the Lua scripts are loaded (never rate limited)",
            "responses": {
                "200": json_body("Ready to serve.", "Readiness"),
                "405": error_body("Method not allowed."),
                "503": json_body("Not ready; `checks` names what is not.", "NotReady"),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "OpenAPI 3 document.",
                    "content": {"application/json": {}},
                },
                "405": error_body("Method not allowed."),
            },
        }
    },
    "/docs": html_page("This document rendered for people (Redoc)"),
}

READINESS_CHECKS = {
    "type": "object",
    "required": ["redis", "scripts", "pubsub"],
    "properties": {
        name: {"type": "string", "enum": ["ready", "down", "unknown"]}
        for name in ("redis", "scripts", "pubsub")
    },
}

SCHEMAS: dict[str, Any] = {
    "Alive": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {"status": {"type": "string", "enum": ["ready"]}, "checks": READINESS_CHECKS},
    },
    "NotReady": {
        "type": "object",
        "required": ["code", "message", "checks"],
        "properties": {
            "code": {"type": "string", "enum": ["NOT_READY"]},
            "message": {"type": "string"},
            "checks": READINESS_CHECKS,
        },
    },
    "Message": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}},
    },
    "Error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": ERROR_CODE_SCHEMA, "message": {"type": "string"}},
    },
    # userId is required in the body or the query string (a schema cannot say "one of
    # the two"), so neither place marks it required.
    "UserRequest": {
        "type": "object",
        "properties": {"userId": USER_ID_SCHEMA},
    },
}


def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas = dict(SCHEMAS)
    for module in app_modules("openapi"):
        paths.update(module.paths())
        schemas.update(module.SCHEMAS)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "AnimoChat Matchmaking",
            "version": "1.0.0",
            "description": AUTH_DESCRIPTION,
        },
        "paths": {**paths, **PATHS},
        "components": {"schemas": schemas},
    }

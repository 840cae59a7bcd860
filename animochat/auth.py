"""Optional verified identity: a user may act only as the ``userId`` their token names.

Off unless ``AUTH_JWT_SECRET`` is set. Tokens are HS256 JWTs whose ``sub`` is the user
id, as Supabase issues them (their ``aud`` is not checked). Browsers' ``EventSource``
cannot send headers, so the stream also accepts ``?token=``.
"""

from __future__ import annotations

import jwt
from django.conf import settings


class NotAuthorized(Exception):
    """401 (no valid token) or 403 (a valid token for another user)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = "UNAUTHORIZED" if status == 401 else "FORBIDDEN"


def bearer_token(authorization: str | None, query_token: str | None) -> str:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return (query_token or "").strip()


def authorize_user(user_id: str, token: str) -> None:
    """Raise :class:`NotAuthorized` unless ``token`` proves the caller is ``user_id``."""
    secret = settings.AUTH_JWT_SECRET
    if not secret:
        return
    if not token:
        raise NotAuthorized(401, "A bearer token is required (Authorization header or ?token=).")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_aud": False, "require": ["sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise NotAuthorized(401, "The token has expired.") from None
    except jwt.InvalidTokenError:
        raise NotAuthorized(401, "The token is not valid.") from None
    if claims["sub"] != user_id:
        raise NotAuthorized(403, "The token does not belong to this userId.")

"""Ids of a stream's terminal events, which make EventSource's automatic reconnect safe.

A browser ``EventSource`` reconnects by itself a few seconds after a stream ends, unless
the page calls ``close()``, and sends the id of the last event it received as
``Last-Event-ID``. Only terminal events carry an id, so such a header always means "a
reconnect after my stream ended", never a fresh search:

- ``MATCHED`` carries the chat id: a reconnect naming the user's current chat is sent
  the same ``MATCHED`` again; the session is left alone.
- ``CANCELLED``, ``REPLACED``, ``MAINTENANCE`` and ``WAIT_TIMEOUT`` carry
  ``<kind>-<token>-<signature>``: an HMAC (Django's ``salted_hmac`` with
  ``SECRET_KEY``) of the user id, the kind and the stream's token. Any process of
  the service recognises it without storing anything, and it names an ended stream of
  this user only.

A reconnect naming an ended stream, or a chat that is no longer the user's, is answered
204, which makes ``EventSource`` stop; an id the service never issued is a 400.
"""

from __future__ import annotations

import re

from django.utils.crypto import constant_time_compare, salted_hmac

CANCELLED = "cancelled"
REPLACED = "replaced"
MAINTENANCE = "maintenance"
WAIT_TIMEOUT = "timeout"
ENDED_KINDS = (CANCELLED, REPLACED, MAINTENANCE, WAIT_TIMEOUT)

_SALT = "animochat.matchmaking.ended-stream"
_SIGNATURE_LENGTH = 24  # hex digits: 96 bits
_ENDED_ID = re.compile(r"^(cancelled|replaced|maintenance|timeout)-([0-9a-f]{32})-([0-9a-f]+)$")
# The matcher's chat ids (uuid4().hex, see services.py).
_CHAT_ID = re.compile(r"^[0-9a-f]{32}$")


def _signature(user_id: str, kind: str, token: str) -> str:
    return salted_hmac(_SALT, f"{kind}:{token}:{user_id}", algorithm="sha256").hexdigest()[
        :_SIGNATURE_LENGTH
    ]


def ended_stream_id(user_id: str, kind: str, token: str) -> str:
    """The id of the ``kind`` event that ends stream ``token`` of ``user_id``."""
    return f"{kind}-{token}-{_signature(user_id, kind, token)}"


def names_ended_stream(user_id: str, event_id: str) -> bool:
    """Whether ``event_id`` was issued by :func:`ended_stream_id` for ``user_id``."""
    found = _ENDED_ID.match(event_id)
    if found is None:
        return False
    kind, token, signature = found.groups()
    return constant_time_compare(signature, _signature(user_id, kind, token))


def is_chat_id(event_id: str) -> bool:
    return _CHAT_ID.match(event_id) is not None

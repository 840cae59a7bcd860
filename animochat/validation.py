"""Input checks every app shares: user ids and numbers in request parameters.

Interest normalization is matching's own (``matchmaking/validation.py``).
"""

from __future__ import annotations

import re

from animochat.errors import InvalidInput

MAX_USER_ID_LENGTH = 128


# ASCII digits only: str.isdigit(), int() and float() also take other scripts' digits,
# superscripts ("²" passes isdigit() yet int() refuses it), "1_000", " 5 ", "1e3" and
# "inf", and int() refuses more than 4,300 digits. Bounded lengths keep parsing cheap.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")
_DECIMAL_NUMBER = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")


def parse_number(
    raw: object, lo: float, hi: float, *, fraction: bool = False
) -> int | float | None:
    """The value of ``raw`` if it is written in ASCII digits (with a decimal part when
    ``fraction``) and lies within ``[lo, hi]``, else None. Every numeric request
    parameter goes through here, so each caller only chooses how to refuse."""
    pattern = _DECIMAL_NUMBER if fraction else _WHOLE_NUMBER
    if not isinstance(raw, str) or not pattern.fullmatch(raw):
        return None
    value = float(raw) if fraction else int(raw)
    return value if lo <= value <= hi else None


def validate_user_id(raw: object) -> str:
    """Return ``raw`` if it is a usable user id, else raise :class:`InvalidInput`."""
    if raw is None or raw == "":
        raise InvalidInput("MISSING_USER_ID", "User ID is required (userId).")
    if not isinstance(raw, str):
        raise InvalidInput("INVALID_USER_ID", "userId must be a string.")
    if len(raw) > MAX_USER_ID_LENGTH:
        raise InvalidInput(
            "INVALID_USER_ID", f"userId must be at most {MAX_USER_ID_LENGTH} characters."
        )
    if not raw.isprintable() or not raw.strip():
        raise InvalidInput(
            "INVALID_USER_ID",
            "userId must consist of printable characters (no control characters).",
        )
    return raw

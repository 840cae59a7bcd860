"""Requests of this process that failed because Redis was unreachable.

Counted where the failure is answered (the API middleware, the stream), for the
``animochat_redis_errors_total`` series of ``/metrics`` and the per-minute history of
the admin's Overview, which takes the counts not yet written once Redis is back.
"""

from __future__ import annotations

import time
from collections import Counter

_redis_errors = 0
# Redis errors per minute (since the epoch) not yet in the admin's per-minute history:
# they happened while Redis was unreachable, so the next history write carries them.
_unwritten_errors: Counter[int] = Counter()


def record_redis_error() -> None:
    """Count a request that failed because Redis was unreachable (this process)."""
    global _redis_errors
    _redis_errors += 1
    _unwritten_errors[int(time.time() // 60)] += 1


def take_unwritten_errors() -> dict[int, int]:
    """The Redis errors not yet written to the history, forgotten here until
    :func:`put_back_unwritten_errors` says the write failed."""
    taken = dict(_unwritten_errors)
    _unwritten_errors.clear()
    return taken


def put_back_unwritten_errors(errors: dict[int, int]) -> None:
    _unwritten_errors.update(errors)


def has_unwritten_errors() -> bool:
    return bool(_unwritten_errors)


def redis_error_count() -> int:
    """Requests of this process that failed because Redis was unreachable, so far."""
    return _redis_errors

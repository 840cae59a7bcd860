"""One JSON object per log line, so operators can grep and ship logs as they are."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "event", ...fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event, e.g. ``log_event(log, "match", user="a", partner="b")``."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


class WithoutTraceback(logging.Filter):
    """Drops the traceback of expected refusals (Django's ``DisallowedHost``, for one):
    the message says what happened, and a stack of Django internals per bad request
    buries the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True

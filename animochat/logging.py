"""One JSON object per log line, so operators can grep and ship logs as they are.

Lines are written on the busiest path (an enqueue and a match per pair), so each step
here is the cheap one: orjson encodes, the timestamp's text is made once per second,
:func:`log_event` skips the caller lookup nobody prints, and :class:`TurnStreamHandler`
writes the lines of one event-loop turn with one system call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import Any

import orjson

# No line shows a record's thread or process: LogRecord need not look them up for each
# line (the logging HOWTO's "Optimization").
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False

# Indented output has a line break before every item and nowhere else (a line break in
# a string is escaped), so closing the breaks gives json.dumps' own ", " and ": ": the
# lines read exactly as they always did, nested lists included.
_ORJSON_OPTIONS = (
    orjson.OPT_INDENT_2
    | orjson.OPT_NON_STR_KEYS
    # As json.dumps(default=str) wrote them, not orjson's own forms.
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
_ITEM_BREAK = re.compile(rb",\n *")
_OTHER_BREAK = re.compile(rb"\n *")


def json_line(entry: dict[str, Any]) -> str:
    """``json.dumps(entry, default=str, ensure_ascii=False)``, about twice as fast."""
    try:
        encoded = orjson.dumps(entry, default=str, option=_ORJSON_OPTIONS)
    except TypeError:  # what orjson refuses (a lone surrogate, an integer over 64 bits)
        return json.dumps(entry, default=str, ensure_ascii=False)
    return _OTHER_BREAK.sub(b"", _ITEM_BREAK.sub(b", ", encoded)).decode()


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "event", ...fields}``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._second = -1
        self._second_text = ""

    def timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as ``datetime.isoformat`` writes it."""
        second = int(created)
        micro = round((created - second) * 1e6)  # rounded as datetime rounds it
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{micro // 1000:03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json_line(entry)


class TurnStreamHandler(logging.StreamHandler):
    """A ``StreamHandler`` that writes the lines of one event-loop turn together.

    In a thread running an event loop, a line waits in memory until the end of the
    turn (the loop's next callback), so a turn that logs a dozen events makes one
    write and one flush instead of a dozen. Elsewhere (management commands, threads)
    each line is written at once, after any still waiting; :meth:`flush` (called at
    exit by ``logging.shutdown``) writes what waits.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.waiting: list[str] = []
        self.flush_on: asyncio.AbstractEventLoop | None = None  # the loop that will flush

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (logging's Handler.handle takes it).
        try:
            self.waiting.append(self.format(record) + self.terminator)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            if self.flush_on is not loop:
                loop.call_soon(self.flush)
                self.flush_on = loop
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # re-entrant, and held by emit already when it calls this
            waiting, self.waiting, self.flush_on = self.waiting, [], None
            if self.stream:
                with contextlib.suppress(OSError, ValueError):  # a closed stderr
                    if waiting:
                        self.stream.write("".join(waiting))
                    self.stream.flush()


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event, e.g. ``log_event(log, "match", user="a", partner="b")``.

    The record is made directly rather than by ``logger.log``, which would first walk
    the stack for the caller's file and line: the JSON lines never show them.
    """
    if logger.isEnabledFor(level):
        record = logging.LogRecord(logger.name, level, "", 0, event, None, None)
        record.fields = fields
        logger.handle(record)


class WithoutTraceback(logging.Filter):
    """Drops the traceback of expected refusals (Django's ``DisallowedHost``, for one):
    the message says what happened, and a stack of Django internals per bad request
    buries the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True

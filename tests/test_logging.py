"""The JSON log lines: the same text as ``json.dumps`` wrote, one write per loop turn."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from animochat.access_log import silence_twisted_access_log
from animochat.logging import JsonFormatter, TurnStreamHandler, json_line, log_event

# What log fields hold: text (any, control characters and non-ASCII included), numbers,
# flags, and lists or objects of them.
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
# Floats as fields hold them (durations rounded to the hundredth): a tiny or huge float
# is written with another exponent form (1e-7, not 1e-07), never met in a log line.
scalars |= st.floats(min_value=-1e12, max_value=1e12).map(lambda x: round(x, 2))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
)


@given(st.dictionaries(st.text(), values, max_size=8))
def test_a_line_reads_exactly_as_json_dumps_wrote_it(entry):
    assert json_line(entry) == json.dumps(entry, default=str, ensure_ascii=False)


def test_what_orjson_refuses_is_still_written_as_before():
    for entry in ({"big": 2**70}, {"lone": "\ud800"}, {"when": datetime(2026, 1, 2, tzinfo=UTC)}):
        assert json_line(entry) == json.dumps(entry, default=str, ensure_ascii=False)


@given(st.floats(min_value=0, max_value=4e9))
def test_timestamps_read_as_datetime_writes_them(created):
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert JsonFormatter().timestamp(created) == expected


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def logger_writing_to(stream: CountingStream) -> logging.Logger:
    logger = logging.getLogger("tests.logging.turns")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = TurnStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    return logger


def test_the_lines_of_one_loop_turn_are_written_together_at_its_end():
    stream = CountingStream()
    logger = logger_writing_to(stream)

    async def one_turn() -> str:
        for n in range(5):
            log_event(logger, "match", n=n)
        seen_in_the_turn = stream.getvalue()
        await asyncio.sleep(0)  # the turn ends
        return seen_in_the_turn

    assert asyncio.run(one_turn()) == ""
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line["n"]) for line in lines] == [("match", n) for n in range(5)]
    assert lines[0]["logger"] == "tests.logging.turns" and lines[0]["level"] == "INFO"
    assert stream.writes == 1


def test_outside_an_event_loop_each_line_is_written_at_once():
    stream = CountingStream()
    logger = logger_writing_to(stream)
    log_event(logger, "swept_lapsed_waiters", removed=10)
    assert '"event": "swept_lapsed_waiters", "removed": 10' in stream.getvalue()


def test_twisted_makes_no_line_of_its_own_per_request():
    from twisted.web import http

    silence_twisted_access_log()
    factory = http.HTTPFactory()
    factory._logFile = sink = io.StringIO()  # where Twisted would write its line
    # A request Twisted could not even format: nothing of it is read.
    factory.log(object())
    assert sink.getvalue() == ""

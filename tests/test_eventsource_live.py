"""A real browser's EventSource, which reconnects by itself whenever a stream ends.

The page is served from an origin of its own (a second port), as a web app's would be,
and never calls ``close()``: what it sees is what a page with that bug sees.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from animochat.embedded_redis import free_port
from tests.support.browser import CHROMIUM, NOT_INSTALLED, launch_chromium

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>EventSource without close()</title>
<script>
  // EventSources that are never closed, by label: every event and error is recorded.
  window.seen = {};
  window.watch = (base, label, user, interests) => {
    const url = base + "/matchmaking?userId=" + encodeURIComponent(user) +
      "&interests=" + encodeURIComponent(interests);
    const source = new EventSource(url);
    const record = {events: [], errors: 0, source};
    seen[label] = record;
    source.onmessage = (message) => {
      record.events.push({...JSON.parse(message.data), lastEventId: message.lastEventId});
    };
    source.onerror = () => { record.errors += 1; };
  };
  window.report = (label) => {
    const record = seen[label];
    return {events: record.events, errors: record.errors,
            readyState: record.source.readyState};
  };
</script>
"""


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # the http.server interface
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def page_origin():
    """A tiny web server on another port: the page's origin differs from the API's."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(page_origin):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(page_origin)
            yield page
        finally:
            browser.close()


def wait_for(check, timeout: float, what: str, interval: float = 0.2):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def watch(page, server, label: str, user: str, interests: str) -> None:
    """Open a never-closed EventSource in the page and wait for its first WAITING."""
    page.evaluate("(args) => watch(...args)", [server.url, label, user, interests])
    wait_for(lambda: "WAITING" in states(page, label), 20, f"{label} to wait")


def states(page, user: str) -> list[str]:
    return [event["state"] for event in page.evaluate("u => report(u).events", user)]


def log_lines(server, event: str, user: str) -> list[dict]:
    lines = (json.loads(line) for line in server.log().splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == event and line.get("user") == user]


def session_chat_id(server, user: str) -> str | None:
    return requests.get(f"{server.url}/session/{user}", timeout=5).json().get("chatId")


pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)

KEPT_FOR = 30.0  # seconds the chat must survive the never-closed EventSources


@pytest.mark.slow
def test_a_page_that_never_closes_keeps_its_chat(daphne, page, clean_redis):
    tag = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    watch(page, daphne, alice, alice, "browser")
    page.evaluate("(args) => watch(...args)", [daphne.url, bob, bob, "browser"])
    wait_for(lambda: all("MATCHED" in states(page, user) for user in (alice, bob)), 20, "the match")
    matched_at = time.monotonic()
    first = page.evaluate("u => report(u).events", bob)[-1]
    chat_id = first["chatId"]
    assert first["lastEventId"] == chat_id and first["matchedUserId"] == alice

    def kept_and_reconnected():
        # The chat must hold at every look, not only at the end.
        for user in (alice, bob):
            assert session_chat_id(daphne, user) == chat_id, user
        if time.monotonic() - matched_at < KEPT_FOR:
            return False
        return all(len(log_lines(daphne, "resumed", user)) >= 2 for user in (alice, bob))

    wait_for(kept_and_reconnected, KEPT_FOR + 30, "30 s of the chat and reconnects", 1.0)
    assert clean_redis.zcard("queue:waiting") == 0
    for user, partner in ((alice, bob), (bob, alice)):
        report = page.evaluate("u => report(u)", user)
        matched = [event for event in report["events"] if event["state"] == "MATCHED"]
        # Each automatic reconnect was answered with the same MATCHED, never a search.
        assert len(matched) >= 2, report
        assert {event["chatId"] for event in matched} == {chat_id}
        assert {event["lastEventId"] for event in matched} == {chat_id}
        assert {event["matchedUserId"] for event in matched} == {partner}
        assert report["errors"] >= len(matched) - 1  # each stream end is an error event
        assert len(log_lines(daphne, "resumed", user)) >= len(matched) - 1


@pytest.mark.slow
def test_a_cancelled_or_replaced_page_stops_instead_of_searching_again(daphne, page, clean_redis):
    tag = uuid.uuid4().hex[:8]
    cancelled, twice = f"carol-{tag}", f"dave-{tag}"
    watch(page, daphne, cancelled, cancelled, "lonely")
    response = requests.post(
        f"{daphne.url}/cancel_matchmaking", json={"userId": cancelled}, timeout=5
    )
    assert response.status_code == 200
    # CANCELLED, one automatic reconnect answered 204, then EventSource.CLOSED.
    wait_for(lambda: page.evaluate("u => report(u).readyState", cancelled) == 2, 20, "CLOSED")
    assert states(page, cancelled) == ["WAITING", "CANCELLED"]
    assert len(log_lines(daphne, "reconnect_refused", cancelled)) == 1
    assert clean_redis.zscore("queue:waiting", cancelled) is None

    # The same user in a second tab: the first stream is replaced and must not come
    # back to replace the second (which would then replace the first, and so on).
    watch(page, daphne, "first", twice, "lonely")
    watch(page, daphne, "second", twice, "lonely")
    wait_for(lambda: page.evaluate("() => report('first').readyState") == 2, 20, "CLOSED")
    assert states(page, "first") == ["WAITING", "REPLACED"]
    assert len(log_lines(daphne, "reconnect_refused", twice)) == 1
    # Keepalive WAITING updates (every second here) show the second stream lives on.
    seen_before = len(states(page, "second"))
    wait_for(lambda: len(states(page, "second")) >= seen_before + 2, 20, "keepalives")
    assert set(states(page, "second")) == {"WAITING"}
    assert page.evaluate("() => report('second').readyState") == 1
    assert clean_redis.zscore("queue:waiting", twice) is not None

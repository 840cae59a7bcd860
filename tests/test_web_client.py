"""The browser side: the client kit, the live demo page and /docs, in real Chromium
against real Daphne processes."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from pathlib import Path

import pytest
import requests

from animochat.embedded_redis import free_port
from tests import test_auth as auth_tests
from tests.support.browser import CHROMIUM, NOT_INSTALLED, chromium, png_colours
from tests.support.servers import BASE_DIR
from tests.test_maintenance import maintenance_command

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)

KIT_DIR = BASE_DIR / "matchmaking" / "static" / "animochat"
KIT_URL = "/static/animochat/animochat-matchmaking.js"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# A blank page has one colour; a rendered state has text, borders and shading.
MIN_COLOURS = 40

# Every EventSource and beacon a page makes, so tests can see what the kit did.
RECORDER = """
window.__sources = [];
const NativeEventSource = window.EventSource;
window.EventSource = class extends NativeEventSource {
    constructor(...args) { super(...args); window.__sources.push(this); }
};
window.__beacons = [];
const nativeBeacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, body) => {
    window.__beacons.push({url: String(url), body: String(body)});
    return nativeBeacon(url, body);
};
"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def open_page(browser):
    """``open_page(url, viewport=…)``: a page in a fresh context (its own cookies)."""
    contexts = []

    def open_page(url: str, viewport: dict[str, int] = DESKTOP, **options):
        context = browser.new_context(viewport=viewport, **options)
        context.add_init_script(RECORDER)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()


def user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def wait_until(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


def open_demo(open_page, base: str, user_id: str, **options):
    page = open_page(base + "/demo/", **options)
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#user-id", user_id)
    return page


def add_interests(page, text: str) -> None:
    page.fill("#interest-input", text)
    page.press("#interest-input", "Enter")


def state_of(page) -> str:
    return page.get_attribute("#state", "data-state")


def screenshot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True)
    decoded = png_colours(page, path)
    assert decoded["colours"] >= MIN_COLOURS, (path.name, decoded)
    return path


# -- the demo page ---------------------------------------------------------------------


def test_two_visitors_sharing_one_interest_find_each_other(daphne, open_page, tmp_path):
    first, second = user("ana"), user("ben")
    ana = open_demo(open_page, daphne.url, first)
    assert state_of(ana) == "idle"
    idle = screenshot(ana, tmp_path / "idle.png")

    add_interests(ana, "Anime, cosplay")
    assert ana.locator("#chosen button").all_inner_texts() == ["ANIME", "COSPLAY"]
    ana.click("#find")
    ana.wait_for_selector("#state[data-state=waiting]")
    # The first WAITING event's numbers are on the page.
    ana.wait_for_function("document.getElementById('waiting-count').dataset.value !== ''")
    assert ana.inner_text("#waiting-count") == "0"
    assert ana.inner_text("#estimate") == "unknown"  # nobody else asked for these lately
    waiting = screenshot(ana, tmp_path / "waiting.png")

    # The second visitor, on a phone, picks the shared interest from the popular chips
    # (popularity is counted after the matcher call and cached for a moment: wait for it).
    wait_until(
        lambda: len(requests.get(f"{daphne.url}/interests/popular", timeout=5).json()) == 2,
        what="popularity",
    )
    ben = open_demo(open_page, daphne.url, second, viewport=PHONE, is_mobile=True)
    popular = ben.locator("#popular button")
    popular.first.wait_for()
    assert sorted(popular.all_inner_texts()) == ["ANIME", "COSPLAY"]
    ben.click("#popular button[data-interest=COSPLAY]")
    assert ben.get_attribute("#popular button[data-interest=COSPLAY]", "aria-pressed") == "true"
    assert ben.locator("#chosen button").all_inner_texts() == ["COSPLAY"]
    ben.click("#find")

    for page in (ana, ben):
        page.wait_for_selector("#state[data-state=matched]")
    chat_id = ana.inner_text("#chat-id")
    assert re.fullmatch(r"[0-9a-f]{32}", chat_id)
    assert ben.inner_text("#chat-id") == chat_id
    assert ana.inner_text("#matched-user") == second and ben.inner_text("#matched-user") == first
    assert ana.inner_text("#chat-server") in ("http://chat-a.test", "http://chat-b.test")
    assert ben.inner_text("#chat-server") == ana.inner_text("#chat-server")
    assert ana.inner_text("#shared") == "You both like COSPLAY"
    session = requests.get(f"{daphne.url}/session/{first}", timeout=5).json()
    assert session["chatId"] == chat_id and sorted(session["participants"]) == sorted(
        [first, second]
    )
    # The kit closed both streams: no automatic reconnect can touch the new session.
    for page in (ana, ben):
        assert page.evaluate("window.__sources.map(s => s.readyState)") == [2]
    matched = screenshot(ana, tmp_path / "matched.png")
    phone = screenshot(ben, tmp_path / "phone-matched.png")

    # Readable on a phone: nothing wider than the screen.
    assert ben.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert ben.evaluate("document.querySelector('meta[name=viewport]').content").startswith(
        "width=device-width"
    )
    # Each state looks different (the page really changed between screenshots).
    shots = [idle, waiting, matched, phone]
    assert len({shot.read_bytes() for shot in shots}) == len(shots)


def test_cancel_returns_to_idle_and_leaves_the_queue(daphne, open_page, clean_redis):
    visitor = user("cara")
    page = open_demo(open_page, daphne.url, visitor)
    beacons = []
    page.on("request", lambda r: beacons.append(r) if "cancel_matchmaking" in r.url else 0)
    add_interests(page, "Chess")
    page.click("#find")
    page.wait_for_selector("#state[data-state=waiting]")
    assert page.is_hidden("#find") and page.is_visible("#cancel")
    wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is not None, what="queued")

    page.click("#cancel")
    page.wait_for_selector("#state[data-state=idle]")
    assert page.is_visible("#find") and page.is_hidden("#cancel")
    assert page.is_enabled("#interest-input")
    wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is None, what="dequeued")
    assert clean_redis.zcard("interest:CHESS") == 0
    beacon = wait_until(lambda: beacons, what="the cancel beacon")[0]
    assert beacon.method == "POST" and beacon.post_data == f"userId={visitor}"
    assert beacon.response().status == 200


def test_waiting_shows_the_queues_live_numbers(daphne_factory, open_page):
    # With the rematch cooldown on, two users just matched wait side by side: each
    # then counts the other in `waiting`.
    server = daphne_factory(REMATCH_COOLDOWN="60")
    first, second = user("dan"), user("eve")
    dan = open_demo(open_page, server.url, first)
    eve = open_demo(open_page, server.url, second)
    for page in (dan, eve):
        add_interests(page, "Go")
        page.click("#find")
    for page in (dan, eve):
        page.wait_for_selector("#state[data-state=matched]")

    dan.click("#again")
    dan.wait_for_function("document.getElementById('waiting-count').dataset.value === '0'")
    eve.click("#again")
    eve.wait_for_function("document.getElementById('waiting-count').dataset.value === '1'")
    # Dan's page learns of Eve at its next keepalive, without any action.
    dan.wait_for_function("document.getElementById('waiting-count').dataset.value === '1'")
    # Others asked for GO within the window: the estimate is a number, shown in minutes.
    seconds = int(
        dan.wait_for_function("document.getElementById('estimate').dataset.seconds").json_value()
    )
    assert 60 <= seconds <= 600  # the window (600 s) over a few requests
    assert dan.inner_text("#estimate") == f"about {math.floor(seconds / 60 + 0.5)} min"
    assert dan.get_attribute("#state", "data-state") == "waiting"
    dan.click("#cancel")
    eve.click("#cancel")
    for page in (dan, eve):
        page.wait_for_selector("#state[data-state=idle]")


def test_maintenance_shows_a_clear_error(daphne, open_page, tmp_path):
    page = open_demo(open_page, daphne.url, user("fay"))
    assert maintenance_command("on").returncode == 0
    try:
        page.click("#find")
        page.wait_for_selector("#state[data-state=error]")
        assert page.inner_text("#error-code") == "MAINTENANCE"
        assert page.inner_text("#error-title") == "Under maintenance"
        page.wait_for_selector("#service-state[data-state=maintenance]")
        screenshot(page, tmp_path / "maintenance.png")
    finally:
        maintenance_command("off")


def test_demo_page_is_served_and_can_be_turned_off(daphne, daphne_factory):
    page = requests.get(daphne.url + "/demo/", timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width' in page.text
    for asset in re.findall(r'(?:src|href|data-kit)="(/static/[^"]+)"', page.text):
        assert requests.get(daphne.url + asset, timeout=5).status_code == 200, asset
    kit = requests.get(daphne.url + KIT_URL, timeout=5)
    assert "javascript" in kit.headers["Content-Type"]
    types = requests.get(daphne.url + KIT_URL.replace(".js", ".d.ts"), timeout=5)
    assert types.headers["Content-Type"].startswith("text/plain")
    assert "export function findMatch" in types.text
    assert "/demo/" in requests.get(daphne.url + "/openapi.json", timeout=5).json()["paths"]

    off = daphne_factory(DEMO_PAGE="false")
    refused = requests.get(off.url + "/demo/", timeout=5)
    assert refused.status_code == 404 and "message" in refused.json()
    assert "/demo/" not in requests.get(off.url + "/openapi.json", timeout=5).json()["paths"]
    assert requests.get(off.url + KIT_URL, timeout=5).status_code == 200  # the kit stays


# -- the client kit on its own ---------------------------------------------------------

# Runs findMatch in the page; resolves with how it settled.
FIND_MATCH = """async ({kit, options, abortOnWaiting}) => {
    const {findMatch, MatchmakingError} = await import(kit);
    const controller = new AbortController();
    window.__waited = [];
    try {
        const match = await findMatch({
            ...options,
            signal: controller.signal,
            onWaiting(info) {
                window.__waited.push(info);
                if (abortOnWaiting) controller.abort();
            },
        });
        return {match};
    } catch (error) {
        return {
            error: {
                isMatchmakingError: error instanceof MatchmakingError,
                name: error.name, code: error.code, status: error.status, message: error.message,
            },
        };
    }
}"""


# Starts findMatch in the page: window[into] settles with the match or the error code.
START_WAITING = """({kit, options, into}) => {
    window.__queued = false;
    window[into] = import(kit).then(({findMatch}) =>
        findMatch({...options, onWaiting: () => window.__queued = true})
            .catch(error => error.code));
}"""


def start_waiting(
    page, user_id: str, interest: str, into: str = "pending", kit: str = KIT_URL, **options
) -> None:
    """Start findMatch and return once the user is waiting (the first WAITING event)."""
    options.update(userId=user_id, interests=[interest])
    page.evaluate(START_WAITING, {"kit": kit, "options": options, "into": into})
    page.wait_for_function("window.__queued === true")


def run_kit(page, options: dict, abort_on_waiting: bool = False, kit: str = KIT_URL) -> dict:
    return page.evaluate(
        FIND_MATCH, {"kit": kit, "options": options, "abortOnWaiting": abort_on_waiting}
    )


def test_kit_abort_closes_the_stream_and_sends_the_cancel_beacon(daphne, open_page, clean_redis):
    page = open_page(daphne.url + "/demo/")
    finished = []
    page.on("request", lambda r: finished.append(r) if "cancel_matchmaking" in r.url else 0)
    visitor = user("gus")
    outcome = run_kit(page, {"userId": visitor, "interests": "Golf"}, abort_on_waiting=True)

    assert outcome["error"]["isMatchmakingError"] and outcome["error"]["code"] == "ABORTED"
    assert page.evaluate("window.__waited") == [{"waiting": 0, "estimatedWaitSeconds": None}]
    assert page.evaluate("window.__sources.map(s => s.readyState)") == [2]
    beacons = page.evaluate("window.__beacons")
    assert beacons == [{"url": f"{daphne.url}/cancel_matchmaking", "body": f"userId={visitor}"}]
    answered = wait_until(lambda: finished, what="the beacon's answer")[0]
    assert answered.method == "POST" and answered.response().status == 200
    wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is None, what="dequeued")


def test_kit_cancels_when_the_page_goes_away(daphne_factory, browser, clean_redis):
    # A beacon sent while its document unloads is invisible to Playwright, so the test
    # looks where the cancel lands: the server's access log has its answer.
    server = daphne_factory(ACCESS_LOG="true")
    visitor = user("hal")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/demo/")
        start_waiting(page, visitor, "Hiking")
        assert clean_redis.zscore("queue:waiting", visitor) is not None
        page.goto(server.url + "/openapi.json")  # the first document's pagehide fires

        def cancelled() -> bool:
            lines = [json.loads(line) for line in server.log().splitlines() if line[:1] == "{"]
            return any(
                (line.get("method"), line.get("path"), line.get("status"))
                == ("POST", "/cancel_matchmaking", 200)
                for line in lines
            )

        wait_until(cancelled, what="the cancel sent at pagehide")
        wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is None, what="dequeued")
    finally:
        context.close()


def test_kit_settles_on_every_ending_event_and_closes_the_stream(daphne, open_page):
    page = open_page(daphne.url + "/demo/")
    visitor = user("ida")
    # CANCELLED: the user cancelled from elsewhere (another tab, the app's own server).
    start_waiting(page, visitor, "Ice", into="first")
    cancel = requests.post(f"{daphne.url}/cancel_matchmaking", json={"userId": visitor}, timeout=5)
    assert cancel.status_code == 200
    assert page.evaluate("window.first") == "CANCELLED"

    # REPLACED: a newer stream of the same user took over; the newer one then matches.
    start_waiting(page, visitor, "Ice", into="first")
    start_waiting(page, visitor, "Ice", into="second")
    assert page.evaluate("window.first") == "REPLACED"
    partner = run_kit(page, {"userId": user("jon"), "interests": ["ice"]})["match"]
    match = page.evaluate("window.second")
    assert match == {**partner, "matchedUserId": match["matchedUserId"]}
    assert partner["matchedUserId"] == visitor and match["matchedUserId"].startswith("jon-")
    assert match["interest"] == "ICE" and match["fallback"] is False
    # Every stream the kit opened is closed: none can reconnect by itself.
    assert page.evaluate("window.__sources.map(s => s.readyState)") == [2, 2, 2, 2]


def test_kit_turns_failed_connections_into_typed_errors(daphne, open_page):
    page = open_page(daphne.url + "/demo/")
    assert maintenance_command("on").returncode == 0
    try:
        error = run_kit(page, {"userId": user("kim"), "interests": "Kites"})["error"]
    finally:
        maintenance_command("off")
    assert error["isMatchmakingError"] and error["name"] == "MatchmakingError"
    assert error["code"] == "MAINTENANCE" and error["status"] == 503
    assert "maintenance" in error["message"]

    # Refused (an interest over the limit): the service is up, so the request was wrong.
    refused = run_kit(page, {"userId": user("lee"), "interests": ["x" * 65]})["error"]
    assert refused["code"] == "CONNECTION_REFUSED" and refused["status"] is None

    nobody = run_kit(page, {"baseUrl": f"http://127.0.0.1:{free_port()}", "userId": "mo"})
    assert nobody["error"]["code"] == "NETWORK_ERROR"
    assert run_kit(page, {"userId": ""})["error"]["code"] == "MISSING_USER_ID"
    assert page.evaluate("window.__sources.map(s => s.readyState)") == [2, 2, 2]


def test_kit_works_from_another_origin(daphne, open_page, clean_redis):
    # The web app's page is on one origin (localhost), the service on another
    # (127.0.0.1): the module, the stream, /maintenance and the beacon cross origins.
    service = daphne.url
    kit = service + KIT_URL
    page = open_page(service.replace("127.0.0.1", "localhost") + "/demo/")
    beacons = []
    page.on("request", lambda r: beacons.append(r) if "cancel_matchmaking" in r.url else 0)
    first, second = user("noa"), user("oli")
    start_waiting(page, first, "Origami", into="first", kit=kit, baseUrl=service)
    match = run_kit(page, {"baseUrl": service, "userId": second, "interests": "origami"}, kit=kit)
    assert match["match"]["matchedUserId"] == first
    assert page.evaluate("window.first")["chatId"] == match["match"]["chatId"]

    aborted = run_kit(page, {"baseUrl": service, "userId": second}, abort_on_waiting=True, kit=kit)
    assert aborted["error"]["code"] == "ABORTED"
    beacon = wait_until(lambda: beacons, what="the cancel beacon")[0]
    assert beacon.url == f"{service}/cancel_matchmaking"
    assert beacon.response().status == 200
    wait_until(lambda: clean_redis.zscore("queue:waiting", second) is None, what="dequeued")


def test_kit_with_identity_checks_uses_the_ticket_and_cancels_with_the_token(
    daphne_factory, open_page, clean_redis
):
    server = daphne_factory(AUTH_JWT_SECRET=auth_tests.SECRET)
    page = open_page(server.url + "/demo/")
    cancels = []
    page.on("request", lambda r: cancels.append(r) if "cancel_matchmaking" in r.url else 0)

    def ticket(user_id: str) -> str:
        answer = requests.post(
            f"{server.url}/matchmaking/ticket",
            headers=auth_tests.bearer(auth_tests.token(user_id)),
            json={"userId": user_id},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["ticket"]

    visitor = user("pia")
    token = auth_tests.token(visitor)
    options = {"userId": visitor, "interests": "Poetry", "token": token}
    outcome = run_kit(page, {**options, "ticket": ticket(visitor)}, abort_on_waiting=True)
    assert outcome["error"]["code"] == "ABORTED"
    stream_url = page.evaluate("window.__sources[0].url")
    assert "ticket=" in stream_url and token not in stream_url
    # A beacon cannot carry the bearer header: the cancel is a keepalive fetch with it.
    assert page.evaluate("window.__beacons") == []
    cancel = wait_until(lambda: cancels, what="the cancel")[0]
    assert cancel.method == "POST" and cancel.headers["authorization"] == f"Bearer {token}"
    assert cancel.response().status == 200
    wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is None, what="dequeued")

    # A ticket alone cannot authenticate a cancel: closing the stream is what leaves.
    start_waiting(page, visitor, "Poetry", ticket=ticket(visitor))
    page.evaluate("window.dispatchEvent(new Event('pagehide'))")  # the kit closes the stream
    wait_until(lambda: clean_redis.zscore("queue:waiting", visitor) is None, what="dequeued")
    assert page.evaluate("window.pending") == "ABORTED"
    assert page.evaluate("window.__sources[1].readyState") == 2
    assert len(cancels) == 1 and page.evaluate("window.__beacons") == []


def test_kit_types_declare_what_the_module_exports():
    def exported(text: str) -> set[str]:
        return set(re.findall(r"^export (?:declare )?(?:class|function|const) (\w+)", text, re.M))

    module = exported((KIT_DIR / "animochat-matchmaking.js").read_text())
    types = exported((KIT_DIR / "animochat-matchmaking.d.ts").read_text())
    assert module == types == {"MatchmakingError", "findMatch", "cancelMatchmaking"}


# -- /docs -----------------------------------------------------------------------------


def test_docs_render_the_openapi_document_without_other_hosts(daphne, open_page):
    docs = requests.get(daphne.url + "/docs", timeout=5)
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in docs.headers["Content-Security-Policy"]
    requested, answered, failed = [], [], []
    page = open_page("about:blank")
    page.on("request", lambda r: requested.append(r.url))
    page.on("response", lambda r: answered.append(r.url))
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    page.goto(daphne.url + "/docs")
    page.get_by_text("Find a match or wait (Server-Sent Events)").first.wait_for()
    page.get_by_text("AnimoChat Matchmaking").first.wait_for()
    # The page, Redoc, its styles and the document, all from this server; Redoc's
    # vendor logo is refused by the page's Content-Security-Policy before it leaves.
    assert f"{daphne.url}/openapi.json" in answered
    local = (daphne.url, "data:", "blob:")
    assert [url for url in answered if not url.startswith(local)] == []
    assert [(url, "csp") for url in requested if not url.startswith(local)] == failed

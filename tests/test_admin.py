"""The Matchmaking admin dashboard through the Django test client, on the real Redis.

Writes are checked where they land (Redis, open streams on a live Daphne, the public
``/maintenance`` endpoint), not just by the page that follows them.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time

import hypothesis
import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from animochat.admin_pages import label
from animochat.redis_client import close_redis
from discovery.selectors import discovery_status
from matchmaking import selectors, services
from tests.support.hostile import NUMBER_LIKE

pytestmark = pytest.mark.django_db

PAGES = [
    reverse("admin:app_list", kwargs={"app_label": "matchmaking"}),
    reverse("admin:matchmaking_queues"),
    reverse("admin:matchmaking_waiting"),
    reverse("admin:matchmaking_waiting") + "?interest=GAMING&user=nobody",
    reverse("admin:matchmaking_sessions"),
    reverse("admin:matchmaking_sessions") + "?q=nobody",
    reverse("admin:matchmaking_popular"),
    reverse("admin:matchmaking_discovery"),
    reverse("admin:matchmaking_maintenance"),
    reverse("admin:matchmaking_maintenance_confirm") + "?turn=on",
]
WRITES = [
    (reverse("admin:matchmaking_remove_user"), {"user_id": "someone"}),
    (reverse("admin:matchmaking_end_session"), {"user_id": "someone", "chat_id": "c"}),
    (reverse("admin:matchmaking_maintenance_confirm"), {"turn": "on"}),
    (reverse("admin:matchmaking_hide_interest"), {"interest": "ANIME"}),
]
SECTIONS = ["Overview", "Queues", "Sessions", "Popular interests", "Discovery", "Maintenance"]


def run(function, *args):
    """Call an async service from a sync test, closing the loop's Redis client."""

    async def call():
        try:
            return await function(*args)
        finally:
            await close_redis()

    return asyncio.run(call())


def enqueue(user_id: str, *interests: str) -> services.MatcherReply:
    return run(services.enqueue_or_match, user_id, list(interests), f"token-{user_id}")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(django_user_model) -> Client:
    """A staff member with no permissions at all: may look, may not act."""
    return logged_in(django_user_model.objects.create_user("viewer", "", "pw", is_staff=True))


@pytest.fixture
def staff_client(django_user_model) -> Client:
    """A staff member holding only the matchmaking permission: may look and act."""
    user = django_user_model.objects.create_user("operator", "", "pw-operator", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="matchmaking", codename="manage_matchmaking")
    )
    return logged_in(user)


def table_rows(page: str, table_id: str) -> list[str]:
    """The first cell's text of each body row of table ``table_id``."""
    table = re.search(rf'<table id="{table_id}".*?</table>', page, re.S).group(0)
    body = table.split("<tbody>", 1)[1]
    return [html.unescape(cell) for cell in re.findall(r"<tr>\s*<t[dh][^>]*>(.*?)</t[dh]>", body)]


class StreamReader:
    """A live ``GET /matchmaking`` stream read with requests (the tests here are sync)."""

    def __init__(self, base_url: str, user_id: str, interests: str) -> None:
        self.response = requests.get(
            f"{base_url}/matchmaking",
            params={"userId": user_id, "interests": interests},
            stream=True,
            timeout=5,
        )
        self.lines = self.response.iter_lines(decode_unicode=True)

    def next_event(self, timeout: float = 5.0) -> dict | None:
        """The next data event; None once the server has closed the stream."""
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if line.startswith("data:"):
                return json.loads(line[5:])
            assert time.monotonic() < deadline, "no event in time"
        return None

    def next_change(self, timeout: float = 5.0) -> dict | None:
        """The next event that is not a WAITING update."""
        while (event := self.next_event(timeout)) and event["state"] == "WAITING":
            pass
        return event

    def close(self) -> None:
        self.response.close()


# Permissions


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login") + "?next=")


def test_anonymous_writes_are_refused(client, clean_redis):
    enqueue("waiter", "GAMING")
    for url, data in WRITES:
        response = client.post(url, data)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert clean_redis.zscore("queue:waiting", "waiter") is not None
    assert clean_redis.get("service:maintenance") is None


def test_non_staff_user_is_denied(client, django_user_model, clean_redis):
    user = django_user_model.objects.create_user("player", password="pw-player")
    client.force_login(user)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login"))
    enqueue("waiter", "GAMING")
    for url, data in WRITES:
        assert client.post(url, data).status_code == 302
    assert clean_redis.zscore("queue:waiting", "waiter") is not None
    assert clean_redis.get("service:maintenance") is None
    # The login page says why instead of showing the dashboard.
    page = client.get(reverse("admin:login")).content.decode()
    assert "not authorized to access this page" in page


@pytest.mark.parametrize("url", PAGES)
def test_staff_sees_every_page(staff_client, url):
    response = staff_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/static/admin/css/base.css"' in page  # a real admin page, styled
    assert "Matchmaking" in page


@pytest.mark.parametrize("url", PAGES[:-1])  # all but the step towards switching maintenance
def test_staff_without_the_permission_sees_the_pages_without_their_buttons(viewer_client, url):
    response = viewer_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/static/admin/css/base.css"' in page and "Matchmaking" in page
    assert 'method="post"' not in page.replace('id="logout-form" method="post"', "")


def test_staff_without_the_permission_cannot_act(viewer_client, clean_redis):
    chat_id = match("ann", "ben")
    enqueue("waiter", "GAMING")
    before = {key: clean_redis.dump(key) for key in clean_redis.keys("*")}
    for url, data in [
        *WRITES,
        (reverse("admin:matchmaking_end_session"), {"user_id": "ann", "chat_id": chat_id}),
        (reverse("admin:matchmaking_maintenance_confirm"), {"turn": "off"}),
    ]:
        assert viewer_client.post(url, data).status_code == 403, url
    confirm = reverse("admin:matchmaking_maintenance_confirm")
    assert viewer_client.get(confirm, {"turn": "on"}).status_code == 403
    assert {key: clean_redis.dump(key) for key in clean_redis.keys("*")} == before
    assert clean_redis.get("service:maintenance") is None
    assert clean_redis.get("user_session:ann") == chat_id.encode()
    page = viewer_client.get(reverse("admin:matchmaking_maintenance")).content.decode()
    assert 'id="mm-maintenance-toggle"' not in page and 'id="mm-no-manage"' in page


def test_a_superuser_may_act(django_user_model, clean_redis):
    admin_client = logged_in(django_user_model.objects.create_superuser("root", "", "pw"))
    enqueue("waiter", "GAMING")
    response = admin_client.post(reverse("admin:matchmaking_remove_user"), {"user_id": "waiter"})
    assert response.status_code == 302
    assert clean_redis.zscore("queue:waiting", "waiter") is None
    confirm = reverse("admin:matchmaking_maintenance_confirm")
    assert admin_client.post(confirm, {"turn": "on"}).status_code == 302
    assert clean_redis.get("service:maintenance") is not None


ADMIN_URLS = sorted({url.partition("?")[0] for url in PAGES} | {url for url, _ in WRITES})
# Every parameter any admin page or form reads.
ADMIN_PARAMETERS = ["page", "interest", "user", "q", "turn", "next", "user_id", "chat_id"]


@pytest.mark.parametrize("url", ADMIN_URLS)
@hypothesis.settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(st.sampled_from(ADMIN_PARAMETERS), NUMBER_LIKE, max_size=4),
    post=st.booleans(),
)
def test_every_admin_parameter_takes_any_unicode_without_a_5xx(staff_client, url, params, post):
    """The test client raises a view's exception, so a 500 fails with its traceback."""
    response = (staff_client.post if post else staff_client.get)(url, params)
    assert response.status_code in (200, 302, 405), (url, params, response.status_code)


def test_a_page_number_in_other_digits_shows_the_first_page(staff_client):
    for interest in ("A", "B"):
        enqueue(f"user-{interest}", interest)
    for page in ("\u00b2", "\u0661", "\uff12", "9" * 5000, "-1", "0"):
        response = staff_client.get(reverse("admin:matchmaking_queues"), {"page": page})
        assert response.status_code == 200, page
        rows = table_rows(response.content.decode(), "mm-queues")
        assert [re.sub("<[^>]*>", "", row) for row in rows] == ["A", "B"], page


def test_admin_index_has_a_matchmaking_section(staff_client):
    page = staff_client.get(reverse("admin:index")).content.decode()
    section = re.search(r'<div class="app-matchmaking module.*?</table>', page, re.S).group(0)
    assert ">Matchmaking</a>" in section
    links = re.findall(r'<th scope="row"[^>]*>\s*<a href="([^"]+)"[^>]*>([^<]+)</a>', section)
    assert [name for _, name in links] == SECTIONS
    for url, _ in links:
        assert staff_client.get(url).status_code == 200


def test_writes_need_post_and_a_csrf_token(django_user_model, clean_redis):
    user = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="manage_matchmaking"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    enqueue("waiter", "GAMING")
    remove = reverse("admin:matchmaking_remove_user")
    assert client.post(remove, {"user_id": "waiter"}).status_code == 403
    assert client.get(remove, {"user_id": "waiter"}).status_code == 405
    assert clean_redis.zscore("queue:waiting", "waiter") is not None


# Queues


def put_waiting(redis_client, user: str, interests: list[str], waited_s: float, lease=True):
    """A waiting user written directly: two live users sharing an interest would be
    matched at once, so queues longer than one are only ever made this way."""
    seconds, micros = redis_client.time()
    since = seconds * 1_000_000 + micros - int(waited_s * 1_000_000)
    pipe = redis_client.pipeline(transaction=False)
    for interest in interests:
        pipe.zadd(f"interest:{interest}", {user: since})
        pipe.sadd("queue:interests", interest)
    pipe.sadd(f"user_interests:{user}", *interests)
    pipe.zadd("queue:waiting", {user: since})
    if lease:
        pipe.set(f"lease:{user}", "token", px=60_000)
    pipe.execute()


def test_queues_list_every_interest_with_its_count_and_oldest_wait(staff_client, clean_redis):
    put_waiting(clean_redis, "ann", ["GAMING", "ANIME"], waited_s=90.4)
    put_waiting(clean_redis, "ben", ["GAMING"], waited_s=30)
    enqueue("cal", "MUSIC")  # and one through the matcher itself

    page = staff_client.get(reverse("admin:matchmaking_queues")).content.decode()

    assert '<strong id="mm-waiting-total">3</strong>' in page
    rows = re.findall(
        r'interest=(\w+)">\1</a></th>\s*<td class="mm-number">(\d+)</td>\s*'
        r'<td class="mm-number">([^<]+)</td>',
        page,
    )
    # Largest queue first; the oldest wait is that of the queue's longest-waiting user.
    assert rows[0] == ("GAMING", "2", "1m 30s")
    assert sorted(rows[1:]) == [("ANIME", "1", "1m 30s"), ("MUSIC", "1", rows[2][2])]
    assert re.fullmatch(r"\ds", dict((i, w) for i, _, w in rows)["MUSIC"])


def test_with_several_pools_the_queues_add_them_up_and_say_so(staff_client, settings):
    settings.MATCH_POOLS = ("default", "city")
    run(services.enqueue_or_match, "ann", ["GAMING"], "token-ann", None, "default")
    run(services.enqueue_or_match, "ben", ["GAMING"], "token-ben", None, "city")

    page = staff_client.get(reverse("admin:matchmaking_queues")).content.decode()

    assert "Every figure adds up all the match pools: default, city." in page
    assert '<strong id="mm-waiting-total">2</strong>' in page
    assert re.search(r'interest=GAMING">GAMING</a></th>\s*<td class="mm-number">2</td>', page)
    drill = staff_client.get(reverse("admin:matchmaking_waiting"), {"interest": "GAMING"})
    assert "ann" in drill.content.decode() and "ben" in drill.content.decode()


def test_drill_into_an_interest_shows_its_users_and_their_interests(staff_client, clean_redis):
    put_waiting(clean_redis, "ann", ["GAMING", "ANIME"], waited_s=20)
    put_waiting(clean_redis, "ben", ["GAMING"], waited_s=10, lease=False)  # a ghost
    enqueue("cal", "MUSIC")

    url = reverse("admin:matchmaking_waiting")
    page = staff_client.get(url, {"interest": "gaming"}).content.decode()

    assert table_rows(page, "mm-waiting") == ["ann", "ben"]
    ann_row = re.search(r"<td>ann</td>.*?</tr>", page, re.S).group(0)
    assert ">ANIME</a>" in ann_row and ">GAMING</a>" in ann_row and ">live<" in ann_row
    assert "20s" in ann_row
    ben_row = re.search(r"<td>ben</td>.*?</tr>", page, re.S).group(0)
    assert "lapsed" in ben_row
    assert table_rows(staff_client.get(url).content.decode(), "mm-waiting") == [
        "ann",
        "ben",
        "cal",
    ]
    found = staff_client.get(url, {"user": "cal"}).content.decode()
    assert table_rows(found, "mm-found") == ["cal"]
    missing = staff_client.get(url, {"user": "zed"}).content.decode()
    assert "zed is not waiting." in missing


def test_interest_names_are_escaped_and_linked_safely(staff_client):
    enqueue("ann", "<B>&Q/?#")
    page = staff_client.get(reverse("admin:matchmaking_queues")).content.decode()
    assert "<B>" not in page and "&lt;B&gt;&amp;Q/?#" in page
    link = re.search(r'href="([^"]*interest=[^"]*)"', page).group(1)
    drilled = staff_client.get(html.unescape(link)).content.decode()
    assert table_rows(drilled, "mm-waiting") == ["ann"]


def test_remove_user_takes_them_out_of_every_queue_and_closes_their_stream(
    daphne, staff_client, clean_redis
):
    stream = StreamReader(daphne.url, "leaver", "GAMING,ANIME")
    try:
        assert stream.next_event()["state"] == "WAITING"
        back_to = reverse("admin:matchmaking_waiting") + "?interest=GAMING&page=1"
        response = staff_client.post(
            reverse("admin:matchmaking_remove_user"), {"user_id": "leaver", "next": back_to}
        )
        assert response.status_code == 302 and response["Location"] == back_to
        assert stream.next_change()["state"] == "CANCELLED"
        assert stream.next_event() is None
    finally:
        stream.close()
    assert clean_redis.zscore("queue:waiting", "leaver") is None
    assert not clean_redis.exists("interest:GAMING", "interest:ANIME", "user_interests:leaver")
    page = staff_client.get(back_to).content.decode()
    assert "Removed leaver from every queue." in page
    assert table_rows(page, "mm-waiting") == ["Nobody is waiting for GAMING."]


def test_remove_refuses_an_offsite_next_and_reports_a_user_not_waiting(staff_client):
    response = staff_client.post(
        reverse("admin:matchmaking_remove_user"),
        {"user_id": "nobody", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("admin:matchmaking_waiting")
    page = staff_client.get(response["Location"]).content.decode()
    assert "User nobody was not waiting" in page


def load_waiting_users(redis_client, interest: str, count: int) -> list[str]:
    """``count`` users waiting for ``interest``, oldest first (direct, pipelined writes)."""
    seconds, micros = redis_client.time()
    now_us = seconds * 1_000_000 + micros
    users = [f"user-{n:05d}" for n in range(count)]
    pipe = redis_client.pipeline(transaction=False)
    for n, user in enumerate(users):
        since = now_us - (count - n) * 1_000_000
        pipe.zadd(f"interest:{interest}", {user: since})
        pipe.zadd("queue:waiting", {user: since})
        pipe.sadd(f"user_interests:{user}", interest, f"EXTRA{n % 7}")
        pipe.set(f"lease:{user}", "token", px=120_000)
    pipe.sadd("queue:interests", interest)
    pipe.execute()
    return users


def test_large_queue_paginates_quickly(staff_client, clean_redis, record_property):
    users = load_waiting_users(clean_redis, "BIG", 10_000)
    url = reverse("admin:matchmaking_waiting")

    started = time.perf_counter()
    response = staff_client.get(url, {"interest": "BIG", "page": "3"})
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    page = response.content.decode()
    assert table_rows(page, "mm-waiting") == users[100:150]
    assert '<strong id="mm-queue-total">10000</strong>' in page
    assert "101&ndash;150 of 10000" in page
    assert 'href="?interest=BIG&amp;page=200"' in page  # the last page, filter kept
    record_property("admin_waiting_page_seconds", round(elapsed, 4))
    print(f"waiting page 3 of a 10,000-user queue rendered in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0  # the bound: "well under a second"

    last = staff_client.get(url, {"interest": "BIG", "page": "200"}).content.decode()
    assert table_rows(last, "mm-waiting") == users[9950:]
    past_the_end = staff_client.get(url, {"interest": "BIG", "page": "999"}).content.decode()
    assert table_rows(past_the_end, "mm-waiting") == users[9950:]
    everyone = staff_client.get(url, {"page": "x"}).content.decode()
    assert table_rows(everyone, "mm-waiting") == users[:50]

    started = time.perf_counter()
    overview = staff_client.get(reverse("admin:matchmaking_queues")).content.decode()
    elapsed = time.perf_counter() - started
    assert '<strong id="mm-waiting-total">10000</strong>' in overview
    print(f"queues overview with 10,000 waiting users rendered in {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


def test_pages_never_walk_the_keyspace(staff_client, clean_redis):
    """Every page read, watched with MONITOR: no KEYS, no SCAN of any kind."""
    load_waiting_users(clean_redis, "BIG", 200)
    match("ann", "ben")
    db = clean_redis.connection_pool.connection_kwargs["db"]
    done = "admin-pages-rendered"
    commands: list[str] = []
    monitor_client = redis.Redis.from_url(settings.REDIS_URL)
    with monitor_client.monitor() as monitor:

        def watch() -> None:
            for entry in monitor.listen():
                if entry["db"] == db:
                    commands.append(entry["command"])
                    if done in entry["command"]:
                        return

        watcher = threading.Thread(target=watch)
        watcher.start()
        for url in PAGES:
            assert (
                staff_client.get(url + ("&" if "?" in url else "?") + "page=2").status_code == 200
            )
        staff_client.get(reverse("admin:matchmaking_waiting"), {"interest": "BIG", "page": "3"})
        staff_client.get(reverse("admin:matchmaking_sessions"), {"q": "ann"})
        clean_redis.echo(done)
        watcher.join(10)
    monitor_client.close()
    assert not watcher.is_alive()
    verbs = {command.split()[0].strip('"').upper() for command in commands}
    assert {"ZRANGE", "ZCARD", "SMEMBERS"} <= verbs  # the pages did read Redis
    assert not verbs & {"KEYS", "SCAN", "SSCAN", "ZSCAN", "HSCAN"}, verbs


# Sessions


def match(first: str, second: str, interest: str = "GAMING") -> str:
    assert enqueue(first, interest).state == services.WAITING_STATE
    result = enqueue(second, interest)
    assert result.state == services.MATCHED_STATE
    return result.chat_id


def test_sessions_list_search_and_end(staff_client, clean_redis):
    chat_id = match("ann", "ben")
    other = match("cal", "dee", "MUSIC")
    url = reverse("admin:matchmaking_sessions")

    page = staff_client.get(url).content.decode()
    assert '<strong id="mm-session-total">2</strong>' in page
    assert table_rows(page, "mm-sessions") == [f"<code>{other}</code>", f"<code>{chat_id}</code>"]
    row = re.search(rf"<code>{chat_id}</code>.*?</tr>", page, re.S).group(0)
    assert '>ann</a>, <a href="?q=ben">ben</a>' in row
    assert "http://chat-a.test" in row or "http://chat-b.test" in row

    for query in ("ann", "ben", chat_id):
        found = staff_client.get(url, {"q": query}).content.decode()
        assert table_rows(found, "mm-sessions") == [f"<code>{chat_id}</code>"], query
    assert "No active session has" in staff_client.get(url, {"q": "zed"}).content.decode()

    response = staff_client.post(
        reverse("admin:matchmaking_end_session"), {"chat_id": chat_id, "user_id": "ben"}
    )
    assert response.status_code == 302
    assert not clean_redis.exists(f"chat_session:{chat_id}", "user_session:ann", "user_session:ben")
    page = staff_client.get(url).content.decode()
    assert f"Ended session {chat_id}." in page
    assert table_rows(page, "mm-sessions") == [f"<code>{other}</code>"]


def test_ending_a_stale_session_leaves_the_participants_new_one(staff_client, clean_redis):
    old = match("ann", "ben")
    new = match("ann", "cal")  # ann moved on: the matcher ended the old session
    response = staff_client.post(
        reverse("admin:matchmaking_end_session"), {"chat_id": old, "user_id": "ann"}
    )
    assert clean_redis.get("user_session:ann") == new.encode()
    page = staff_client.get(response["Location"]).content.decode()
    assert f"Session {old} had already ended." in page


def test_sessions_paginate_newest_first(staff_client, clean_redis):
    seconds, _ = clean_redis.time()
    pipe = clean_redis.pipeline(transaction=False)
    for n in range(120):
        chat_id = f"chat-{n:03d}"
        created = seconds * 1000 - (120 - n) * 1000
        session = {
            "chatId": chat_id,
            "serverUrl": "http://chat-a.test",
            "participants": [f"a{n}", f"b{n}"],
            "interest": "GAMING",
            "createdAt": created,
        }
        pipe.set(f"chat_session:{chat_id}", json.dumps(session), ex=3600)
        pipe.zadd("sessions:active", {chat_id: created})
    pipe.execute()
    url = reverse("admin:matchmaking_sessions")
    first = table_rows(staff_client.get(url).content.decode(), "mm-sessions")
    assert first == [f"<code>chat-{n:03d}</code>" for n in range(119, 69, -1)]
    last = staff_client.get(url, {"page": "3"}).content.decode()
    assert table_rows(last, "mm-sessions") == [
        f"<code>chat-{n:03d}</code>" for n in range(19, -1, -1)
    ]
    assert "101&ndash;120 of 120" in last


# Popular interests, discovery


def test_popular_interests_bar_chart(staff_client):
    url = reverse("admin:matchmaking_popular")
    assert "Nobody asked for an interest" in staff_client.get(url).content.decode()
    for user in ("u1", "u2", "u3"):
        enqueue(user, "GAMING")
    enqueue("u4", "ANIME")

    page = staff_client.get(url).content.decode()
    bars = re.findall(
        r'<th scope="row">(\w+)</th>\s*<td><div class="mm-bar-track"[^>]*>'
        r'<div class="mm-bar" style="width: ([\d.]+)%"></div></div></td>\s*'
        r'<td class="mm-number">(\d+)</td>',
        page,
    )
    # u4 matched nobody (no shared interest); the counts are requests per interest.
    assert bars == [("GAMING", "100.0", "3"), ("ANIME", "33.3", "1")]
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from a CDN


def hidden_rows(page: str) -> list[str]:
    table = page.split('id="mm-hidden"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<th scope="row">([^<]+)</th>', table)


def test_hide_and_show_popular_interests(staff_client, settings):
    settings.POPULAR_BLOCKLIST = ("NUDES",)
    url = reverse("admin:matchmaking_popular")
    hide = reverse("admin:matchmaking_hide_interest")
    for user, interest in (("u1", "ANIME"), ("u2", "SPAM"), ("u3", "NUDES")):
        enqueue(user, interest)
    page = staff_client.get(url).content.decode()
    assert hidden_rows(page) == ["NUDES"]  # the configured list
    assert "SPAM" in page.split('id="mm-popular"', 1)[1].split('id="mm-hidden"', 1)[0]

    response = staff_client.post(hide, {"interest": " spam "}, follow=True)
    assert "SPAM is hidden from popular interests." in response.content.decode()
    staff_client.post(hide, {"interest": "NUDES", "action": "show"})
    page = staff_client.get(url).content.decode()
    assert hidden_rows(page) == ["SPAM"]
    # Every instance reads the list from Redis: the public ranking follows at once here.
    ranking = [interest for interest, _ in run(selectors.popularity, 0).ranking]
    assert ranking == ["ANIME", "NUDES"]

    for bad, message in (("", "No interest was given."), ("A,B", "must not contain a comma")):
        response = staff_client.post(hide, {"interest": bad}, follow=True)
        assert message in response.content.decode()
    assert hidden_rows(staff_client.get(url).content.decode()) == ["SPAM"]


def test_discovery_page_renders_whatever_the_selector_reports(staff_client):
    status = run(discovery_status)
    page = html.unescape(staff_client.get(reverse("admin:matchmaking_discovery")).content.decode())
    assert status, "discovery_status() reported nothing"
    for key, value in status.items():
        assert f">{label(key)}</th>" in page, key
        if isinstance(value, str) and value:
            assert value in page
        if isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, str):
                    assert item in page


def test_labels_are_readable():
    assert label("registeredUrl") == "Registered URL"
    assert label("last_heartbeat") == "Last heartbeat"
    assert label("chatServers") == "Chat servers"
    assert label("source") == "Source"


# Maintenance


def test_maintenance_toggle_needs_confirmation_and_reaches_every_stream(
    daphne, staff_client, clean_redis
):
    maintenance_url = reverse("admin:matchmaking_maintenance")
    confirm_url = reverse("admin:matchmaking_maintenance_confirm")
    page = staff_client.get(maintenance_url).content.decode()
    assert "Maintenance is OFF" in page and f'href="{confirm_url}?turn=on"' in page

    stream = StreamReader(daphne.url, "waiter", "GAMING")
    try:
        assert stream.next_event()["state"] == "WAITING"
        confirm = staff_client.get(confirm_url, {"turn": "on"}).content.decode()
        assert "Yes, turn maintenance on" in confirm and "1 waiting user receives" in confirm
        assert requests.get(f"{daphne.url}/maintenance", timeout=5).status_code == 200

        response = staff_client.post(confirm_url, {"turn": "on"})
        assert response.status_code == 302 and response["Location"] == maintenance_url
        public = requests.get(f"{daphne.url}/maintenance", timeout=5)
        assert public.status_code == 503 and public.json()["state"] == "MAINTENANCE"
        assert stream.next_change()["state"] == "MAINTENANCE"
    finally:
        stream.close()
    page = staff_client.get(maintenance_url).content.decode()
    assert "Maintenance is ON" in page and "Maintenance is now ON for every instance." in page

    staff_client.post(confirm_url, {"turn": "off"})
    assert requests.get(f"{daphne.url}/maintenance", timeout=5).status_code == 200
    assert "Maintenance is OFF" in staff_client.get(maintenance_url).content.decode()


def test_maintenance_confirm_without_a_choice_goes_back(staff_client, clean_redis):
    url = reverse("admin:matchmaking_maintenance_confirm")
    assert staff_client.get(url)["Location"] == reverse("admin:matchmaking_maintenance")
    assert staff_client.post(url, {"turn": "sideways"}).status_code == 302
    assert clean_redis.get("service:maintenance") is None


# Auto-refresh


def test_pages_refresh_their_live_region_in_place(staff_client):
    page = staff_client.get(reverse("admin:matchmaking_queues")).content.decode()
    assert 'id="mm-refresh" data-seconds="5"' in page
    assert 'id="mm-refresh-now"' in page and 'id="mm-refresh-toggle"' in page
    # The search forms sit outside the refreshed region, so typing is never lost.
    live = page.index('id="mm-live"')
    assert page.index('name="user"') < live
    assert "fetch(window.location.href" in page  # same URL: page and search are kept
    confirm = staff_client.get(
        reverse("admin:matchmaking_maintenance_confirm"), {"turn": "on"}
    ).content.decode()
    assert 'id="mm-refresh"' not in confirm  # a confirmation never changes under you

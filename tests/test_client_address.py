"""The client address a client cannot forge (``TRUSTED_PROXY_HOPS``).

The unit tests pin :func:`decide_client`'s rule; the live ones run real Daphne
processes and count requests in the tests' Redis, so a spoofed ``X-Forwarded-For``
that walked past the limit, or a client-written value that became a Redis key, shows.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from animochat.clientaddr import TrustedClientMiddleware, client_bucket, decide_client
from tests.support.sse_client import open_stream
from tests.test_ratelimit import assert_limited, fresh_window  # noqa: F401 - a fixture

PEER = ["10.0.0.2", 50123]
JUNK = "x" * 3072


def scope(*headers: tuple[str, str], client=PEER, scheme="http") -> dict:
    return {
        "type": "http",
        "client": client,
        "scheme": scheme,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


XFF = "X-Forwarded-For"
XFP = "X-Forwarded-Proto"


@pytest.mark.parametrize(
    ("headers", "hops", "expected"),
    [
        # No trusted proxy: forwarding headers are the client's own words.
        ([(XFF, "203.0.113.9"), (XFP, "https")], 0, ("10.0.0.2", "http")),
        # One proxy appended the address it saw: that one, whatever the client wrote left of it.
        ([(XFF, "1.1.1.1, 203.0.113.9"), (XFP, "https")], 1, ("203.0.113.9", "https")),
        ([(XFF, "1.1.1.1, 203.0.113.9, 198.51.100.1")], 2, ("203.0.113.9", "http")),
        # A header sent twice is one list.
        ([(XFF, "1.1.1.1"), (XFF, "203.0.113.9")], 1, ("203.0.113.9", "http")),
        ([(XFF, "1.1.1.1, 203.0.113.9"), (XFF, "198.51.100.1")], 2, ("203.0.113.9", "http")),
        # Fewer entries than proxies, none, junk, or an empty entry: the socket peer.
        ([(XFF, "203.0.113.9")], 2, ("10.0.0.2", "http")),
        ([], 1, ("10.0.0.2", "http")),
        ([(XFF, JUNK)], 1, ("10.0.0.2", "http")),
        ([(XFF, "203.0.113.9, ")], 1, ("10.0.0.2", "http")),
        ([(XFF, "203.0.113.9, 999.1.1.1")], 1, ("10.0.0.2", "http")),
        # The forms proxies write, normalised to one spelling per client.
        ([(XFF, "203.0.113.9:4711")], 1, ("203.0.113.9", "http")),
        ([(XFF, "[2001:DB8::1]:443")], 1, ("2001:db8::1", "http")),
        ([(XFF, "2001:db8:0:0::1")], 1, ("2001:db8::1", "http")),
        ([(XFF, "::ffff:203.0.113.9")], 1, ("203.0.113.9", "http")),
        # X-Forwarded-Proto under the same rule; anything but http/https is ignored.
        ([(XFP, "https, http")], 1, ("10.0.0.2", "http")),
        ([(XFP, "HTTPS")], 1, ("10.0.0.2", "https")),
        ([(XFP, "gopher")], 1, ("10.0.0.2", "http")),
        ([(XFP, "https")], 2, ("10.0.0.2", "http")),
    ],
)
def test_decide_client(headers, hops, expected):
    assert decide_client(scope(*headers), hops) == expected


def test_decide_client_without_a_socket_peer():
    assert decide_client(scope((XFF, "203.0.113.9"), client=None), 0) == ("unknown", "http")
    assert decide_client(scope((XFF, "203.0.113.9"), client=None), 1) == ("203.0.113.9", "http")
    assert decide_client(scope(scheme="https"), 0) == ("10.0.0.2", "https")


def test_client_bucket_counts_ipv6_per_64_and_never_keeps_junk():
    assert client_bucket("203.0.113.9") == "203.0.113.9"
    assert client_bucket("2001:db8:1:2::5") == client_bucket("2001:db8:1:2:ffff::1")
    assert client_bucket("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::5") != client_bucket("2001:db8:1:2::5")
    assert client_bucket(JUNK) == client_bucket("unknown") == "unknown"


async def test_middleware_rewrites_the_scope_once_and_leaves_the_servers_alone():
    seen: list[dict] = []

    async def app(inner_scope, receive, send):
        seen.append(inner_scope)

    original = scope((XFF, "1.1.1.1, 203.0.113.9"), (XFP, "https"))
    await TrustedClientMiddleware(app, hops=1)(original, None, None)
    assert seen[0]["client"] == ["203.0.113.9", PEER[1]] and seen[0]["scheme"] == "https"
    assert original["client"] == PEER and original["scheme"] == "http"
    lifespan = {"type": "lifespan"}
    await TrustedClientMiddleware(app, hops=1)(lifespan, None, None)
    assert seen[1] is lifespan


def cancel(server, forwarded_for: str) -> requests.Response:
    return requests.post(
        server.url + "/cancel_matchmaking",
        json={"userId": "spoofer"},
        headers={XFF: forwarded_for},
        timeout=5,
    )


async def stream_status(server, forwarded_for: str) -> int:
    stream = await open_stream(
        server.url,
        params={"userId": "spoofer-" + secrets.token_hex(4), "interests": "SPOOF"},
        headers={XFF: forwarded_for},
    )
    await stream.close()
    return stream.status


def spoofed() -> str:
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


async def rate_limit_keys(aredis) -> set[str]:
    return {key.rsplit(":", 1)[0] for key in await aredis.keys("ratelimit:*")}


async def test_spoofed_forwarded_for_never_escapes_the_limit_without_proxies(
    fresh_window,  # noqa: F811
    daphne_factory,
    aredis,
):
    server = daphne_factory(RATE_LIMIT_PER_MINUTE="2")  # TRUSTED_PROXY_HOPS: default 0
    assert [cancel(server, spoofed()).status_code for _ in range(2)] == [200, 200]
    for forwarded_for in (spoofed(), spoofed(), JUNK, f"{spoofed()}, {spoofed()}"):
        assert_limited(cancel(server, forwarded_for))
    assert [await stream_status(server, spoofed()) for _ in range(4)] == [200, 200, 429, 429]
    assert await rate_limit_keys(aredis) == {
        "ratelimit:post:127.0.0.1",
        "ratelimit:matchmaking:127.0.0.1",
    }


async def test_behind_one_proxy_its_appended_address_is_the_client(
    fresh_window,  # noqa: F811
    daphne_factory,
    aredis,
):
    server = daphne_factory(RATE_LIMIT_PER_MINUTE="2", TRUSTED_PROXY_HOPS="1")
    # The proxy appends the address it saw (203.0.113.7); the client wrote the rest.
    assert cancel(server, f"{spoofed()}, 203.0.113.7").status_code == 200
    assert cancel(server, "203.0.113.7").status_code == 200
    for forwarded_for in (spoofed(), f"{JUNK}, {spoofed()}", JUNK):
        assert_limited(cancel(server, f"{forwarded_for}, 203.0.113.7"))
    # Another client behind the same proxy has its own allowance.
    assert cancel(server, f"{spoofed()}, 203.0.113.8").status_code == 200
    # The stream counts by the same address.
    statuses = [await stream_status(server, f"{spoofed()}, 203.0.113.7") for _ in range(3)]
    assert statuses == [200, 200, 429]
    # A request that bypassed the proxy (no header), or whose entry is junk, counts as
    # the socket peer and never as what it wrote.
    assert cancel(server, JUNK).status_code == 200
    assert cancel(server, "").status_code == 200
    assert_limited(cancel(server, "not-an-address"))
    assert await rate_limit_keys(aredis) == {
        "ratelimit:post:203.0.113.7",
        "ratelimit:post:203.0.113.8",
        "ratelimit:post:127.0.0.1",
        "ratelimit:matchmaking:203.0.113.7",
    }


async def test_ipv6_clients_are_counted_per_64(fresh_window, daphne_factory, aredis):  # noqa: F811
    server = daphne_factory(RATE_LIMIT_PER_MINUTE="2", TRUSTED_PROXY_HOPS="1")
    assert cancel(server, "2001:db8:1:2::5").status_code == 200
    assert cancel(server, "2001:db8:1:2:abcd::9").status_code == 200
    assert_limited(cancel(server, "[2001:db8:1:2::77]:5000"))
    assert cancel(server, "2001:db8:1:3::5").status_code == 200
    assert await rate_limit_keys(aredis) == {
        "ratelimit:post:2001:db8:1:2::/64",
        "ratelimit:post:2001:db8:1:3::/64",
    }


def csrf_refusal_reason(server, forwarded_proto: str) -> str:
    """Why Django's CSRF check refused a token-less admin POST: it checks the Referer
    first only on a request it believes came over https (``request.is_secure()``)."""
    before = len(server.log())
    response = requests.post(
        server.url + "/admin/login/",
        data={"username": "nobody", "password": "x"},
        headers={XFP: forwarded_proto},
        timeout=5,
    )
    assert response.status_code == 403
    return server.log()[before:]


def test_forwarded_proto_is_trusted_only_behind_proxies(daphne_factory):
    direct = daphne_factory()
    proxied = daphne_factory(TRUSTED_PROXY_HOPS="1")
    assert "Referer checking failed" in csrf_refusal_reason(proxied, "https")
    assert "CSRF cookie not set" in csrf_refusal_reason(proxied, "http")
    assert "CSRF cookie not set" in csrf_refusal_reason(proxied, "https, http")
    assert "CSRF cookie not set" in csrf_refusal_reason(direct, "https")

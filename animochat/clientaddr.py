"""Who the client is: the one place that decides a request's address and scheme.

Behind ``TRUSTED_PROXY_HOPS`` proxies that each append the address they received a
connection from to ``X-Forwarded-For``, the client is the N-th address from the
*right*: everything left of it was written by the client and proves nothing. With 0
hops (the default) the socket peer is the client and forwarding headers are ignored.
``X-Forwarded-Proto`` is read under the same rule, so ``request.is_secure()`` is true
only when a trusted proxy says the client used https.

:class:`TrustedClientMiddleware` wraps the whole ASGI application and rewrites
``scope["client"]`` and ``scope["scheme"]`` once, so the Django views (``REMOTE_ADDR``),
the raw SSE consumer, rate limits and logs all see the same client. Doing it in the
application rather than with Daphne's ``--proxy-headers`` (which trusts the leftmost,
client-written entry) makes every way of starting Daphne behave the same.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

UNKNOWN = "unknown"  # no socket peer (a unix socket)
IPV6_BUCKET_PREFIX = 64  # one IPv6 subscriber usually holds a whole /64

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# Parsing an address costs more than the rest of the decision, and the same few
# addresses (one peer per proxy, returning clients) come again and again: the last
# ones parsed are remembered. Bounded in count and in length (the longest address a
# proxy writes, an IPv6 one with a zone, brackets and a port, is far shorter), so a
# flood of distinct or huge values costs no memory.
ADDRESSES_REMEMBERED = 4096
LONGEST_ADDRESS = 128


def parse_address(value: str) -> Address | None:
    """An IP address from one forwarded entry, or None if it is not one.

    Accepts what proxies write: ``203.0.113.7``, ``2001:db8::1``, ``[2001:db8::1]``,
    ``203.0.113.7:4711`` and ``[2001:db8::1]:4711``. An IPv4-mapped IPv6 address is
    its IPv4 address, so one client has one form.
    """
    value = value.strip()
    return _parse_address(value) if len(value) <= LONGEST_ADDRESS else None


def address_text(value: str) -> str | None:
    """``str(parse_address(value))``: the address as every key and log line writes it,
    remembered as the parse is (writing an address costs as much as parsing it)."""
    value = value.strip()
    return _address_text(value) if len(value) <= LONGEST_ADDRESS else None


@functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
def _address_text(value: str) -> str | None:
    parsed = _parse_address(value)
    return None if parsed is None else str(parsed)


@functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
def _parse_address(value: str) -> Address | None:
    if value.startswith("["):
        value = value[1:].partition("]")[0]
    elif value.count(":") == 1:  # IPv4 with a port; IPv6 has at least two colons
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def nth_from_right(values: Iterable[str], hops: int) -> str | None:
    """The ``hops``-th comma-separated entry from the right over all header values."""
    entries = [entry for value in values for entry in value.split(",")]
    return entries[-hops].strip() if 0 < hops <= len(entries) else None


def header_values(scope: dict, name: bytes) -> list[str]:
    """Every value of header ``name`` (lower-case) in an ASGI scope, in order.

    A header sent several times counts as one comma-joined list (RFC 9110).
    """
    return [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]


def decide_client(scope: dict, hops: int) -> tuple[str, str]:
    """``(address, scheme)`` of the client of an ASGI ``scope`` behind ``hops`` proxies.

    A forwarded value that is missing or malformed leaves the socket peer (and the
    connection's scheme) in place: a request that bypassed the proxies, or a proxy that
    was misconfigured, is counted as the peer it came from, never as what it claims.
    """
    peer = scope.get("client")
    address = (address_text(peer[0]) or peer[0]) if peer else UNKNOWN
    scheme = scope.get("scheme") or "http"
    if hops <= 0:
        return address, scheme
    forwarded = nth_from_right(header_values(scope, b"x-forwarded-for"), hops)
    text = address_text(forwarded) if forwarded else None
    if text is not None:
        address = text
    proto = nth_from_right(header_values(scope, b"x-forwarded-proto"), hops)
    if proto and proto.lower() in ("http", "https"):
        scheme = proto.lower()
    return address, scheme


def client_bucket(address: str) -> str:
    """What rate limits count: the address, its /64 for IPv6, ``unknown`` otherwise.

    Only a parsed address is returned, so nothing a client writes becomes a key.
    """
    address = address.strip()
    return _client_bucket(address) if len(address) <= LONGEST_ADDRESS else UNKNOWN


@functools.lru_cache(maxsize=ADDRESSES_REMEMBERED)
def _client_bucket(address: str) -> str:
    parsed = _parse_address(address)
    if parsed is None:
        return UNKNOWN
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_BUCKET_PREFIX), strict=False))
    return str(parsed)


def scope_client(scope: dict) -> str:
    """The client address of a scope that :class:`TrustedClientMiddleware` rewrote."""
    client = scope.get("client")
    return client[0] if client else UNKNOWN


class TrustedClientMiddleware:
    """ASGI wrapper applying :func:`decide_client` once per HTTP request."""

    def __init__(self, app, hops: int) -> None:
        self.app = app
        self.hops = hops

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            address, scheme = decide_client(scope, self.hops)
            port = scope["client"][1] if scope.get("client") else 0
            # A copy: the server keeps its own scope for its access log.
            scope = {**scope, "client": [address, port], "scheme": scheme}
        return await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, no brackets) names this machine."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

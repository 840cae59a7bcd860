"""A client for the AnimoChat Service Discovery protocol, over ``requests``
(docs/PROTOCOL.md#service-discovery).

Every call has a timeout and a cap on the answer's size and total duration, and every
way the registry can misbehave (refused connections, timeouts, error pages, HTML,
garbage JSON, wrong shapes, redirects) surfaces as one exception,
:class:`DiscoveryError`, so the heartbeat can log it and carry on. A definite "none
running" answer (a JSON 404 from the discovery endpoints) is not an error: it is an
empty list.

Redirects are never followed: the registry is configured by URL, and a redirect would
let whoever answers there send the heartbeat (and the service's registration) to any
other host. An error's text holds the status code and a reason of the client's own
wording, never the answer's body: it is shown by the public ``/status``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3

DEFAULT_TIMEOUT = 5.0
MAX_BODY_BYTES = 1_000_000


class DiscoveryError(Exception):
    """The registry could not be reached or gave an answer that makes no sense."""


@dataclass(frozen=True)
class Instance:
    """One registered service instance as the registry reports it."""

    service_name: str
    version: str
    url: str
    status: str
    timestamp: int | None

    @classmethod
    def from_json(cls, data: Any) -> Instance:
        if not isinstance(data, dict):
            raise DiscoveryError("an instance that is not a JSON object")
        url = data.get("url")
        if not isinstance(url, str) or not _is_http_url(url.strip()):
            raise DiscoveryError("an instance without an http(s) url")
        timestamp = data.get("timestamp")
        return cls(
            service_name=str(data.get("serviceName", "")),
            version=str(data.get("version", "")),
            url=url.strip().rstrip("/"),
            # Older registries omit the status; they only list live instances anyway.
            status=str(data.get("status") or "RUNNING").upper(),
            timestamp=timestamp if isinstance(timestamp, int) else None,
        )


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # decoded JSON, or None when the body was not JSON


class DiscoveryClient:
    """Talks to one registry at ``base_url`` (with or without a trailing ``/``)."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not _is_http_url(base_url):
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def url_for(self, *segments: str) -> str:
        """``base_url`` + ``/seg/seg``; each segment percent-encoded, never a ``//``."""
        return self.base_url + "".join("/" + quote(segment, safe="") for segment in segments)

    def register(self, service_name: str, version: str, url: str) -> bool:
        """Register or heartbeat; True when the registry created a new instance (201)."""
        reply = self._call("POST", ("register",), _identity(service_name, version, url))
        # The registry always answers JSON; a 200 web page is not the registry.
        if reply.status in (200, 201) and isinstance(reply.body, dict):
            return reply.status == 201
        raise self._unexpected("register", reply)

    def unregister(self, service_name: str, version: str, url: str) -> bool:
        """Remove the instance; False when the registry did not know it (404)."""
        reply = self._call("DELETE", ("unregister",), _identity(service_name, version, url))
        if reply.status in (200, 404) and isinstance(reply.body, dict):
            return reply.status == 200
        raise self._unexpected("unregister", reply)

    def discover_all(self, service_name: str, version: str) -> list[Instance]:
        """Every RUNNING instance; ``[]`` when the registry says none is running."""
        reply = self._call("GET", ("discover", service_name, version, "all"))
        if self._says_none(reply):
            return []
        if reply.status != 200 or not isinstance(reply.body, list):
            raise self._unexpected("discover all", reply)
        instances = [Instance.from_json(item) for item in reply.body]
        return [instance for instance in instances if instance.status == "RUNNING"]

    @staticmethod
    def _says_none(reply: Reply) -> bool:
        # The registry's own 404s are JSON messages; an HTML 404 is some other server
        # (a proxy, a wrong DISCOVERY_SERVER_URL) and proves nothing about chat servers.
        return reply.status == 404 and isinstance(reply.body, dict)

    def _call(self, method: str, segments: tuple[str, ...], payload: Any = None) -> Reply:
        url = self.url_for(*segments)
        deadline = time.monotonic() + 2 * self.timeout
        try:
            with self.session.request(
                method,
                url,
                json=payload,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            ) as response:
                raw = _read_capped(response, deadline)
                status = response.status_code
        except DiscoveryError as error:
            raise DiscoveryError(f"{method} {url}: {error}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            raise DiscoveryError(f"{method} {url}: {_describe(error)}") from None
        try:
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            body = None
        return Reply(status, body)

    @staticmethod
    def _unexpected(action: str, reply: Reply) -> DiscoveryError:
        if 300 <= reply.status < 400:
            reason = "a redirect, not followed"
        elif reply.status >= 400:
            reason = "an error answer"
        elif reply.body is None:
            reason = "not JSON"
        else:
            reason = "JSON of an unexpected shape"
        return DiscoveryError(f"{action}: HTTP {reply.status} {_phrase(reply.status)}: {reason}")


def _identity(service_name: str, version: str, url: str) -> dict[str, str]:
    return {"serviceName": service_name, "version": version, "url": url}


def _read_capped(response: requests.Response, deadline: float) -> bytes:
    """The body, refusing endless or dribbled answers.

    ``read1`` makes at most one socket read (each bounded by the call's timeout), so
    the deadline is checked often even when a server sends a byte at a time.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := response.raw.read1(16384, decode_content=True):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise DiscoveryError(f"answer larger than {MAX_BODY_BYTES} bytes")
        if time.monotonic() > deadline:
            raise DiscoveryError("answer took too long to arrive")
        chunks.append(chunk)
    return b"".join(chunks)


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _describe(error: Exception) -> str:
    """A short reason for a log line, not urllib3's nested repr."""
    if isinstance(error, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(error, requests.ConnectionError | ConnectionError):
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
        return "connection failed" + (f" ({reason.group(1).strip()})" if reason else "")
    # Only the kind of failure: an exception's text can quote what the server sent.
    return type(error).__name__


def _phrase(status: int) -> str:
    """The standard phrase of ``status`` (never the server's own reason text)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(non-standard status)"

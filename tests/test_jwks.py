"""RS256/ES256 tokens verified against a JSON Web Key Set (``AUTH_JWKS_URL``).

The key set is served by a real HTTP server started here, which counts its fetches,
so the tests see the cache, the refresh on an unknown ``kid`` and its throttle.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from animochat import auth
from animochat.auth import NotAuthorized, authorize_user
from tests.support.sse_client import open_stream
from tests.test_auth import SECRET, bearer
from tests.test_auth import token as hs256_token


class KeyServer:
    """Serves ``/jwks.json`` from ``self.public``: ``{kid: public JWK dict}``."""

    def __init__(self) -> None:
        self.public: dict[str, dict] = {}
        self.private: dict[str, tuple[str, object]] = {}  # kid -> (alg, private key)
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": list(owner.public.values())}).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add_key(self, kid: str, algorithm: str, publish: bool = True) -> None:
        if algorithm == "RS256":
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        else:
            private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        self.private[kid] = (algorithm, private)
        if publish:
            self.public[kid] = {**public, "kid": kid, "alg": algorithm, "use": "sig"}

    def token(self, sub: str, kid: str, header_kid: str | None = None) -> str:
        algorithm, private = self.private[kid]
        payload = {"sub": sub, "aud": "authenticated", "exp": int(time.time()) + 600}
        return jwt.encode(payload, private, algorithm=algorithm, headers={"kid": header_kid or kid})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def keys():
    server = KeyServer()
    server.add_key("rsa-1", "RS256")
    server.add_key("ec-1", "ES256")
    yield server
    server.stop()


@pytest.fixture
def jwks_settings(settings, keys, monkeypatch):
    monkeypatch.setattr(auth, "_key_sets", {})  # no keys cached by an earlier test
    settings.AUTH_JWT_SECRET = ""
    settings.AUTH_JWKS_URL = keys.url
    return settings


async def refused(user: str, token: str) -> NotAuthorized:
    with pytest.raises(NotAuthorized) as error:
        await authorize_user(user, token)
    return error.value


async def test_rs256_and_es256_tokens_are_verified_with_cached_keys(jwks_settings, keys):
    await authorize_user("alice", keys.token("alice", "rsa-1"))
    await authorize_user("bob", keys.token("bob", "ec-1"))
    await authorize_user("alice", keys.token("alice", "rsa-1"))
    assert keys.fetches == 1
    assert (await refused("bob", keys.token("alice", "rsa-1"))).status == 403
    # Signed by a key that is not the published one under that kid.
    keys.add_key("rsa-1-forged", "RS256", publish=False)
    keys.private["rsa-1"] = keys.private["rsa-1-forged"]
    assert (await refused("alice", keys.token("alice", "rsa-1"))).status == 401
    # An HS256 token means nothing when only a key set is configured, nor does a token
    # whose algorithm is not its key's.
    assert (await refused("alice", hs256_token("alice"))).status == 401
    keys.add_key("rsa-unpublished", "RS256", publish=False)
    mismatched = keys.token("alice", "rsa-unpublished", header_kid="ec-1")
    assert "does not match" in (await refused("alice", mismatched)).message
    assert keys.fetches == 1


async def test_an_unknown_kid_refreshes_the_keys_at_most_every_few_seconds(
    jwks_settings, keys, monkeypatch
):
    await authorize_user("alice", keys.token("alice", "rsa-1"))
    keys.add_key("rsa-2", "RS256")  # the issuer rotates its keys
    await authorize_user("alice", keys.token("alice", "rsa-2"))
    assert keys.fetches == 2
    # Tokens naming made-up kids cannot make the service fetch again and again.
    keys.add_key("never-published", "RS256", publish=False)
    for _ in range(5):
        error = await refused("alice", keys.token("alice", "never-published"))
        assert (error.status, error.code) == (401, "UNAUTHORIZED") and "kid" in error.message
    keys.add_key("rsa-3", "RS256")
    assert (await refused("alice", keys.token("alice", "rsa-3"))).status == 401
    assert keys.fetches == 2
    # Once the throttle has passed, the next unknown kid fetches again.
    monkeypatch.setattr(auth, "JWKS_UNKNOWN_KID_REFRESH_SECONDS", 0)
    await authorize_user("alice", keys.token("alice", "rsa-3"))
    assert keys.fetches == 3


async def test_an_unreachable_key_set_is_a_503_until_it_answers(jwks_settings, keys, monkeypatch):
    monkeypatch.setattr(auth, "JWKS_UNKNOWN_KID_REFRESH_SECONDS", 0)
    jwks_settings.AUTH_JWKS_URL = keys.url.replace("jwks.json", "missing.json")
    error = await refused("alice", keys.token("alice", "rsa-1"))
    assert (error.status, error.code) == (503, "AUTH_UNAVAILABLE")
    jwks_settings.AUTH_JWKS_URL = keys.url
    await authorize_user("alice", keys.token("alice", "rsa-1"))


async def test_a_server_with_a_key_set_verifies_the_stream_and_the_endpoints(daphne_factory, keys):
    server = daphne_factory(AUTH_JWKS_URL=keys.url)
    stream = await open_stream(
        server.url,
        params={"userId": "alice", "interests": "JWKS", "token": keys.token("alice", "rsa-1")},
    )
    assert (await stream.next_event())["state"] == "WAITING"
    await stream.close()
    lookup = server.url + "/session/bob"
    response = requests.get(lookup, headers=bearer(keys.token("bob", "ec-1")), timeout=5)
    assert response.status_code == 200
    response = requests.get(lookup, headers=bearer(keys.token("alice", "ec-1")), timeout=5)
    assert response.status_code == 403
    response = requests.get(lookup, headers=bearer(hs256_token("bob")), timeout=5)
    assert response.status_code == 401
    assert keys.fetches == 1


async def test_both_secret_and_key_set_accept_either_kind(daphne_factory, keys):
    server = daphne_factory(AUTH_JWKS_URL=keys.url, AUTH_JWT_SECRET=SECRET)
    lookup = server.url + "/session/bob"
    for token in (keys.token("bob", "rsa-1"), hs256_token("bob")):
        assert requests.get(lookup, headers=bearer(token), timeout=5).status_code == 200

"""The raw ASGI routes are found by their exact path, below the scope's root path."""

from __future__ import annotations

from animochat.routing import ExactPathRouter


def app(name: str):
    async def answer(scope, receive, send):
        return name

    return answer


ROUTER = ExactPathRouter({"/matchmaking": app("stream"), "/healthz": app("probe")}, app("django"))


async def route(path: str, root_path: str = "") -> str:
    return await ROUTER({"type": "http", "path": path, "root_path": root_path}, None, None)


async def test_an_exact_path_goes_to_its_application():
    assert await route("/matchmaking") == "stream"
    assert await route("/healthz") == "probe"


async def test_any_other_path_goes_to_django():
    for path in ("/", "/matchmaking/", "/matchmaking/ticket", "/MATCHMAKING", "/healthz/x"):
        assert await route(path) == "django", path


async def test_a_root_path_is_taken_off_before_matching():
    assert await route("/chat/matchmaking", root_path="/chat") == "stream"
    assert await route("/chat/status", root_path="/chat") == "django"

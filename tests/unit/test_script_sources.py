"""Each Lua script is sent with the libraries it needs, and the readiness probe knows
every script the service ships."""

from __future__ import annotations

from pathlib import Path

from animochat.health import shipped_scripts
from matchmaking import store
from sessions_app import store as session_store
from tests.support.servers import BASE_DIR


def test_the_readiness_probe_knows_every_shipped_script():
    files = {
        path.stem
        for package in ("animochat", "matchmaking", "sessions_app", "discovery")
        for path in (BASE_DIR / package / "lua").glob("*.lua")
        if path.name != "lib.lua"
    }
    assert sorted(script.name for script in shipped_scripts()) == sorted(files)


def test_matchmaking_scripts_carry_the_session_library_then_the_matching_one():
    session_library = session_store.LUA_LIBRARY.read_text()
    matching_library = (Path(store.__file__).parent / "lua" / "lib.lua").read_text()
    script = (Path(store.__file__).parent / "lua" / "enqueue_or_match.lua").read_text()
    assert store.ENQUEUE_OR_MATCH.source == "\n".join([session_library, matching_library, script])
    assert session_store.END_SESSION.source.startswith(session_library + "\n")
    assert "local function create_match" not in session_store.END_SESSION.source

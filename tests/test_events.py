"""The stream's events: one builder each, the same shape on every path."""

from __future__ import annotations

from matchmaking import events, services


def test_matched_from_a_result_and_from_the_session_are_the_same_event():
    result = services.MatcherReply(
        services.MATCHED_STATE,
        partner="b",
        chat_id="c" * 32,
        chat_server_url="https://chat.example",
        fallback=True,
    )
    session = {
        "chatId": "c" * 32,
        "serverUrl": "https://chat.example",
        "participants": ["a", "b"],
        "interest": "",
        "fallback": True,
    }
    assert events.matched(result, "b") == events.matched_from_session(session, "a")
    assert events.matched(result, "b")["fallback"] is True


def test_an_interest_match_has_no_fallback_field():
    result = services.MatcherReply(services.MATCHED_STATE, partner="b", interest="ANIME")
    session = {"chatId": "", "serverUrl": "", "participants": ["a", "b"], "interest": "ANIME"}
    assert "fallback" not in events.matched(result, "b")
    assert "fallback" not in events.matched_from_session(session, "a")
